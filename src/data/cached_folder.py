"""An image folder read from its decoded cache (`dataset.cache=true`): the loader workers only
copy a stored uint8 image and crop it to the model's size; everything after the crop (flip,
policy, scaling, normalisation, random erasing) runs on the training device, on whole batches
(`src.data.device_augmentation.device_stages`).

The stored resolution: the short side of the model's evaluation resize (`pre.resize`, 256 for
a 224-pixel ImageNet model, 37 for LeNet's 32), never upscaled. Evaluation then needs no
resize at all, only its centre crop; training's random resized crop takes on average about
half of the image's area, about the model's size, so the crops lose little detail, as FFCV's
ImageNet recipes store at about 1.1-1.5 times the training size. `dataset.cache_resolution`
stores larger images (sharper small crops, a larger cache) or smaller ones.
"""

import os
from pathlib import Path

from src.data.decoded_cache import CachedImages, CacheSpec, cached_images
from src.data.device_augmentation import tensor_interpolation
from src.data.transforms import Augmentation
from src.models.contract import Preprocess


def default_cache_dir() -> Path:
    """The user's cache folder (XDG): a dataset folder is often read-only or shared, and a
    folder inside a root of class folders would be read as one more class."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "groupwise" / "decoded"


def cache_spec(
    root: str,
    cache_dir: str | None,
    resolution: int | None,
    pre: Preprocess,
    workers: int,
    hash_contents: bool,
) -> CacheSpec:
    return CacheSpec(
        root=root,
        cache_dir=Path(cache_dir).expanduser() if cache_dir else default_cache_dir(),
        channels=pre.channels,
        short_side=resolution or pre.resize,
        interpolation=tensor_interpolation(pre.interpolation),
        workers=workers,
        hash_contents=hash_contents,
    )


def crop_transforms(pre: Preprocess, augmentation: Augmentation):
    """(train, eval) transforms from a stored uint8 image to a uint8 [C, size, size] crop:
    training's crop (the dataset's view, drawn as the uncached pipeline draws it) or, with
    augment=none, evaluation's resize of the short side to `pre.resize` (a no-op at the default
    resolution) and centre crop. The flips and the jitter follow on the device."""
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(tensor_interpolation(pre.interpolation))
    evaluation = [v2.Resize(pre.resize, interpolation, antialias=True), v2.CenterCrop(pre.size)]
    if augmentation.name == "none":
        return v2.Compose(evaluation), v2.Compose(evaluation)
    train = augmentation.view.crop_transforms(pre.size, interpolation, evaluation)
    return v2.Compose(train), v2.Compose(evaluation)


def cached(spec: CacheSpec, folder, transform) -> CachedImages:
    """A scanned torchvision ImageFolder's images, read from the folder's cache (built first
    when missing or out of date), labelled as the scan labels them."""
    files = [Path(path) for path, _ in folder.samples]
    dataset = cached_images(spec, Path(folder.root), files, folder.targets, transform)
    dataset.classes = folder.classes
    return dataset
