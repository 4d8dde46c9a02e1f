"""Any torchvision classification model by name."""

from torch import nn

from src.errors import GroupwiseError


def torchvision_model(
    name: str, num_classes: int, in_channels: int = 3, image_size: int | None = None, **kwargs
) -> nn.Module:
    """Any torchvision classification model by name, built with random weights for the run's
    classes; pretrained weights come in through `pretrained`, whose filter skips the old head.

    A model for other than 3 input channels gets its first convolution rebuilt to take them.
    `image_size` reaches the ViTs (`vit_*`), whose position embeddings fix their input size;
    the other classifiers take any size, and ignore it.
    """
    import torchvision  # ~1 s of imports: only models that need it pay for it

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        known = ", ".join(torchvision.models.list_models(torchvision.models)[:8])
        raise GroupwiseError(
            f"model.name={name}: not a torchvision classification model; e.g. {known}, ..."
        ) from None
    model = builder(
        weights=None, num_classes=num_classes, **builder_arguments(name, image_size, **kwargs)
    )
    if in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model


def builder_arguments(name: str, image_size: int | None = None, **kwargs) -> dict:
    """The builder's own further arguments for this model config: `image_size` for the ViTs,
    then the user's keys. An export records them, so that torchvision alone rebuilds it."""
    if image_size is not None and name.startswith("vit_"):
        kwargs.setdefault("image_size", image_size)
    return kwargs


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
