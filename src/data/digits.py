"""The default dataset, embedded: scikit-learn's 1,797 real 8x8 handwritten digits, read
offline from the file scikit-learn ships."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from src.data.loading import Data
from src.data.transforms import input_description
from src.errors import GroupwiseError
from src.models.contract import Preprocess


def digits(
    classes: Sequence[int],
    batch_size: int,
    seed: int,
    shots_per_class: int | None,
    val_fraction: float,
    image_size: int,
    test_fraction: float,
) -> Data:
    """scikit-learn's 1,797 real 8x8 handwritten digits, scaled to [0, 1] and resized.

    The train/val/test split is stratified and fixed by `seed`; holding out a test split changes
    neither val nor the first training images of a class (`_split`); `classes` picks a subset
    whose labels become 0..k-1 in the order given; `shots_per_class` keeps the first N training
    images of each class, so 5 shots are a subset of 20 shots.
    """
    classes = list(classes)  # ranges checked by the schema (DigitsConfig)
    if val_fraction + test_fraction >= 1:
        raise GroupwiseError(
            f"dataset.val_fraction={val_fraction:g} and dataset.test_fraction={test_fraction:g} "
            "leave no training images; make their sum less than 1"
        )
    pixels, labels = read_digits()
    images = torch.as_tensor(pixels, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    labels = torch.as_tensor(labels)

    train_idx, val_idx, test_idx = _split(
        labels, classes, seed, val_fraction, test_fraction, shots_per_class
    )
    remapped = torch.full((10,), -1, dtype=torch.long)
    remapped[classes] = torch.arange(len(classes))
    remapped = remapped[labels]

    def split(idx: torch.Tensor) -> TensorDataset:
        return TensorDataset(images[idx], remapped[idx])

    def evaluation_loader(idx: torch.Tensor) -> DataLoader:
        return DataLoader(split(idx), batch_size=max(batch_size, 256))

    return Data(
        train_loader=DataLoader(
            split(train_idx),
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
            if shots_per_class > len(train_of_class):
                raise GroupwiseError(
                    f"dataset.shots_per_class={shots_per_class}: digit {digit} has only "
                    f"{len(train_of_class)} training images; use at most {len(train_of_class)}"
                )
            train_of_class = train_of_class[:shots_per_class]
        train_idx.append(train_of_class)
        val_idx.append(idx[:n_val])
        test_idx.append(idx[len(idx) - n_test :])
    return torch.cat(train_idx), torch.cat(val_idx), torch.cat(test_idx)


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
