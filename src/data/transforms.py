"""Image transforms per model: input size, crop and normalisation come from the model
source's own metadata when it has some (what the pretrained weights were trained to see),
else from the dataset's own; training adds augmentation."""

from dataclasses import dataclass, replace

from src.data.view import View
from src.models.contract import Preprocess
from src.models.source import preprocess_named

# dataset.transform_from's default: the model source's own preprocessing.
FROM_MODEL = "model"


def preprocess_for(
    transform_from: str | None,
    image_size: int | None,
    native: Preprocess,
    model_preprocess: Preprocess | None = None,
) -> Preprocess:
    """How the dataset prepares images: `transform_from=model` (the default) takes the model
    source's own preprocessing (`model_preprocess`), completed by the dataset's `native` one
    where the source leaves a part to the data (LeNet names only its size), or `native` for a
    model without metadata; null takes `native`; any other value names metadata (`resnet50`,
    `ResNet50_Weights.IMAGENET1K_V2`, `timm:resnet50.a1_in1k`, `hf:<dir>`), read by the model
    source that names it. `image_size` overrides the size, keeping the resize ratio."""
    if transform_from is None:
        pre = native
    elif transform_from == FROM_MODEL:
        pre = native if model_preprocess is None else _completed(model_preprocess, native)
    else:
        pre = preprocess_named(transform_from)
    if image_size is None:
        return pre
    return replace(pre, size=image_size, resize=round(image_size * pre.resize / pre.size))


def evaluation_view(pre: Preprocess, crop_pct: float | None, interpolation: str | None):
    """`pre` with the dataset's own evaluation crop fraction (timm's crop_pct: the short side
    resized to size / crop_pct) and interpolation, where it sets them."""
    if crop_pct is not None:
        pre = replace(pre, resize=round(pre.size / crop_pct))
    return pre if interpolation is None else replace(pre, interpolation=interpolation)


def _completed(own: Preprocess, native: Preprocess) -> Preprocess:
    """The model's preprocessing with what it leaves to the data taken from `native`."""
    return replace(
        own,
        resize=own.resize or round(own.size * native.resize / native.size),
        mean=own.mean or native.mean,
        std=own.std or native.std,
        channels=own.channels or native.channels,
    )


def augment_policy(value) -> str:
    """dataset.augment's policy: true and false (its only values before it had policies, kept
    by older runs' configs as booleans) read as basic and none."""
    return {"True": "basic", "False": "none"}.get(str(value), str(value))


@dataclass(frozen=True)
class Augmentation:
    """The dataset's augmentation options (`FileDatasetConfig` has their help)."""

    policy: str  # one of schema.AUGMENT_CHOICES
    random_erasing: float  # probability
    randaugment_num_ops: int
    randaugment_magnitude: int
    view: View  # crop, flips, colour jitter

    @property
    def name(self) -> str:
        """The policy, true/false read as basic/none."""
        return augment_policy(self.policy)


# Long: one pipeline per style and policy, written out in order as it runs
def train_and_eval_transforms(
    pre: Preprocess, style: str, native_size: int | None, augment: Augmentation
):
    """(train, eval) transforms from PIL images to normalised float tensors.

    Evaluation: `photo` (image folders, or a dataset.crop_pct) resizes and centre-crops;
    `small` (CIFAR, MNIST: whole objects in a few pixels) only resizes, when the model's size
    is not the dataset's own (`native_size`). Training (`basic`) takes the dataset's view
    (`src.data.view`: its crop, then its flips), then the colour jitter; a policy
    (RandAugment, TrivialAugmentWide, AutoAugment: ImageNet's for image folders, CIFAR-10's
    for torchvision's small datasets) follows on the PIL image; random erasing comes last, on
    the normalised tensor (an erased box is filled with 0: the mean colour). `none`: training
    sees the evaluation view, random erasing still applies.
    """
    import torch
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(pre.interpolation)
    colour = [v2.RGB()] if pre.channels == 3 else []
    to_tensor = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(pre.mean, pre.std),
    ]
    if style == "photo":
        evaluation = [v2.Resize(pre.resize, interpolation), v2.CenterCrop(pre.size)]
    else:
        evaluation = (
            [] if pre.size == native_size else [v2.Resize((pre.size, pre.size), interpolation)]
        )
    view = augment.view
    train = [*view.crop_transforms(pre.size, interpolation, evaluation), *view.flips()]
    jitter = [] if view.jitter() is None else [view.jitter()]
    policy = {
        "none": [],
        "basic": [],
        "randaugment": [
            v2.RandAugment(
                augment.randaugment_num_ops,
                augment.randaugment_magnitude,
                interpolation=interpolation,
            )
        ],
        "trivialaugment": [v2.TrivialAugmentWide(interpolation=interpolation)],
        "autoaugment": [
            v2.AutoAugment(
                v2.AutoAugmentPolicy.IMAGENET
                if native_size is None
                else v2.AutoAugmentPolicy.CIFAR10,
                interpolation=interpolation,
            )
        ],
    }[augment.name]
    if augment.name == "none":
        train, jitter = evaluation, []
    erasing = [v2.RandomErasing(augment.random_erasing)] if augment.random_erasing else []
    return (
        v2.Compose([*train, *colour, *jitter, *policy, *to_tensor, *erasing]),
        v2.Compose([*evaluation, *colour, *to_tensor]),
    )


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
