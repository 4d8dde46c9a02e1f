"""Any Hugging Face image classifier (`model=hf model.name=<dir>`): ViT, DINOv2, ConvNeXt,
Swin, BEiT, ... built from the `config.json` that `save_pretrained` wrote; transformers is the
`hf` extra."""

import copy
import json
import math
import re
from pathlib import Path

from torch import nn

from src.errors import GroupwiseError
from src.models.contract import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ParameterRoles,
    Preprocess,
    roles_from_patterns,
)
from src.models.extras import import_extra
from src.models.source import DROP_PATH_KEY, ModelSource

CONFIG_FILE = "config.json"  # an export rebuilds the model from it
DEFAULT_SIZE = 224  # a processor config without a size
# PIL's resampling filters by number, as Hugging Face image processor configs store them.
PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


class HFSource(ModelSource):
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

    library = "transformers"
    transform_prefix = "hf:"

    def __init__(self, name: str, image_size: int | None = None, **overrides):
        self.transformers = import_extra("transformers", "hf", "model=hf")
        self.name = name
        self.config = _config(self.transformers, name)
        if image_size is not None and hasattr(self.config, "image_size"):
            self.config.image_size = image_size
        for key, value in overrides.items():
            if not hasattr(self.config, key):
                raise GroupwiseError(
                    f"model.{key}: {type(self.config).__name__} has no such attribute; see "
                    f"{name}/config.json"
                )
            setattr(self.config, key, value)

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        config = copy.deepcopy(self.config)
        config.num_labels = num_classes
        if hasattr(config, "num_channels"):
            config.num_channels = in_channels
        try:
            model = self.transformers.AutoModelForImageClassification.from_config(config)
        except ValueError as err:  # a config of a model that does not classify images
            raise GroupwiseError(
                f"model.name={self.name}: not an image-classification model "
                f"({str(err).splitlines()[0]})"
            ) from None
        model.register_forward_hook(_logits_only)
        return model

    def preprocess(self) -> Preprocess:
        return self.preprocess_named(self.name)

    def set_drop_path_rate(self, rate: float) -> None:
        """The config's `drop_path_rate` (BEiT, DINOv2, ConvNeXt, Swin have one; ViT has none)."""
        if not hasattr(self.config, "drop_path_rate"):
            raise GroupwiseError(
                f"{DROP_PATH_KEY}={rate:g}: {type(self.config).__name__} has no drop_path_rate "
                f"(no stochastic depth); remove {DROP_PATH_KEY}"
            )
        self.config.drop_path_rate = rate

    @classmethod
    def preprocess_named(cls, name: str) -> Preprocess:
        """The image processor config: resize to `size` (or, with `crop_pct`, to size /
        crop_pct), centre-crop to `crop_size` when `do_center_crop`, then normalise."""
        where = f"dataset.transform_from={cls.transform_prefix}{name}"
        config = json.loads(_processor_file(name, where).read_text())
        size = _side(config.get("size", DEFAULT_SIZE))
        resize = size
        if config.get("crop_pct"):  # ConvNeXt's: resize to size / crop_pct, crop to size
            resize = math.floor(size / config["crop_pct"])
        elif config.get("do_center_crop") and "crop_size" in config:
            size = _side(config["crop_size"])
        resample = config.get("resample", 2)
        return Preprocess(
            size=size,
            resize=resize,
            mean=tuple(config.get("image_mean", IMAGENET_MEAN)),
            std=tuple(config.get("image_std", IMAGENET_STD)),
            channels=3,
            interpolation=PIL_FILTERS.get(
                resample, resample if isinstance(resample, str) else "bilinear"
            ),
        )

    def roles(self, model: nn.Module) -> ParameterRoles:
        return transformers_roles(model)

    def export_files(self, model: nn.Module) -> dict[str, str]:
        """The config.json an export rebuilds the model from (its builder takes no more)."""
        return {CONFIG_FILE: model.config.to_json_string()}


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


def _processor_file(name: str, where: str) -> Path:
    folder = Path(name).expanduser()
    found = folder / "preprocessor_config.json"
    if not folder.is_dir():  # a hub id: its file in the local cache, if there
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "preprocessor_config.json")
            found = Path(cached) if isinstance(cached, str) else found
        except (ImportError, ValueError):  # no hub library, or not a hub id
            pass
    if not found.is_file():
        raise GroupwiseError(
            f"{where}: no preprocessor_config.json there (nor in the local Hugging Face cache); "
            "save the model's image processor beside it (processor.save_pretrained(dir)), or set "
            "dataset.transform_from=null to use the dataset's own size and normalisation"
        )
    return found


def _side(size) -> int:
    """An image processor's size: a number, or {height, width} / {shortest_edge}."""
    if isinstance(size, dict):
        return int(size.get("shortest_edge") or size.get("height"))
    return int(size)


def transformers_roles(model: nn.Module) -> ParameterRoles:
    """By transformers' names under the base model (`vit.`, `dinov2.`, `convnext.`): its
    embeddings (a ResNet's embedder), its layers or stages (`vit.layers.N`,
    `dinov2.encoder.layer.N`, `convnext.encoder.stages.N`), each stage's layers (a stage's
    downsampling with its first layer, as timm does), the norm after them (`layernorm`: a
    ViT's over all tokens; a ConvNeXt's over the pooled features, which timm calls
    `head.norm`), the classifier, the position embeddings (ViT, DeiT, DINOv2, BEiT, Swin),
    and the first convolution (the patch projection, a ResNet's embedder) as the stem."""
    base = re.escape(model.base_model_prefix)
    blocks = rf"{base}\.(?:encoder\.)?(?:layers?|stages)\.(\d+)\."
    return roles_from_patterns(
        model,
        f"transformers ({type(model).__name__})",
        head=r"classifier\.",
        embeddings=rf"{base}\.(?:embeddings|embedder)\.",
        blocks=blocks,
        fine_blocks=[
            (rf"{blocks}downsampling_layer\.", (0,)),
            (rf"{blocks}(?:layers\.(\d+)\.)?", None),
        ],
        final_norm=rf"{base}\.layernorm\.",
        position_embeddings=rf"{base}\.embeddings\.position_embeddings$",
        no_weight_decay=rf"{base}\.embeddings\.(?:cls_token|mask_token|position_embeddings|register_tokens|distillation_token)$",
    )
