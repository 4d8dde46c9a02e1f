"""The run's adapter step: the model wrapped once its pretrained weights are in, what the param
groups see of it, and what the adapters save against full fine-tuning."""

import inspect

import torch
from torch import nn
from torch.optim import Optimizer

from src.adapters import peft_files
from src.adapters.targets import AdapterSpec
from src.adapters.wrap import TrainableView, view_roles, wrap
from src.models.contract import ParameterRoles


def adapt(
    model: nn.Module, spec: AdapterSpec | None, roles: ParameterRoles
) -> tuple[nn.Module, object, ParameterRoles]:
    """The model to train, what the param groups resolve against (the model itself, or the
    trainable view of a wrapped one) and the roles under those names. Called after the
    pretrained load (peft wraps the base weights as loaded) and before the optimizer exists."""
    if spec is None:
        return model, model, roles
    wrapped = wrap(model, spec)
    if spec.path is not None:  # checked already: same modules, same rank
        peft_files.load(wrapped, spec.path)
    view = TrainableView(wrapped)
    return wrapped, view, view_roles(roles, view)


def footprint(model: nn.Module, spec: AdapterSpec, optimizer: Optimizer) -> dict:
    """Trainable parameters and optimizer-state bytes, the adapter's beside full fine-tuning's
    (every parameter of the model trained, with the same optimizer)."""
    view = TrainableView(model)
    trainable = sum(p.numel() for _, p in view.names)
    full = sum(
        p.numel()
        for name, p in model.named_parameters()
        if "lora_" not in name and ".modules_to_save." not in name
    )
    per_element = state_bytes_per_element(type(optimizer), optimizer.defaults)
    return {
        "adapter": spec.describe(),
        "trainable_params": trainable,
        "full_params": full,
        "optimizer_state_bytes": trainable * per_element,
        "full_optimizer_state_bytes": full * per_element,
        "summary": (
            f"adapter: {spec.describe()}; trains {trainable:,} of the full model's {full:,} "
            f"parameters ({trainable / full:.2%}); optimizer state {trainable * per_element:,} "
            f"bytes (full fine-tuning: {full * per_element:,})"
        ),
    }


def state_bytes_per_element(optimizer_class: type, defaults: dict) -> int:
    """The optimizer's state bytes per float32 parameter element: one step on a small tensor,
    its state counted (AdamW: 8, its two moments; SGD with momentum: 4)."""
    param = torch.zeros(8, requires_grad=True)
    accepted = inspect.signature(optimizer_class).parameters
    arguments = {k: v for k, v in defaults.items() if k in accepted and k != "params"}
    optimizer = optimizer_class([param], **arguments)
    param.grad = torch.ones(8)
    optimizer.step()
    state = optimizer.state[param].values()
    return (
        sum(t.element_size() * t.numel() for t in state if torch.is_tensor(t) and t.numel() == 8)
        // 8
    )
