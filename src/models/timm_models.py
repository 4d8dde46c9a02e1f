"""Any timm model by name (`model=timm model.name=<name>`), e.g. vit_small_patch16_224,
convnext_tiny, efficientnet_b0, resnet50.a1_in1k; timm is the `timm` extra."""

from torch import nn

from src.errors import GroupwiseError
from src.models.extras import import_extra


def timm_model(
    name: str, num_classes: int, in_channels: int = 3, image_size: int | None = None, **kwargs
) -> nn.Module:
    """`timm.create_model` with random weights, for the run's classes and input channels
    (timm's `num_classes`, `in_chans`); pretrained weights come in through `pretrained`.

    `image_size` reaches the architectures whose input size is fixed at construction (timm
    marks them `fixed_input_size`: ViTs, whose position embeddings are sized for it), so a ViT
    made for 224 pixels trains on 32 when asked. Further keys are timm's own arguments
    (`+model.drop_path_rate=0.1`).
    """
    timm = import_extra("timm", "timm", "model=timm")
    return timm.create_model(
        name,
        pretrained=False,
        num_classes=num_classes,
        in_chans=in_channels,
        **create_arguments(name, image_size, **kwargs),
    )


def create_arguments(name: str, image_size: int | None = None, **kwargs) -> dict:
    """timm's own further arguments of `create_model` for this model config: `img_size` where
    the input size is fixed, then the user's keys. An export records them, so that
    `timm.create_model` alone rebuilds the architecture."""
    timm = import_extra("timm", "timm", "model=timm")
    fixed_input_size = _pretrained_cfg(timm, name).get("fixed_input_size", False)  # name checked
    if image_size is not None and fixed_input_size:
        kwargs.setdefault("img_size", image_size)
    return kwargs


def _pretrained_cfg(timm, name: str) -> dict:
    """timm's metadata of the model (input size, whether it is fixed, normalisation)."""
    if not timm.is_model(name.partition(".")[0]):
        close = timm.list_models(f"*{name.partition('.')[0][:6]}*")[:6]
        raise GroupwiseError(
            f"model.name={name}: not a timm model; timm.list_models() lists them"
            + (f", e.g. {', '.join(close)}" if close else "")
        )
    cfg = timm.models.get_pretrained_cfg(name)
    return cfg.to_dict() if cfg is not None else {}
