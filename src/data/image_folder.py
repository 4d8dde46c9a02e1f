"""Images in class folders on disk, read with torchvision's ImageFolder."""

from pathlib import Path

from torch.utils.data import Subset

from src.data import cached_folder, transforms
from src.data.decode import unreadable
from src.data.device_augmentation import device_stages
from src.data.loading import Data, Loading, stratified_split
from src.data.transforms import DEFAULT_SIZE, preprocess_for
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess

PHOTO_NATIVE = Preprocess(DEFAULT_SIZE, 37, IMAGENET_MEAN, IMAGENET_STD, 3)


# Long: the checks, the root's two layouts and the loaders, in the order they run
def image_folder(
    root: str,
    batch_size: int,
    seed: int,
    transform_from: str | None,
    image_size: int | None,
    val_fraction: float,
    augment: str,
    random_erasing: float,
    randaugment_num_ops: int,
    randaugment_magnitude: int,
    cache: bool,
    cache_dir: str | None,
    cache_resolution: int | None,
    model_preprocess: Preprocess | None = None,
    **loading,
) -> Data:
    """Images in class folders: `root/train/<class>/*` and `root/val/<class>/*` (and a held-out
    `root/test/<class>/*` when there is one), or `root/<class>/*` split into train and val by
    `val_fraction` (stratified, fixed by `seed`). `model_preprocess`: the model source's own
    (see `transforms.preprocess_for`). `cache`: read the images from their decoded cache
    (`src.data.cached_folder`), as uint8 crops that the device stages turn into the model's
    input."""
    from torchvision.datasets import ImageFolder

    load = Loading(batch_size, seed, **loading)
    problems = load.problems()
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        problems.append(
            f"dataset.root={root}: no such directory; point it at a folder holding train/ and val/ "
            "class folders, or class folders directly"
        )
    if problems:
        raise GroupwiseError(*problems)
    pre = preprocess_for(transform_from, image_size, PHOTO_NATIVE, model_preprocess)
    augmentation = transforms.Augmentation(
        augment, random_erasing, randaugment_num_ops, randaugment_magnitude
    )
    if cache:
        train_tf, val_tf = cached_folder.crop_transforms(pre, augmentation)
        spec = cached_folder.cache_spec(root, cache_dir, cache_resolution, pre, load.num_workers)
    else:
        train_tf, val_tf = transforms.train_and_eval_transforms(pre, "photo", None, augmentation)

    def scan(folder: Path, transform) -> ImageFolder:
        try:
            return ImageFolder(str(folder), transform=transform, loader=ImageReader(root))
        except FileNotFoundError as err:  # no class folder, or a class folder without images
            raise GroupwiseError(
                f"dataset.root={root}: {err}; expected one folder per class holding images"
            ) from None

    if (root_path / "train").is_dir() and (root_path / "val").is_dir():
        train, val = scan(root_path / "train", train_tf), scan(root_path / "val", val_tf)
        test = scan(root_path / "test", val_tf) if (root_path / "test").is_dir() else None
        _check_same_classes(root, train, val=val, test=test)
    else:
        train, val, test = scan(root_path, train_tf), scan(root_path, val_tf), None
    classes, one_folder = train.classes, train.root == val.root
    if cache:
        train, val, test = (
            None if split is None else cached_folder.cached(spec, split, split.transform)
            for split in (train, val, test)
        )
    if one_folder:  # split it
        train_idx, val_idx = stratified_split(train.targets, val_fraction, seed)
        train, val = Subset(train, train_idx), Subset(val, val_idx)
    train_loader, val_loader, test_loader = load.loaders(train, val, test)
    data = Data(
        train_loader,
        val_loader,
        len(classes),
        pre.channels,
        list(classes),
        input=transforms.input_description(pre, "photo"),
        test_loader=test_loader,
    )
    if cache:
        data.train_on_device, data.eval_on_device = device_stages(pre, augmentation)
    return data


def _check_same_classes(root: str, train, **others) -> None:
    for name, split in others.items():
        if split is not None and split.classes != train.classes:
            raise GroupwiseError(
                f"dataset.root={root}: train/ and {name}/ hold different classes "
                f"({train.classes} vs {split.classes}); give them the same class folders"
            )


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
            raise unreadable(self.root, path, err) from None
