"""A model wrapped by peft, and its trainable parameters under the names a user writes.

peft renames what it wraps (`base_model.model.blocks.0.attn.qkv.base_layer.weight`,
`...qkv.lora_A.default.weight`, a head's `modules_to_save.default.weight`); the param groups
see `blocks.0.attn.qkv.lora_A.weight` and `head.weight` instead, so patterns written for the
unwrapped model match the same tensors. Only what trains is seen: the base weights peft freezes
stay out of the optimizer (no state for them), as the adapters' saving intends.
"""

import copy
import dataclasses
import re

import torch
from torch import nn

from src.adapters.targets import AdapterSpec
from src.errors import GroupwiseError
from src.models.contract import ParameterRoles

PEFT_PREFIX = "base_model.model."
# An adapter's tensor under its user name: the module it sits in, then lora_A, lora_B, ...
ADAPTER_TENSOR = re.compile(r"^(.*)\.(lora_[A-Za-z_]+)\.[^.]+$")


def wrap(model: nn.Module, spec: AdapterSpec) -> nn.Module:
    """`model` with peft's adapters on the spec's modules (a PeftModel), the modules trained
    fully beside them, everything else frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        use_dora=spec.kind == "dora",
        target_modules=list(spec.targets),
        modules_to_save=list(spec.train_fully) or None,
    )
    try:
        wrapped = get_peft_model(model, config)
    except (ValueError, TypeError) as err:  # a layer peft refuses, in its own words
        raise GroupwiseError(f"adapter={spec.kind}: peft cannot wrap this model: {err}") from None
    wrapped_names = {
        name.removeprefix(PEFT_PREFIX)
        for name, module in wrapped.named_modules()
        if hasattr(module, "base_layer") and hasattr(module, "lora_A")
    }
    # peft matches names by suffix too: anything beyond the resolved set would be silent.
    if wrapped_names != set(spec.targets):
        raise GroupwiseError(
            f"adapter.targets: peft wrapped {sorted(wrapped_names ^ set(spec.targets))[:3]} "
            "unlike the resolved targets; name the modules by narrower patterns"
        )
    return wrapped


def user_name(peft_name: str) -> str | None:
    """The name a param-group pattern sees; None for peft's frozen copy of a module trained
    fully (`original_module`), which never trains."""
    name = peft_name.removeprefix(PEFT_PREFIX)
    if ".original_module." in f".{name}":
        return None
    name = name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")
    return re.sub(r"\.(lora_[A-Za-z_]+)\.default(?=\.|$)", r".\1", name)


class TrainableView:
    """The trainable parameters of a wrapped model under their user names: what
    `resolve` reads through `named_parameters`, as it reads a model's."""

    def __init__(self, model: nn.Module):
        self.names = [
            (user_name(name), param)
            for name, param in model.named_parameters(remove_duplicate=False)
            if param.requires_grad and user_name(name) is not None
        ]

    def named_parameters(self, remove_duplicate: bool = True):
        return iter(self.names)


def base_of(name: str) -> str:
    """The base tensor an adapter tensor's role follows: its module's weight."""
    match = ADAPTER_TENSOR.match(name)
    return f"{match.group(1)}.weight" if match else name


def view_roles(roles: ParameterRoles, view: TrainableView) -> ParameterRoles:
    """The source's roles on the view: an adapter tensor has its module's role and sits in its
    module's block, so layer decay reaches adapters by depth."""
    names = [name for name, _ in view.names]

    def members(role):
        return None if role is None else frozenset(n for n in names if base_of(n) in role)

    def numbered(blocks):
        return (
            None
            if blocks is None
            else {n: blocks[base_of(n)] for n in names if base_of(n) in blocks}
        )

    return dataclasses.replace(
        roles,
        head=members(roles.head),
        embeddings=members(roles.embeddings),
        stem=members(roles.stem),
        position_embeddings=members(roles.position_embeddings),
        blocks=numbered(roles.blocks),
        fine_blocks=numbered(roles.fine_blocks),
        final_norm=members(roles.final_norm),
        no_weight_decay=members(roles.no_weight_decay),
    )


def is_wrapped(model: nn.Module) -> bool:
    """Whether `model` is a peft model (without importing peft where none is used)."""
    return type(model).__module__.startswith("peft.")


def holding(model: nn.Module, weights: dict[str, torch.Tensor]) -> nn.Module:
    """A CPU copy of the wrapped `model` holding `weights` (its state_dict's keys): `model`
    itself, training or trained, is left as it is."""
    wrapped = copy.deepcopy(model).to("cpu")
    wrapped.load_state_dict(weights)
    return wrapped


def merged(wrapped: nn.Module) -> nn.Module:
    """The plain model: the adapters merged into the base weights (W + alpha / r B A), the
    modules trained fully in their place, no peft module left."""
    return wrapped.merge_and_unload()
