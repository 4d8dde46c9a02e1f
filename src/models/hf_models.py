"""Any Hugging Face image classifier (`model=hf model.name=<dir>`): ViT, DINOv2, ConvNeXt,
Swin, BEiT, ... built from the `config.json` that `save_pretrained` wrote; transformers is the
`hf` extra."""

from pathlib import Path

from torch import nn

from src.errors import GroupwiseError
from src.models.extras import import_extra


def hf_model(
    name: str, num_classes: int, in_channels: int = 3, image_size: int | None = None, **overrides
) -> nn.Module:
    """`AutoModelForImageClassification.from_config` with random weights, for the run's labels
    and input channels; the weights come in through `pretrained` (the same directory), so the
    filter, the report and the meta-device build hold for them too.

    `name`: a directory holding `config.json`, or a hub id (`facebook/dinov2-small`) already in
    the local Hugging Face cache: nothing is downloaded. `image_size` sets the config's where it
    has one (ViTs' position embeddings are sized for it); further keys set other config
    attributes (`+model.hidden_dropout_prob=0.1`).

    The trainer gets the logits tensor: a forward hook takes it from the model's output object,
    so the model, its parameter names and its state_dict stay exactly transformers'.
    """
    transformers = import_extra("transformers", "hf", "model=hf")
    config = _config(transformers, name)
    config.num_labels = num_classes
    if hasattr(config, "num_channels"):
        config.num_channels = in_channels
    if image_size is not None and hasattr(config, "image_size"):
        config.image_size = image_size
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise GroupwiseError(
                f"model.{key}: {type(config).__name__} has no such attribute; see {name}/config.json"
            )
        setattr(config, key, value)
    try:
        model = transformers.AutoModelForImageClassification.from_config(config)
    except ValueError as err:  # a config of a model that does not classify images
        raise GroupwiseError(
            f"model.name={name}: not an image-classification model ({str(err).splitlines()[0]})"
        ) from None
    model.register_forward_hook(_logits_only)
    return model


def _logits_only(module: nn.Module, args, output):
    """transformers returns an output object (or a tuple with return_dict=False); the loss
    and metrics want the logits."""
    return output.logits if hasattr(output, "logits") else output[0]


def _config(transformers, name: str):
    where = f"model.name={name}"
    local = Path(name).expanduser()
    if local.is_dir() and not (local / "config.json").is_file():
        raise GroupwiseError(
            f"{where}: the directory has no config.json; point it at a directory written by "
            "save_pretrained"
        )
    try:
        return transformers.AutoConfig.from_pretrained(str(local), local_files_only=True)
    except (OSError, ValueError) as err:
        raise GroupwiseError(
            f"{where}: neither a directory written by save_pretrained nor a model in the local "
            f"Hugging Face cache ({str(err).splitlines()[0]}); nothing is downloaded at run time"
        ) from None
