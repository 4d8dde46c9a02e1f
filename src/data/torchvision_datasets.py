"""CIFAR-10, MNIST and Fashion-MNIST through torchvision: files in `root`, or downloaded there.

Validation is a stratified, seeded share of the training images (`val_fraction`): it picks the
best epoch, so it cannot also be the unbiased measure. The official test images are the test
split, for `python -m src.evaluate`."""

from pathlib import Path

from torch.utils.data import Subset

from src.data import transforms
from src.data.loading import Data, Loading, stratified_split
from src.data.transforms import preprocess_for
from src.errors import GroupwiseError
from src.models.contract import Preprocess

# The seed's CIFAR-10 normalisation (measured on its PNG export), and MNIST's usual ones.
CIFAR10_NATIVE = Preprocess(32, 32, (0.4948, 0.4857, 0.4468), (0.2458, 0.2424, 0.2603), 3)
MNIST_NATIVE = Preprocess(32, 32, (0.1307,), (0.3081,), 1)  # 28 pixels resized to LeNet's 32
FASHION_MNIST_NATIVE = Preprocess(32, 32, (0.2860,), (0.3530,), 1)


def cifar10(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """CIFAR-10 (torchvision): 50,000 training images (train and val), 10,000 test images.
    `download=true` fetches it into `root` on first use."""
    return _torchvision_dataset(
        "CIFAR10", CIFAR10_NATIVE, root, download, batch_size, seed, **options
    )


def mnist(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """MNIST (torchvision): 60,000 training digits (train and val), 10,000 test digits."""
    return _torchvision_dataset("MNIST", MNIST_NATIVE, root, download, batch_size, seed, **options)


def fashion_mnist(root: str, download: bool, batch_size: int, seed: int, **options) -> Data:
    """Fashion-MNIST (torchvision): 60,000 training images of clothes (train and val), 10,000
    test images."""
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
    transform_from: str | None,
    image_size: int | None,
    val_fraction: float,
    augment: str,
    random_erasing: float,
    randaugment_num_ops: int,
    randaugment_magnitude: int,
    model_preprocess: Preprocess | None = None,
    **loading,
) -> Data:
    import torchvision.datasets

    load = Loading(batch_size, seed, **loading)
    if load.problems():
        raise GroupwiseError(*load.problems())
    pre = preprocess_for(transform_from, image_size, native, model_preprocess)
    native_size = 32 if name == "CIFAR10" else 28
    augmentation = transforms.Augmentation(
        augment, random_erasing, randaugment_num_ops, randaugment_magnitude
    )
    train_tf, val_tf = transforms.train_and_eval_transforms(pre, "small", native_size, augmentation)
    dataset = getattr(torchvision.datasets, name)
    root = str(Path(root).expanduser())
    try:
        train = dataset(root, train=True, transform=train_tf, download=download)
        val = dataset(root, train=True, transform=val_tf)  # the same files, read as evaluated
        test = dataset(root, train=False, transform=val_tf, download=download)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise GroupwiseError(
            f"dataset.root={root}: {name} not found or corrupted there ({err}); set "
            "dataset.download=true to fetch it, or point dataset.root at a copy"
        ) from None
    train_idx, val_idx = stratified_split(train.targets, val_fraction, seed)
    loaders = load.loaders(Subset(train, train_idx), Subset(val, val_idx), test)
    return Data(
        *loaders[:2],
        len(train.classes),
        pre.channels,
        list(train.classes),
        input=transforms.input_description(pre, "small"),
        test_loader=loaders[2],
    )
