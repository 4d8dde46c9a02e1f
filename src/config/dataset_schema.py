"""The datasets' typed options (registered with the rest by `src.config.schema`): what every
dataset takes, the training view (crop, flips, colour jitter) included, and what each kind
adds. Each kind's defaults keep what it did before its view had options: image folders
(photos) take a random resized crop and a horizontal flip, torchvision's small images a padded
random crop and no flip, the embedded digits neither."""

from dataclasses import dataclass

from src.config.option import option

# dataset.augment (src/data/transforms.py): what each training image gets on top of the
# evaluation transform. true and false (as Hydra hands them: "True", "False") keep meaning
# basic and none.
AUGMENT_POLICIES = ("none", "basic", "randaugment", "trivialaugment", "autoaugment")
AUGMENT_CHOICES = (*AUGMENT_POLICIES, "True", "False")
# dataset.train_crop: torchvision's RandomResizedCrop (timm's --scale, --ratio), the padded
# RandomCrop of small images (the evaluation view shifted), or the evaluation view itself.
TRAIN_CROPS = ("resized", "padded", "none")
# dataset.interpolation: PIL's resampling filters, as torchvision names them.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
# torchvision's RandomResizedCrop defaults (and timm's): 8-100 % of the area, 3:4 to 4:3.
RESIZED_CROP_SCALE = [0.08, 1.0]
RESIZED_CROP_RATIO = [3 / 4, 4 / 3]


@dataclass
class LoaderConfig:
    """What every dataset takes."""

    _target_: str = option("???", "the function that builds the dataset")
    batch_size: int = option(16, "images per batch (per process under torchrun)", ge=1)
    image_size: int | None = option(None, "pixels the model sees; null: the dataset's own", ge=1)
    # A sweep over seeds whose jobs are souped together (src.soup) needs one split for all.
    split_seed: int | None = option(
        None,
        "the seed of the split drawn from the files (digits: train/val/test and the shots; an "
        "image folder without train/ and val/, torchvision's: the val share); null: the run's",
        ge=0,
    )
    # Batch mixing (src/data/mixing.py): on the training device, with soft targets.
    mixup_alpha: float = option(0.0, "Mixup's Beta(alpha, alpha) (0.8 in DeiT); 0: off", ge=0)
    cutmix_alpha: float = option(0.0, "CutMix's Beta(alpha, alpha) (1.0 in DeiT); 0: off", ge=0)
    mixup_switch_prob: float = option(
        0.5, "with both alphas on: the share of batches taking CutMix instead", ge=0, le=1
    )
    # The training view (src/data/transforms.py), timm train.py's --scale, --ratio, --hflip,
    # --vflip, --color-jitter; augment=none turns all of it off.
    train_crop: str = option(
        "resized",
        "resized: a random crop of crop_scale of the area at crop_ratio, resized; padded: the "
        "evaluation view shifted by up to crop_padding pixels; none: the evaluation view",
        choices=TRAIN_CROPS,
    )
    crop_scale: list[float] = option(
        RESIZED_CROP_SCALE, "train_crop=resized: [min, max] share of the image's area", gt=0, le=1
    )
    crop_ratio: list[float] = option(
        RESIZED_CROP_RATIO, "train_crop=resized: [min, max] width / height of the crop", gt=0
    )
    crop_padding: int | None = option(
        None, "train_crop=padded: pixels of zero padding; null: an eighth of the size", ge=0
    )
    hflip: float = option(
        0.5, "the share of training images mirrored left-right; 0 for text and digits", ge=0, le=1
    )
    vflip: float = option(
        0.0, "the share mirrored top-bottom (satellite tiles, microscopy)", ge=0, le=1
    )
    color_jitter: float = option(
        0.0,
        "brightness, contrast and saturation each scaled by a factor in [1-x, 1+x] (timm's "
        "--color-jitter, 0.4 there); 0: off",
        ge=0,
        le=1,
    )


