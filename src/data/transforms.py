"""Image transforms per model: input size, crop and normalisation come from the torchvision
weights' metadata when the model has it (what the pretrained weights were trained to see),
else from the dataset's own; training adds augmentation."""

from dataclasses import dataclass, replace

from src.errors import GroupwiseError

# What torchvision's ImageNet classifiers were trained on; a folder of photos without a
# model's metadata is normalised the same way.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# LeNet's input size: what a model without metadata gets unless dataset.image_size says otherwise.
DEFAULT_SIZE = 32


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
    """The dataset's `native` preprocessing, or the metadata of `transform_from` (a torchvision
    model name, for its default weights, or a weights name such as
    `ResNet50_Weights.IMAGENET1K_V2`); `image_size` overrides the size, keeping the resize ratio."""
    pre = native if transform_from is None else _from_weights(transform_from)
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
