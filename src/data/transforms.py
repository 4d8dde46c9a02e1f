"""Image transforms per model: input size, crop and normalisation come from the model's own
metadata when it has some (what the pretrained weights were trained to see: torchvision's
weights, timm's pretrained config, a Hugging Face image processor config), else from the
dataset's own; training adds augmentation."""

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from src.errors import GroupwiseError

# What torchvision's ImageNet classifiers were trained on; a folder of photos without a
# model's metadata is normalised the same way.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# LeNet's input size: what a model without metadata gets unless dataset.image_size says otherwise.
DEFAULT_SIZE = 32
# transform_from's prefixes for the metadata of timm and Hugging Face models.
TIMM, HF = "timm:", "hf:"
# PIL's resampling filters by number, as Hugging Face image processor configs store them.
PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class Preprocess:
    size: int  # side of the square the model sees
    resize: int  # evaluation: short side resized to this, then the centre `size` cropped
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int  # 3 turns grayscale images into RGB, as ImageNet weights expect
    interpolation: str = "bilinear"


def preprocess_for(
    transform_from: str | None, image_size: int | None, native: Preprocess
) -> Preprocess:
    """The dataset's `native` preprocessing, or the metadata of `transform_from`: a torchvision
    model name (its default weights) or weights name (`ResNet50_Weights.IMAGENET1K_V2`),
    `timm:<model name>` (`timm:resnet50.a1_in1k`), or `hf:<directory or hub id>` (its
    preprocessor_config.json); `image_size` overrides the size, keeping the resize ratio."""
    if transform_from is None:
        pre = native
    elif transform_from.startswith(TIMM):
        pre = _from_timm(transform_from.removeprefix(TIMM))
    elif transform_from.startswith(HF):
        pre = _from_hf_processor(transform_from.removeprefix(HF))
    else:
        pre = _from_weights(transform_from)
    if image_size is None:
        return pre
    return replace(pre, size=image_size, resize=round(image_size * pre.resize / pre.size))


def _from_weights(name: str) -> Preprocess:
    from torchvision import models

    try:
        weights = models.get_weight(name) if "." in name else models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise GroupwiseError(
            f"dataset.transform_from={name}: neither a torchvision model nor a weights name with "
            "metadata (e.g. resnet18, ResNet50_Weights.IMAGENET1K_V2); set it to null to use the "
            "dataset's own size and normalisation"
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


def _from_timm(name: str) -> Preprocess:
    """timm's pretrained config for the model (and tag), as its own `resolve_data_config`
    reads it: the evaluation resize is the size / crop_pct."""
    where = f"dataset.transform_from={TIMM}{name}"
    try:
        from timm.data import resolve_data_config
        from timm.models import get_pretrained_cfg
    except ImportError:
        raise GroupwiseError(
            f"{where}: needs timm, which is not installed; install the 'timm' extra: "
            "pip install -e '.[timm]'"
        ) from None
    cfg = get_pretrained_cfg(name)
    if cfg is None:
        raise GroupwiseError(
            f"{where}: timm has no pretrained config for {name}; name a timm model (with or "
            "without a .tag), or set dataset.transform_from=null"
        )
    data = resolve_data_config({}, pretrained_cfg=cfg.to_dict())
    channels, _, size = data["input_size"]
    interpolation = data["interpolation"]
    return Preprocess(
        size=size,
        resize=math.floor(size / data["crop_pct"]),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        channels=channels,
        # timm's `random` picks one per image; evaluation needs one: the common one.
        interpolation=interpolation if interpolation in PIL_FILTERS.values() else "bilinear",
    )


def _from_hf_processor(name: str) -> Preprocess:
    """A Hugging Face image processor config: resize to `size` (or, with `crop_pct`, to
    size / crop_pct), centre-crop to `crop_size` when `do_center_crop`, then normalise."""
    where = f"dataset.transform_from={HF}{name}"
    config = json.loads(_hf_processor_file(name, where).read_text())
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


def _hf_processor_file(name: str, where: str) -> Path:
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


def train_and_eval_transforms(pre: Preprocess, style: str, native_size: int | None, augment: bool):
    """(train, eval) transforms from PIL images to normalised float tensors.

    `photo` (image folders): evaluation resizes and centre-crops; training takes a random
    resized crop and a horizontal flip. `small` (CIFAR, MNIST: whole objects in a few pixels,
    digits that a flip would change): evaluation only resizes; training shifts the image with a
    padded random crop (the seed's RandomCrop(32, padding=4) at 32 pixels).
    """
    import torch
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(pre.interpolation)
    to_tensor = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(pre.mean, pre.std),
    ]
    if pre.channels == 3:
        to_tensor.insert(0, v2.RGB())
    if style == "photo":
        evaluation = [v2.Resize(pre.resize, interpolation), v2.CenterCrop(pre.size)]
        train = [
            v2.RandomResizedCrop(pre.size, interpolation=interpolation),
            v2.RandomHorizontalFlip(),
        ]
    else:
        evaluation = (
            [] if pre.size == native_size else [v2.Resize((pre.size, pre.size), interpolation)]
        )
        train = [*evaluation, v2.RandomCrop(pre.size, padding=pre.size // 8)]
    if not augment:
        train = evaluation
    return v2.Compose([*train, *to_tensor]), v2.Compose([*evaluation, *to_tensor])


def input_description(pre: Preprocess, style: str) -> dict:
    """How an image file of any size becomes the model's input, in the terms of torchvision's
    transforms, for export/model.json and `src.predict`: `resize` is a short side (`photo`, as
    evaluation resizes) or [height, width] (`small`: the whole image squeezed to the model's
    size), then the centre `crop`, then pixels scaled to [0, 1] and normalised."""
    return {
        "channels": pre.channels,  # 3: RGB, 1: grayscale (convert the image to this first)
        "size": pre.size,
        "resize": pre.resize if style == "photo" else [pre.size, pre.size],
        "crop": pre.size,
        "interpolation": pre.interpolation,
        "mean": list(pre.mean),
        "std": list(pre.std),
    }


def inference_transform(description: dict):
    """`input_description`'s transform, from a PIL image in the model's colour mode (RGB or L)
    to a normalised float tensor: what the README's stand-alone snippet builds too."""
    import torch
    from torchvision.transforms import InterpolationMode, v2

    return v2.Compose(
        [
            v2.Resize(description["resize"], InterpolationMode(description["interpolation"])),
            v2.CenterCrop(description["crop"]),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(description["mean"], description["std"]),
        ]
    )
