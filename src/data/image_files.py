"""Image files to predict on: one file or every image under a folder (subfolders too), each
read in the model's colour mode; a file that cannot be read is reported, not fatal."""

from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import Dataset

from src.data.pixels import UnsupportedPixels, converted
from src.errors import GroupwiseError, warn

# What torchvision's ImageFolder reads, by extension.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SHOWN = 3  # files named in the warning about those not read


def find_images(inputs: str) -> tuple[Path, list[Path]]:
    """The folder paths are reported relative to, and the image files in sorted order: `inputs`
    itself when it is a file (whatever its extension), else every file under it with an image
    extension. The other files under it are told in one warning line, never skipped in
    silence (hidden ones, the system's, aside), as a run tells those of its image folder."""
    path = Path(inputs).expanduser()
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise GroupwiseError(
            f"inputs={inputs}: no such file or directory; pass an image or a folder"
        )
    files, skipped = [], []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(file)
        elif not file.name.startswith("."):
            skipped.append(file)
    if not files:
        others = f"{len(skipped)} file(s) of other formats ({_listed(skipped, path)})"
        holds = f"; it holds {others}" if skipped else ""
        raise GroupwiseError(
            f"inputs={inputs}: no image files in it or its subfolders "
            f"({', '.join(IMAGE_EXTENSIONS)}){holds}; pass a folder holding images"
        )
    if skipped:
        warn(
            f"inputs={inputs}: {len(skipped)} file(s) not read, of formats src.predict does not "
            f"read ({_listed(skipped, path)}); convert them to PNG or JPEG to predict them"
        )
    return path, files


def _listed(skipped: list[Path], root: Path) -> str:
    """`2 .gif, 1 .txt: a.gif, b.gif, notes.txt`: the files by extension, the first few by
    name."""
    by_extension = Counter(p.suffix.lower() or "no extension" for p in skipped)
    counts = ", ".join(f"{n} {extension}" for extension, n in sorted(by_extension.items()))
    shown = [p.relative_to(root).as_posix() for p in skipped[:SHOWN]]
    more = ", ..." if len(skipped) > SHOWN else ""
    return f"{counts}: {', '.join(shown)}{more}"


class ImageFiles(Dataset):
    """(the model's input, '') per file, in order; for a file that cannot be read, (a blank
    image, why): the reason travels in the batch, from whichever worker process read it."""

    def __init__(self, files: list[Path], channels: int, transform):
        self.files = files
        # Any colour mode converts to the model's; 16-bit ones scaled (`src.data.pixels`).
        self.mode = "RGB" if channels == 3 else "L"
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        from PIL import Image

        try:
            with Image.open(self.files[index]) as image:
                return self.transform(converted(image, self.mode)), ""
        except UnsupportedPixels as err:
            return self._blank(), f"cannot read the image: it holds {err}"
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            # PIL's UnidentifiedImageError is an OSError; a truncated file raises OSError too.
            return self._blank(), f"cannot read the image ({type(err).__name__}: {err})"

    def _blank(self) -> torch.Tensor:
        """Stands in for an unreadable file in its batch; its prediction is not reported."""
        from PIL import Image

        size = 32
        return self.transform(Image.new(self.mode, (size, size)))
