"""Tiny models of every family the presets serve, as timm and transformers build them, and
model directories written by transformers' own `save_pretrained`."""

from pathlib import Path

import timm
import torch
import torchvision
from transformers import (
    AutoModelForImageClassification,
    ConvNextConfig,
    Dinov2Config,
    ResNetConfig,
    ViTConfig,
    ViTImageProcessor,
)

from src.models.contract import ParameterRoles
from src.models.hf_models import transformers_roles
from src.models.source import ModelSource
from src.models.timm_models import TimmSource
from src.models.torchvision_models import TorchvisionSource

# Small widths, real depths: the layer ids and the presets' multipliers are a full model's.
HF_CONFIGS = {
    "hf_vit": lambda: ViTConfig(
        hidden_size=16, num_hidden_layers=12, num_attention_heads=2, intermediate_size=32,
        image_size=32, patch_size=8,
    ),
    "hf_dinov2": lambda: Dinov2Config(
        hidden_size=16, num_hidden_layers=12, num_attention_heads=2, mlp_ratio=2,
        image_size=32, patch_size=8,
    ),
    "hf_convnext": lambda: ConvNextConfig(hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 2, 1]),
    "hf_resnet": lambda: ResNetConfig(
        hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], embedding_size=8
    ),
}  # fmt: skip
TIMM_NAMES = {
    "timm_vit": "vit_base_patch16_224",
    "timm_convnext": "convnext_tiny",
    "timm_resnet": "resnet50",
}


def on_meta(family: str, num_classes: int = 3) -> torch.nn.Module:
    """The family's model (one above, or a torchvision model's name) on the meta device: the
    real parameter names, no memory."""
    with torch.device("meta"):
        if family in TIMM_NAMES:
            return timm.create_model(TIMM_NAMES[family], num_classes=num_classes)
        if family in HF_CONFIGS:
            config = HF_CONFIGS[family]()
            config.num_labels = num_classes
            return AutoModelForImageClassification.from_config(config)
        return torchvision.models.get_model(family, num_classes=num_classes)


def built_on_meta(
    source: ModelSource, in_channels: int = 3, num_classes: int = 3
) -> torch.nn.Module:
    """What a run's model source builds, on the meta device: no memory, however large."""
    with torch.device("meta"):
        return source.build(in_channels, num_classes)


def roles_of(family: str, model: torch.nn.Module) -> ParameterRoles:
    """What the family's model source names in `model`, as a run asks it."""
    if family in TIMM_NAMES:
        return TimmSource(TIMM_NAMES[family]).roles(model)
    if family in HF_CONFIGS:
        return transformers_roles(model)
    return TorchvisionSource(family).roles(model)


def hf_vit_dir(folder: Path, num_labels: int = 10, seed: int = 0) -> Path:
    """A tiny ViT classifier saved by transformers (config.json, model.safetensors) with its
    image processor (preprocessor_config.json), as a hub model directory holds them."""
    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        image_size=32, patch_size=8, num_labels=num_labels,
    )  # fmt: skip
    AutoModelForImageClassification.from_config(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def hf_config_dir(folder: Path, family: str) -> Path:
    """Only the config.json of a family's tiny model, as save_pretrained writes it."""
    HF_CONFIGS[family]().save_pretrained(folder)
    return folder
