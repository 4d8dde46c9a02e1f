"""The default dataset, embedded: scikit-learn's 1,797 real 8x8 handwritten digits, read
offline from the file scikit-learn ships."""

from functools import cache
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from src.config.dataset_schema import DigitsConfig
from src.data.loading import Data, split_seed
from src.data.transforms import input_description
from src.data.view import View
from src.models.contract import Preprocess


def problems(options: DigitsConfig, seed: int) -> list[str]:
    """What the options' ranges cannot say: one class (a classifier of one class trains to
    loss 0 and accuracy 1, learning nothing), splits that leave no training images, more shots
    than a digit has training images (after its seeded split)."""
    val_fraction, test_fraction = options.val_fraction, options.test_fraction
    if len(options.classes) == 1:
        return [
            f"dataset.classes=[{options.classes[0]}]: one class; a classifier needs at least "
            "two, e.g. dataset.classes=[3,5]"
        ]
    if val_fraction + test_fraction >= 1:
        return [
            f"dataset.val_fraction={val_fraction:g} and dataset.test_fraction={test_fraction:g} "
            "leave no training images; make their sum less than 1"
        ]
    if options.shots_per_class is None:
        return []
    labels = torch.as_tensor(read_digits()[1])
    found = []
    for digit in options.classes:
        available = _train_count(int((labels == digit).sum()), val_fraction, test_fraction)
        if options.shots_per_class > available:
            found.append(
                f"dataset.shots_per_class={options.shots_per_class}: digit {digit} has only "
                f"{available} training images; use at most {available}"
            )
    return found[:1]  # one digit says it: the fix is the same number


def digits(options: DigitsConfig, seed: int) -> Data:
    """scikit-learn's 1,797 real 8x8 handwritten digits, scaled to [0, 1] and resized to
    `image_size`, whatever the model (the digits hold 64 pixels: a larger model's own 224
    would cost ~50x the compute for no more detail; set dataset.image_size for it), gray and
    unnormalised, as the shipped LeNet was trained on them.

    The train/val/test split is stratified and fixed by `split_seed` (else `seed`); holding out
    a test split changes neither val nor the first training images of a class (`_split`);
    `classes` picks a subset whose labels become 0..k-1 in the order given; `shots_per_class`
    keeps the first N training images of each class, so 5 shots are a subset of 20 shots. The training view (crop, flips,
    colour jitter: none by default) is torchvision's transforms on each digit's tensor, drawn
    from the run's seeded generator. The options were checked by `problems`.
    """
    classes, batch_size, image_size = list(options.classes), options.batch_size, options.image_size
    pixels, labels = read_digits()
    images = torch.as_tensor(pixels, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    labels = torch.as_tensor(labels)

    train_idx, val_idx, test_idx = _split(
        labels,
        classes,
        split_seed(options, seed),
        options.val_fraction,
        options.test_fraction,
        options.shots_per_class,
    )
    remapped = torch.full((10,), -1, dtype=torch.long)
    remapped[classes] = torch.arange(len(classes))
    remapped = remapped[labels]

    def split(idx: torch.Tensor) -> TensorDataset:
        return TensorDataset(images[idx], remapped[idx])

    training = split(train_idx)
    transform = view_transform(View.of(options), image_size)
    if transform is not None:
        training = Viewed(training, transform)

    def evaluation_loader(idx: torch.Tensor) -> DataLoader:
        return DataLoader(split(idx), batch_size=max(batch_size, 256))

    return Data(
        train_loader=DataLoader(
            training,
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        ),
        val_loader=evaluation_loader(val_idx),
        num_classes=len(classes),
        in_channels=1,
        class_names=[str(d) for d in classes],
        # An image file becomes what the model saw: gray, resized, pixels in [0, 1].
        input=input_description(
            Preprocess(image_size, image_size, mean=(0.0,), std=(1.0,), channels=1), "small"
        ),
        test_loader=evaluation_loader(test_idx) if len(test_idx) else None,
    )


def view_transform(view: View, image_size: int):
    """The view's transforms on a [1, size, size] digit in [0, 1] (torchvision's v2 transforms
    take a plain tensor as an image): its crop of the whole digit (the evaluation view is the
    digit as it is), its flips and its jitter; None when the view changes nothing."""
    from torchvision.transforms import InterpolationMode, v2

    steps = [*view.crop_transforms(image_size, InterpolationMode.BILINEAR, []), *view.flips()]
    steps += [] if view.jitter() is None else [view.jitter()]
    return v2.Compose(steps) if steps else None


class Viewed(Dataset):
    """(image, label) pairs with `transform` applied to each image as it is read."""

    def __init__(self, pairs: Dataset, transform):
        self.pairs, self.transform = pairs, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        image, label = self.pairs[index]
        return self.transform(image), label


def _train_count(images: int, val_fraction: float, test_fraction: float) -> int:
    """A class's training images once val and test are held out (as `_split` rounds them)."""
    return images - round(images * val_fraction) - round(images * test_fraction)


def _split(labels, classes, seed, val_fraction, test_fraction, shots_per_class):
    """Indices of train, val and test: each class's images in a seeded order give val from the
    front, test from the back, and train (its first `shots_per_class`) from the rest."""
    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx, test_idx = [], [], []
    for digit in classes:
        idx = (labels == digit).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val, n_test = round(len(idx) * val_fraction), round(len(idx) * test_fraction)
        train_of_class = idx[n_val : len(idx) - n_test]
        if shots_per_class is not None:
            train_of_class = train_of_class[:shots_per_class]
        train_idx.append(train_of_class)
        val_idx.append(idx[:n_val])
        test_idx.append(idx[len(idx) - n_test :])
    return torch.cat(train_idx), torch.cat(val_idx), torch.cat(test_idx)


@cache  # the check pass and the builder both read it
def read_digits():
    """The digits as `sklearn.datasets.load_digits()` gives them ((1797, 8, 8) pixels 0-16,
    labels), read straight from the file scikit-learn ships: importing sklearn.datasets
    costs ~1 s of start-up (it pulls in scipy), reading the file 20 ms."""
    import gzip
    import importlib.util

    import numpy as np

    sklearn_dir = Path(importlib.util.find_spec("sklearn").origin).parent
    with gzip.open(sklearn_dir / "datasets" / "data" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