@dataclass
class DigitsConfig(LoaderConfig):
    classes: list[int] = option(
        [5, 6, 7, 8, 9], "digits to use, relabelled 0..k-1", ge=0, le=9, min_items=1, unique=True
    )
    shots_per_class: int | None = option(None, "training images per class; null: all", ge=1)
    val_fraction: float = option(0.2, "stratified, fixed by split_seed", gt=0, lt=1)
    test_fraction: float = option(
        0.2,
        "held out for python -m src.evaluate; stratified, fixed by split_seed; 0: none",
        ge=0,
        lt=1,
    )
    image_size: int | None = option(32, "pixels the model sees", ge=1)
    # Digits are not photos: a flip changes a 2, a small crop leaves a few strokes.
    train_crop: str = option(
        "none",
        "padded: the digit shifted by up to crop_padding pixels; resized: a random crop of "
        "crop_scale of the area at crop_ratio, resized; none: the digits as they are",
        choices=TRAIN_CROPS,
    )
    hflip: float = option(0.0, "the share of training digits mirrored left-right", ge=0, le=1)


@dataclass
class FileDatasetConfig(LoaderConfig):
    """Datasets read from files, through DataLoader worker processes."""

    root: str = option("???", "where the files are")
    transform_from: str | None = option(
        "model",
        "model: the model's own preprocessing (its source's metadata); null: the dataset's own; "
        "or a torchvision model or weights name, timm:<model>, hf:<dir>",
    )
    crop_pct: float | None = option(
        None,
        "evaluation: the short side resized to size / crop_pct, the centre size cropped (timm's "
        "--crop-pct); null: the model's (whole small images)",
        gt=0,
        le=1,
    )
    interpolation: str | None = option(
        None, "resampling of every resize and crop; null: the model's", choices=INTERPOLATIONS
    )
    augment: str = option(
        "basic",
        "basic: the training view (train_crop, flips, color_jitter); randaugment, trivialaugment, "
        "autoaugment: basic, then that policy; none: the evaluation view; true/false: basic/none",
        choices=AUGMENT_CHOICES,
    )
    randaugment_num_ops: int = option(2, "RandAugment's operations per image", ge=1)
    randaugment_magnitude: int = option(9, "RandAugment's strength, of 0-30", ge=0, le=30)
    random_erasing: float = option(
        0.0, "the share of training images with a random box erased (0.25 in DeiT)", ge=0, le=1
    )
    num_workers: int = option(0, "worker processes decoding images", ge=0)
    pin_memory: bool = option(False, "page-locked batches, for GPUs")
    persistent_workers: bool = option(False, "keep workers between epochs")


@dataclass
class ImageFolderConfig(FileDatasetConfig):
    val_fraction: float = option(0.2, "used only when root has no train/ and val/", gt=0, lt=1)
    # The decoded cache (src/data/decoded_cache.py, README "The decoded cache").
    cache: bool = option(
        False, "decode every image once into a memory-mapped uint8 cache; later epochs read it"
    )
    cache_dir: str | None = option(
        None, "where caches are kept; null: $XDG_CACHE_HOME/groupwise/decoded (~/.cache/...)"
    )
    cache_resolution: int | None = option(
        None, "the cached images' short side (never upscaled); null: the evaluation resize", ge=1
    )
    cache_hash_contents: bool = option(
        False,
        "key the cache by each file's bytes (read in full at every start), not its inode and "
        "change time: for filesystems that do not keep those",
    )


@dataclass
class TorchvisionDatasetConfig(FileDatasetConfig):
    # CIFAR and MNIST: whole objects in a few pixels, digits a flip would change.
    train_crop: str = option(
        "padded",
        "padded: the image shifted by up to crop_padding pixels; resized: a random crop of "
        "crop_scale of the area at crop_ratio, resized; none: the evaluation view",
        choices=TRAIN_CROPS,
    )
    hflip: float = option(0.0, "the share of training images mirrored left-right", ge=0, le=1)
    download: bool = option(False, "fetch into root when missing")
    val_fraction: float = option(
        0.1,
        "of the training images, stratified, fixed by split_seed (test: the official test set)",
        gt=0,
        lt=1,
    )
