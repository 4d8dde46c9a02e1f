"""Images in class folders on disk, read with torchvision's ImageFolder."""

import os
from pathlib import Path

from torch.utils.data import Subset

from src.config.dataset_schema import ImageFolderConfig
from src.data import cached_folder, transforms
from src.data.decode import unreadable
from src.data.device_augmentation import device_stages
from src.data.file_datasets import file_dataset
from src.data.loading import Data, split_seed, stratified_split
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess

# A model that names no input size sees small photos (fast; dataset.image_size sets another),
# resized as ImageNet's 224-in-256 is (37 for 32).
PHOTO_NATIVE = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3)
SPLITS = ("train", "val")  # root's first layout: these two, and test/ when there is one


def problems(options: ImageFolderConfig) -> list[str]:
    """What the folder's layout says before any image is read: a root that is no directory,
    splits with different class folders."""
    root = Path(options.root).expanduser()
    if not root.is_dir():
        return [
            f"dataset.root={options.root}: no such directory; point it at a folder holding "
            "train/ and val/ class folders, or class folders directly"
        ]
    splits = {name: class_folders(root / name) for name in (*SPLITS, "test")}
    if splits["train"] is None or splits["val"] is None:
        return []
    return [
        f"dataset.root={options.root}: train/ and {name}/ hold different classes "
        f"({splits['train']} vs {classes}); give them the same class folders"
        for name, classes in splits.items()
        if classes is not None and classes != splits["train"]
    ]


def class_folders(folder: Path) -> list[str] | None:
    """The class folders in `folder`, sorted as ImageFolder labels them; None: no such folder."""
    if not folder.is_dir():
        return None
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def has_split_folders(root: str) -> bool:
    """Whether `root` holds train/ and val/ (its split fixed by the files), not class folders
    to split by `val_fraction` and the seed."""
    return all((Path(root).expanduser() / name).is_dir() for name in SPLITS)


def num_classes(options: ImageFolderConfig) -> int:
    """How many classes the folder holds, by its folders alone."""
    root = Path(options.root).expanduser()
    return len(class_folders(root / "train") or class_folders(root) or [])


# Long: the root's two layouts and the loaders, in the order they run
def image_folder(
    options: ImageFolderConfig, seed: int, model_preprocess: Preprocess | None = None
) -> Data:
    """Images in class folders: `root/train/<class>/*` and `root/val/<class>/*` (and a held-out
    `root/test/<class>/*` when there is one), or `root/<class>/*` split into train and val by
    `val_fraction` (stratified, fixed by `split_seed`, else `seed`). `model_preprocess`: the model source's own
    (see `transforms.preprocess_for`). `cache`: read the images from their decoded cache
    (`src.data.cached_folder`), as uint8 crops that the device stages turn into the model's
    input. The layout was checked by `problems`."""
    from torchvision.datasets import ImageFolder

    files = file_dataset(options, seed, PHOTO_NATIVE, model_preprocess)
    pre, augmentation, root = files.pre, files.augmentation, options.root
    root_path = Path(root).expanduser()
    if options.cache:
        train_tf, val_tf = cached_folder.crop_transforms(pre, augmentation)
        spec = cached_folder.cache_spec(
            root,
            options.cache_dir,
            options.cache_resolution,
            pre,
            files.loading.num_workers,
            options.cache_hash_contents,
        )
    else:
        train_tf, val_tf = transforms.train_and_eval_transforms(pre, "photo", None, augmentation)

    def scan(folder: Path, transform) -> ImageFolder:
        try:
            return ImageFolder(str(folder), transform=transform, loader=ImageReader(root))
        except FileNotFoundError as err:  # no class folder, or a class folder without images
            raise GroupwiseError(
                f"dataset.root={root}: {err}; expected one folder per class holding images"
            ) from None

    if has_split_folders(root):
        train, val = scan(root_path / "train", train_tf), scan(root_path / "val", val_tf)
        test = scan(root_path / "test", val_tf) if (root_path / "test").is_dir() else None
    else:
        train, val, test = scan(root_path, train_tf), scan(root_path, val_tf), None
    classes, one_folder = train.classes, train.root == val.root
    if options.cache:
        train, val, test = (
            None if split is None else cached_folder.cached(spec, split, split.transform)
            for split in (train, val, test)
        )
    if one_folder:  # split it
        train_idx, val_idx = stratified_split(
            train.targets, options.val_fraction, split_seed(options, seed)
        )
        train, val = Subset(train, train_idx), Subset(val, val_idx)
    train_loader, val_loader, test_loader = files.loading.loaders(train, val, test)
    train_on_device, eval_on_device = (
        device_stages(pre, augmentation) if options.cache else (None, None)
    )
    return Data(
        train_loader,
        val_loader,
        len(classes),
        pre.channels,
        list(classes),
        input=transforms.input_description(pre, "photo"),
        test_loader=test_loader,
        train_on_device=train_on_device,
        eval_on_device=eval_on_device,
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
