"""The training view: which part of an image training sees (the crop), how often it is
mirrored (the flips) and how its colours vary (the jitter): the dataset options `train_crop`,
`crop_scale`, `crop_ratio`, `crop_padding`, `hflip`, `vflip` and `color_jitter` (their help:
src/config/dataset_schema.py), as the torchvision transforms that the uncached pipeline, the
decoded cache's crop and the digits' tensors all build from here; the device stage draws the
flips and the jitter as these transforms do (`src.data.device_augmentation`)."""

from dataclasses import dataclass

from src.config.dataset_schema import LoaderConfig


@dataclass(frozen=True)
class View:
    crop: str  # one of dataset_schema.TRAIN_CROPS
    scale: tuple[float, float]  # resized: [min, max] share of the area
    ratio: tuple[float, float]  # resized: [min, max] width / height
    padding: int | None  # padded: pixels; None: an eighth of the size
    hflip: float  # probabilities
    vflip: float
    color_jitter: float  # brightness, contrast, saturation factors in [1 - x, 1 + x]

    @classmethod
    def of(cls, options: LoaderConfig) -> "View":
        return cls(
            options.train_crop,
            tuple(options.crop_scale),
            tuple(options.crop_ratio),
            options.crop_padding,
            options.hflip,
            options.vflip,
            options.color_jitter,
        )

    def crop_transforms(self, size: int, interpolation, evaluation: list) -> list:
        """Training's crop, given the evaluation's transforms (which `padded` and `none`
        start from): `resized` crops from the whole image, as torchvision's and timm's
        RandomResizedCrop do."""
        from torchvision.transforms import v2

        if self.crop == "resized":
            return [v2.RandomResizedCrop(size, self.scale, self.ratio, interpolation)]
        if self.crop == "padded":  # the seed's RandomCrop(32, padding=4) at 32 pixels
            padding = size // 8 if self.padding is None else self.padding
            return [*evaluation, v2.RandomCrop(size, padding=padding)]
        return list(evaluation)

    def flips(self) -> list:
        """Only the flips that can happen: a flip at probability 0 would still draw from the
        generator, and shift every later draw."""
        from torchvision.transforms import v2

        return [
            flip(p)
            for flip, p in (
                (v2.RandomHorizontalFlip, self.hflip),
                (v2.RandomVerticalFlip, self.vflip),
            )
            if p
        ]

    def jitter(self):
        """timm's `--color-jitter x`: ColorJitter(x, x, x), no hue; None when off."""
        from torchvision.transforms import v2

        x = self.color_jitter
        return v2.ColorJitter(x, x, x) if x else None


def problems(options: LoaderConfig) -> list[str]:
    """What the ranges cannot say: a scale or ratio that is no [min, max] pair."""
    found = []
    for key in ("crop_scale", "crop_ratio"):
        value = list(getattr(options, key))
        if len(value) != 2 or value[0] > value[1]:
            found.append(
                f"dataset.{key}={value}: not a [min, max] pair; give two numbers, the smaller "
                "first, e.g. dataset.crop_scale=[0.5,1.0]"
            )
    return found
