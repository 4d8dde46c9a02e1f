"""Models wrapped as a run wraps them (the check pass's and the runner's own functions), for the
adapter tests and the adapter benchmarks."""

import torch
from torch import nn

from src.adapters.targets import adapter_spec
from src.adapters.wrap import TrainableView, view_roles, wrap
from src.config.schema import AdapterConfig, defaults
from src.models.lenet import LeNetSource
from src.models.source import ModelSource
from src.models.timm_models import TimmSource

LORA = {**defaults(AdapterConfig), "kind": "lora"}


def small_vit() -> TimmSource:
    """A real ViT's names and depth (12 blocks), at 32 pixels: 4 patches, quick on a CPU."""
    return TimmSource("vit_tiny_patch16_224", image_size=32)


def wrapped(source: ModelSource, num_classes: int = 5, meta: bool = False, **adapter):
    """(the wrapped model, its trainable view, the view's roles, the spec) as a run makes them."""
    torch.manual_seed(0)
    with torch.device("meta" if meta else "cpu"):
        model = source.build(1 if isinstance(source, LeNetSource) else 3, num_classes)
    roles = source.roles(model)
    spec = adapter_spec({**LORA, **adapter}, model, roles)
    model = wrap(model, spec)
    view = TrainableView(model)
    return model, view, view_roles(roles, view), spec


def plain_linear_stack() -> nn.Module:
    """A model of nothing peft wraps but its head."""
    return nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2))
