"""Datasets and loaders. The default, `digits`, is embedded: it loads offline from scikit-learn.
The others read files: image folders, and CIFAR-10 / MNIST / Fashion-MNIST through torchvision."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from src import transforms
from src.errors import GroupwiseError
from src.transforms import DEFAULT_SIZE, IMAGENET_MEAN, IMAGENET_STD, Preprocess, preprocess_for


@dataclass
class Data:
    train_loader: DataLoader
    val_loader: DataLoader
    num_classes: int
    in_channels: int
    class_names: list[str]


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
    classes = _check_digits_args(classes, batch_size, shots_per_class, val_fraction)
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


def _check_digits_args(classes, batch_size, shots_per_class, val_fraction) -> list[int]:
    problems = []
    classes = list(classes)
    if not classes:
        problems.append("dataset.classes=[]: give at least one digit, e.g. dataset.classes=[5,6]")
    bad = [c for c in classes if not isinstance(c, int) or not 0 <= c <= 9]
    if bad:
        problems.append(f"dataset.classes={classes}: {bad} not digits; use integers 0-9")
    if len(set(classes)) != len(classes):
        problems.append(f"dataset.classes={classes}: a digit is listed twice; list each once")
    if not isinstance(batch_size, int) or batch_size < 1:
        problems.append(f"dataset.batch_size={batch_size}: must be a positive integer, e.g. 16")
    if shots_per_class is not None and (
        not isinstance(shots_per_class, int) or shots_per_class < 1
    ):
        problems.append(
            f"dataset.shots_per_class={shots_per_class}: must be a positive integer, "
            "or null for every training image"
        )
    if not 0 < val_fraction < 1:
        problems.append(f"dataset.val_fraction={val_fraction}: must lie strictly between 0 and 1")
    if problems:
        raise GroupwiseError(*problems)
    return classes


# The seed's CIFAR-10 normalisation (measured on its PNG export), and MNIST's usual ones.
CIFAR10_NATIVE = Preprocess(32, 32, (0.4948, 0.4857, 0.4468), (0.2458, 0.2424, 0.2603), 3)
MNIST_NATIVE = Preprocess(32, 32, (0.1307,), (0.3081,), 1)  # 28 pixels resized to LeNet's 32
FASHION_MNIST_NATIVE = Preprocess(32, 32, (0.2860,), (0.3530,), 1)
PHOTO_NATIVE = Preprocess(DEFAULT_SIZE, 37, IMAGENET_MEAN, IMAGENET_STD, 3)


@dataclass
class Loading:
    """DataLoader settings shared by the file-backed datasets."""

    batch_size: int
    seed: int
    num_workers: int = 0  # worker processes decoding and augmenting; 0: in the training process
    pin_memory: bool = False  # page-locked batches: faster copies to a GPU
    persistent_workers: bool = False  # keep workers between epochs; needs num_workers > 0

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            found.append(
                f"dataset.batch_size={self.batch_size}: must be a positive integer, e.g. 32"
            )
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            found.append(f"dataset.num_workers={self.num_workers}: must be an integer >= 0")
        elif self.persistent_workers and self.num_workers == 0:
            found.append(
                "dataset.persistent_workers=true needs worker processes; set dataset.num_workers "
                "to 1 or more, or persistent_workers=false"
            )
        return found

    def loaders(self, train, val) -> tuple[DataLoader, DataLoader]:
        common = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
        }
        train_loader = DataLoader(
            train, shuffle=True, generator=torch.Generator().manual_seed(self.seed), **common
        )
        return train_loader, DataLoader(val, **common)


def image_folder(
    root: str,
    batch_size: int,
    seed: int,
    transform_from: str | None = None,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    augment: bool = True,
    **loading,
) -> Data:
    """Images in class folders: `root/train/<class>/*` and `root/val/<class>/*`, or
    `root/<class>/*` split into train and val by `val_fraction` (stratified, fixed by `seed`)."""
    from torchvision.datasets import ImageFolder

    load = Loading(batch_size, seed, **loading)
    problems = load.problems()
    if not 0 < val_fraction < 1:
        problems.append(f"dataset.val_fraction={val_fraction}: must lie strictly between 0 and 1")
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        problems.append(
            f"dataset.root={root}: no such directory; point it at a folder holding train/ and val/ "
            "class folders, or class folders directly"
        )
    if problems:
        raise GroupwiseError(*problems)
    pre = preprocess_for(transform_from, image_size, PHOTO_NATIVE)
    train_tf, val_tf = transforms.build(pre, "photo", None, augment)

    def scan(folder: Path, transform) -> ImageFolder:
        try:
            return ImageFolder(str(folder), transform=transform, loader=ImageReader(root))
        except FileNotFoundError as err:  # no class folder, or a class folder without images
            raise GroupwiseError(
                f"dataset.root={root}: {err}; expected one folder per class holding images"
            ) from None

    if (root_path / "train").is_dir() and (root_path / "val").is_dir():
        train, val = scan(root_path / "train", train_tf), scan(root_path / "val", val_tf)
        if train.classes != val.classes:
            raise GroupwiseError(
                f"dataset.root={root}: train/ and val/ hold different classes "
                f"({train.classes} vs {val.classes}); give both the same class folders"
            )
    else:
        train, val = scan(root_path, train_tf), scan(root_path, val_tf)
    classes = train.classes
    if train.root == val.root:  # one folder: split it
        train_idx, val_idx = _stratified_split(train.targets, val_fraction, seed)
        train, val = Subset(train, train_idx), Subset(val, val_idx)
    train_loader, val_loader = load.loaders(train, val)
    return Data(train_loader, val_loader, len(classes), pre.channels, list(classes))


class ImageReader:
    """torchvision's image loader, with a damaged or foreign file named as the user's to fix.
    A class, not a closure: DataLoader workers may need to pickle it."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self, path: str):
        from torchvision.datasets.folder import default_loader

        try:
            return default_loader(path)
        except (OSError, ValueError) as err:  # PIL's UnidentifiedImageError is an OSError
            raise GroupwiseError(
                f"dataset.root={self.root}: cannot read the image {path} ({type(err).__name__}); "
                "replace or delete the file"
            ) from None


