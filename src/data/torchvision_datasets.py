"""CIFAR-10, MNIST and Fashion-MNIST through torchvision: files in `root`, or downloaded there.

Validation is a stratified share of the training images (`val_fraction`, drawn by
`split_seed`, else the run's seed): it picks the
best epoch, so it cannot also be the unbiased measure. The official test images are the test
split, for `python -m src.evaluate`."""

from pathlib import Path

from torch.utils.data import Subset

from src.config.dataset_schema import TorchvisionDatasetConfig
from src.data import transforms
from src.data.file_datasets import file_dataset
from src.data.loading import Data, split_seed, stratified_split
from src.errors import GroupwiseError
from src.models.contract import Preprocess

# The seed's CIFAR-10 normalisation (measured on its PNG export), and MNIST's usual ones; each
# at the dataset's own size (a model that names its size, as LeNet does, resizes them).
CIFAR10_NATIVE = Preprocess(32, 32, (0.4948, 0.4857, 0.4468), (0.2458, 0.2424, 0.2603), 3)
MNIST_NATIVE = Preprocess(28, 28, (0.1307,), (0.3081,), 1)
FASHION_MNIST_NATIVE = Preprocess(28, 28, (0.2860,), (0.3530,), 1)


def cifar10(
    options: TorchvisionDatasetConfig, seed: int, model_preprocess: Preprocess | None = None
) -> Data:
    """CIFAR-10 (torchvision): 50,000 training images (train and val), 10,000 test images.
    `download=true` fetches it into `root` on first use."""
    return _torchvision_dataset("CIFAR10", CIFAR10_NATIVE, options, seed, model_preprocess)


def mnist(
    options: TorchvisionDatasetConfig, seed: int, model_preprocess: Preprocess | None = None
) -> Data:
    """MNIST (torchvision): 60,000 training digits (train and val), 10,000 test digits."""
    return _torchvision_dataset("MNIST", MNIST_NATIVE, options, seed, model_preprocess)


def fashion_mnist(
    options: TorchvisionDatasetConfig, seed: int, model_preprocess: Preprocess | None = None
) -> Data:
    """Fashion-MNIST (torchvision): 60,000 training images of clothes (train and val), 10,000
    test images."""
    return _torchvision_dataset(
        "FashionMNIST", FASHION_MNIST_NATIVE, options, seed, model_preprocess
    )


def _torchvision_dataset(
    name: str,
    native: Preprocess,
    options: TorchvisionDatasetConfig,
    seed: int,
    model_preprocess: Preprocess | None,
) -> Data:
    import torchvision.datasets

    files = file_dataset(options, seed, native, model_preprocess)
    pre = files.pre
    # Whole small images, unless the dataset asks for an evaluation crop (crop_pct).
    style = "small" if options.crop_pct is None else "photo"
    train_tf, val_tf = transforms.train_and_eval_transforms(
        pre, style, native.size, files.augmentation
    )
    dataset = getattr(torchvision.datasets, name)
    root = str(Path(options.root).expanduser())
    download = options.download
    try:
        train = dataset(root, train=True, transform=train_tf, download=download)
        val = dataset(root, train=True, transform=val_tf)  # the same files, read as evaluated
        test = dataset(root, train=False, transform=val_tf, download=download)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise GroupwiseError(
            f"dataset.root={root}: {name} not found or corrupted there ({err}); set "
            "dataset.download=true to fetch it, or point dataset.root at a copy"
        ) from None
    train_idx, val_idx = stratified_split(
        train.targets, options.val_fraction, split_seed(options, seed)
    )
    loaders = files.loading.loaders(Subset(train, train_idx), Subset(val, val_idx), test)
    return Data(
        *loaders[:2],
        len(train.classes),
        pre.channels,
        list(train.classes),
        input=transforms.input_description(pre, style),
        test_loader=loaders[2],
    )
