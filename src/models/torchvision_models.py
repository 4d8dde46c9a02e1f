"""Any torchvision classification model by name (`model=resnet18`, `model=vit_b_16`, ...)."""

import re
from dataclasses import replace

from torch import nn

from src.errors import GroupwiseError
from src.models.contract import ParameterRoles, Preprocess, roles_from_patterns
from src.models.source import ModelSource

# Parameter roles by family (model names matching the key), as regexes on parameter names.
# torchvision's models carry no such metadata; a family not listed answers head only.
FAMILY_ROLES = {
    r"vit_": {
        "embeddings": r"(?:conv_proj\.|class_token$|encoder\.pos_embedding$)",
        "blocks": r"encoder\.layers\.encoder_layer_(\d+)\.",
        "final_norm": r"encoder\.ln\.",
        "no_weight_decay": r"(?:class_token|encoder\.pos_embedding)$",
        "position_embeddings": r"encoder\.pos_embedding$",
    },
    r"(?:resnet|resnext|wide_resnet)\d": {
        "embeddings": r"(?:conv1|bn1)\.",
        "blocks": r"layer(\d+)\.",
        "fine_blocks": r"layer(\d+)\.(\d+)\.",
    },
}
HEAD = r"(?:fc|heads?|classifier)\."  # torchvision's classifier module names


class TorchvisionSource(ModelSource):
    """`torchvision.models.get_model_builder(name)`, built with random weights for the run's
    classes; pretrained weights come in through `pretrained`, whose filter skips the old head.

    A model for other than 3 input channels gets its first convolution rebuilt to take them.
    `image_size` reaches the ViTs (`vit_*`), whose position embeddings fix their input size;
    the other classifiers take any size, and ignore it. Further keys are the builder's own.
    """

    library = "torchvision"
    transform_prefix = ""  # dataset.transform_from=resnet50, or a weights name

    def __init__(self, name: str, image_size: int | None = None, **kwargs):
        import torchvision  # ~1 s of imports: only models that need it pay for it

        try:
            torchvision.models.get_model_builder(name)
        except ValueError:
            known = ", ".join(torchvision.models.list_models(torchvision.models)[:8])
            raise GroupwiseError(
                f"model.name={name}: not a torchvision classification model; e.g. {known}, ..."
            ) from None
        self.name, self.image_size, self.kwargs = name, image_size, kwargs

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        import torchvision

        builder = torchvision.models.get_model_builder(self.name)
        try:
            model = builder(weights=None, num_classes=num_classes, **self.builder_arguments())
        except TypeError as err:  # a key under model that the builder does not take
            raise GroupwiseError(
                f"model.name={self.name}: {err}; check the keys under model"
            ) from None
        except AssertionError as err:  # a ViT's size that its patches do not tile
            patch = self.name.rpartition("_")[2]
            raise GroupwiseError(
                f"dataset.image_size={self.image_size}: {self.name} cuts images into "
                f"{patch}x{patch} patches and needs a multiple of {patch}, e.g. "
                f"dataset.image_size=224 ({err})"
            ) from None
        if in_channels != 3:
            _replace_first_conv(model, in_channels)
        return model

    def builder_arguments(self) -> dict:
        """`image_size` for the ViTs, then the user's keys."""
        kwargs = dict(self.kwargs)
        if self.image_size is not None and self.name.startswith("vit_"):
            kwargs.setdefault("image_size", self.image_size)
        return kwargs

    def set_drop_path_rate(self, rate: float) -> None:
        """The builder's `stochastic_depth_prob` (ConvNeXt, EfficientNet; their builders default
        to 0.1 and 0.2 without it). Whether the builder takes it is tried on the meta device:
        ResNet and ViT have no stochastic depth, Swin's and MaxViT's builders fix it."""
        import torch
        import torchvision

        builder = torchvision.models.get_model_builder(self.name)
        try:
            with torch.device("meta"):
                model = builder(weights=None, stochastic_depth_prob=rate)
        except TypeError:
            model = None
        if model is None or not any(type(m).__name__ == "StochasticDepth" for m in model.modules()):
            super().set_drop_path_rate(rate)
        self.kwargs["stochastic_depth_prob"] = rate

    def preprocess(self) -> Preprocess:
        """The metadata of the model's default weights."""
        return self.preprocess_named(self.name)

    @classmethod
    def preprocess_named(cls, name: str) -> Preprocess:
        """A model name (its default weights) or a weights name (`ResNet50_Weights.IMAGENET1K_V2`)."""
        from torchvision import models

        try:
            weights = (
                models.get_weight(name) if "." in name else models.get_model_weights(name).DEFAULT
            )
        except (ValueError, KeyError, AttributeError):
            raise GroupwiseError(
                f"dataset.transform_from={name}: neither a torchvision model nor a weights name "
                "with metadata (e.g. resnet18, ResNet50_Weights.IMAGENET1K_V2); set it to null to "
                "use the dataset's own size and normalisation"
            ) from None
        meta = weights.transforms()
        return Preprocess(
            size=meta.crop_size[0],
            resize=meta.resize_size[0],
            mean=tuple(meta.mean),
            std=tuple(meta.std),
            channels=3,
            interpolation=meta.interpolation.value,
        )

    def roles(self, model: nn.Module) -> ParameterRoles:
        """By the family's names; the stem is the first convolution, the one `build` rebuilds
        for other than 3 input channels; only the ViTs have position embeddings."""
        family = next((r for f, r in FAMILY_ROLES.items() if re.match(f, self.name)), {})
        roles = roles_from_patterns(model, f"torchvision ({self.name})", head=HEAD, **family)
        missing = f"torchvision has no metadata for it, and groupwise knows {self.name}'s head only"
        return roles if family else replace(roles, missing=missing)


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    """The first Conv2d in definition order (the stem), rebuilt for `in_channels`; the README's
    stand-alone rebuild of an export does the same."""
    name, conv = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    model.set_submodule(
        name,
        nn.Conv2d(
            in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
        ),
    )