def _stratified_split(targets: list[int], val_fraction: float, seed: int):
    generator = torch.Generator().manual_seed(seed)
    targets = torch.as_tensor(targets)
    train_idx, val_idx = [], []
    for label in targets.unique():
        idx = (targets == label).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = round(len(idx) * val_fraction)
        val_idx += idx[:n_val].tolist()
        train_idx += idx[n_val:].tolist()
    return train_idx, val_idx


def cifar10(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """CIFAR-10 (torchvision): the 50,000 training images train, the 10,000 test images
    validate. `download=true` fetches it into `root` on first use."""
    return _torchvision_dataset(
        "CIFAR10", CIFAR10_NATIVE, root, download, batch_size, seed, **options
    )


def mnist(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """MNIST (torchvision): 60,000 training digits, 10,000 test digits to validate."""
    return _torchvision_dataset("MNIST", MNIST_NATIVE, root, download, batch_size, seed, **options)


def fashion_mnist(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """Fashion-MNIST (torchvision): 60,000 training images of clothes, 10,000 to validate."""
    return _torchvision_dataset(
        "FashionMNIST", FASHION_MNIST_NATIVE, root, download, batch_size, seed, **options
    )


def _torchvision_dataset(
    name: str,
    native: Preprocess,
    root: str,
    download: bool,
    batch_size: int,
    seed: int,
    transform_from: str | None = None,
    image_size: int | None = None,
    augment: bool = True,
    **loading,
) -> Data:
    import torchvision.datasets

    load = Loading(batch_size, seed, **loading)
    if load.problems():
        raise GroupwiseError(*load.problems())
    pre = preprocess_for(transform_from, image_size, native)
    native_size = 32 if name == "CIFAR10" else 28
    train_tf, val_tf = transforms.build(pre, "small", native_size, augment)
    dataset = getattr(torchvision.datasets, name)
    root = str(Path(root).expanduser())
    try:
        train = dataset(root, train=True, transform=train_tf, download=download)
        val = dataset(root, train=False, transform=val_tf, download=download)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise GroupwiseError(
            f"dataset.root={root}: {name} not found or corrupted there ({err}); set "
            "dataset.download=true to fetch it, or point dataset.root at a copy"
        ) from None
    train_loader, val_loader = load.loaders(train, val)
    return Data(train_loader, val_loader, len(train.classes), pre.channels, list(train.classes))
