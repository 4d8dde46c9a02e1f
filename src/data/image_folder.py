"""Images in class folders on disk, read with torchvision's ImageFolder."""

import logging
import os
from collections import Counter
from pathlib import Path

from torch.utils.data import Subset

from src.config.dataset_schema import ImageFolderConfig
from src.data import cached_folder, transforms
from src.data.decode import unreadable
from src.data.device_augmentation import device_stages
from src.data.file_datasets import file_dataset
from src.data.image_files import IMAGE_EXTENSIONS
from src.data.loading import Data, split_seed, stratified_split
from src.data.pixels import converted
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess

# A model that names no input size sees small photos (fast; dataset.image_size sets another),
# resized as ImageNet's 224-in-256 is (37 for 32).
PHOTO_NATIVE = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3)
SPLITS = ("train", "val")  # root's first layout: these two, and test/ when there is one
SHOWN = 3  # files named in the report of those not read
log = logging.getLogger(__name__)


def problems(options: ImageFolderConfig) -> list[str]:
    """What the folder's layout says before any image is read: a root that is no directory,
    one class folder, splits with different class folders."""
    root = Path(options.root).expanduser()
    if not root.is_dir():
        return [
            f"dataset.root={options.root}: no such directory; point it at a folder holding "
            "train/ and val/ class folders, or class folders directly"
        ]
    splits = {name: class_folders(root / name) for name in (*SPLITS, "test")}
    if splits["train"] is None or splits["val"] is None:
        return _class_count_problems(options.root, class_folders(root))
    return _class_count_problems(options.root, splits["train"]) + [
        f"dataset.root={options.root}: train/ and {name}/ hold different classes "
        f"({splits['train']} vs {classes}); give them the same class folders"
        for name, classes in splits.items()
        if classes is not None and classes != splits["train"]
    ]


def _class_count_problems(root: str, classes: list[str]) -> list[str]:
    """A classifier of one class trains to loss 0 and accuracy 1, learning nothing (a root of
    no class folder is told by the scan, which names what it looked for)."""
    if len(classes) != 1:
        return []
    return [
        f"dataset.root={root}: holds one class folder ({classes[0]}); a classifier needs at least two classes: "
        "expected one folder per class holding images"
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

    formats = ImageFormats()

    def scan(folder: Path, transform) -> ImageFolder:
        try:
            return ImageFolder(
                str(folder), transform=transform, loader=ImageReader(root), is_valid_file=formats
            )
        except FileNotFoundError as err:  # no class folder, or a class folder without images
            raise GroupwiseError(
                f"dataset.root={root}: {err}; expected one folder per class holding images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            ) from None

    if has_split_folders(root):
        train, val = scan(root_path / "train", train_tf), scan(root_path / "val", val_tf)
        test = scan(root_path / "test", val_tf) if (root_path / "test").is_dir() else None
    else:
        train, val, test = scan(root_path, train_tf), scan(root_path, val_tf), None
    classes, one_folder = train.classes, train.root == val.root
    if formats.skipped:
        log.warning(formats.report(root_path, root))
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
    """torchvision's image loader (PIL, in RGB), with 16-bit images scaled to 8 bits rather than
    clipped, and a damaged or foreign file named as the user's to fix. A class, not a closure: DataLoader workers may need to pickle it."""

    def __init__(self, root: str):
        self.root = root

    def __call__(self, path: str):
        from PIL import Image

        try:
            with Image.open(path) as image:
                return converted(image, "RGB")
        # PIL's UnidentifiedImageError is an OSError; UnsupportedPixels a ValueError.
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise unreadable(self.root, path, err) from None


class ImageFormats:
    """ImageFolder's filter by extension, keeping the files it leaves out: a class folder's file
    of another format (a .gif, a .heic) is told in the run's log, never skipped in silence. It
    is told, not refused: folders of photos often carry files that are no data (notes, label
    lists), and a dataset folder may be read-only or shared; the count per extension names
    what to convert. Hidden files (.DS_Store) are the system's, left out without a word."""

    def __init__(self):
        self.skipped: set[str] = set()  # a set: the one-folder layout is scanned twice

    def __call__(self, path: str) -> bool:
        if path.lower().endswith(IMAGE_EXTENSIONS):
            return True
        if not os.path.basename(path).startswith("."):
            self.skipped.add(path)
        return False

    def report(self, root_path: Path, root: str) -> str:
        """One line: how many files were not read, by extension, the first few by name."""
        by_extension = Counter(Path(path).suffix.lower() or "no extension" for path in self.skipped)
        counts = ", ".join(f"{n} {extension}" for extension, n in sorted(by_extension.items()))
        shown = [str(Path(path).relative_to(root_path)) for path in sorted(self.skipped)[:SHOWN]]
        more = ", ..." if len(self.skipped) > SHOWN else ""
        return (
            f"dataset.root={root}: {len(self.skipped)} file(s) not read, of formats ImageFolder "
            f"does not read ({counts}: {', '.join(shown)}{more}); convert them to PNG or JPEG "
            "to train on them"
        )
