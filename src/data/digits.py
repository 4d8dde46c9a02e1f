"""The default dataset, embedded: scikit-learn's 1,797 real 8x8 handwritten digits, read
offline from the file scikit-learn ships."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from src.data.loading import Data
from src.errors import GroupwiseError


def digits(
    classes: Sequence[int],
    batch_size: int,
    seed: int,
    shots_per_class: int | None = None,
    val_fraction: float = 0.2,
    image_size: int = 32,
) -> Data:
    """scikit-learn's 1,797 real 8x8 handwritten digits, scaled to [0, 1] and resized.

    The train/val split is stratified and fixed by `seed`; `classes` picks a subset whose
    labels become 0..k-1 in the order given; `shots_per_class` keeps the first N training
    images of each class in a seeded order, so 5 shots are a subset of 20 shots.
    """
    classes = list(classes)  # ranges checked by the schema (DigitsConfig)
    pixels, labels = read_digits()
    images = torch.as_tensor(pixels, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear")
    labels = torch.as_tensor(labels)

    generator = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for digit in classes:
        idx = (labels == digit).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = round(len(idx) * val_fraction)
        train_of_class = idx[n_val:]
        if shots_per_class is not None:
            if shots_per_class > len(train_of_class):
                raise GroupwiseError(
                    f"dataset.shots_per_class={shots_per_class}: digit {digit} has only "
                    f"{len(train_of_class)} training images; use at most {len(train_of_class)}"
                )
            train_of_class = train_of_class[:shots_per_class]
        train_idx.append(train_of_class)
        val_idx.append(idx[:n_val])
    remapped = torch.full((10,), -1, dtype=torch.long)
    remapped[classes] = torch.arange(len(classes))
    remapped = remapped[labels]
    train_idx, val_idx = torch.cat(train_idx), torch.cat(val_idx)

    train = TensorDataset(images[train_idx], remapped[train_idx])
    val = TensorDataset(images[val_idx], remapped[val_idx])
    return Data(
        train_loader=DataLoader(
            train,
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        ),
        val_loader=DataLoader(val, batch_size=max(batch_size, 256)),
        num_classes=len(classes),
        in_channels=1,
        class_names=[str(d) for d in classes],
    )


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
