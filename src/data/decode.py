"""Image files decoded once into uint8 tensors [channels, height, width] at a capped size: what
the decoded cache (`src.data.decoded_cache`) stores.

On the CPU, torchvision.io decodes JPEG, PNG, GIF and WebP (libjpeg-turbo, libpng), and PIL
every other format ImageFolder accepts (BMP, TIFF, PPM); 16-bit images are stored with 8 bits
per channel, as the uncached loader reads them (`src.data.pixels`). On a CUDA machine, JPEGs are decoded
in batches by nvJPEG (`torchvision.io.decode_jpeg(list, device="cuda")`) and resized there.
EXIF orientation is not applied, as torchvision's ImageFolder loader (PIL) does not apply it:
the cached image is the uncached pipeline's image. torchvision 0.29 deprecates its decoders
in favour of TorchCodec (a DeprecationWarning), which this environment does not have; they
still decode, and only this module calls them.
"""

from pathlib import Path

import numpy as np
import torch

from src.data.pixels import UnsupportedPixels, converted, eight_bit
from src.errors import GroupwiseError

JPEG_SUFFIXES = (".jpg", ".jpeg")


def stored_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at `short_side`, the aspect ratio kept (rounded as
    torchvision's Resize rounds); never upscaled: a smaller image is kept as it is."""
    short, long = min(height, width), max(height, width)
    if short <= short_side:
        return height, width
    new_long = int(short_side * long / short)
    return (short_side, new_long) if height <= width else (new_long, short_side)


def header_size(path: Path, root: str) -> tuple[int, int]:
    """(height, width) from the file's header: PIL reads no pixels for it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise unreadable(root, path, err) from None
    return height, width


def unreadable(root: str, path: Path, err: Exception) -> GroupwiseError:
    """A file of the folder that cannot be read as an image: the user's to replace or delete
    (the cache's decoders and the uncached loader say it alike); pixels of no stated range,
    the user's to save again."""
    if isinstance(err, UnsupportedPixels):
        return GroupwiseError(f"dataset.root={root}: the image {path} holds {err}")
    return GroupwiseError(
        f"dataset.root={root}: cannot read the image {path} ({type(err).__name__}); "
        "replace or delete the file"
    )


def resized(image: torch.Tensor, short_side: int, interpolation: str) -> torch.Tensor:
    """`image` with its short side capped at `short_side`, antialiased as PIL resizes."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    height, width = stored_size(*image.shape[-2:], short_side)
    if (height, width) == tuple(image.shape[-2:]):
        return image
    return F.resize(image, [height, width], InterpolationMode(interpolation), antialias=True)


class Decoder:
    """One file -> its stored uint8 image; a class, not a closure: DataLoader workers pickle it."""

    def __init__(self, root: str, channels: int, short_side: int, interpolation: str):
        self.root, self.channels = root, channels
        self.short_side, self.interpolation = short_side, interpolation

    def __call__(self, path: Path) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_image, read_file

        mode = ImageReadMode.RGB if self.channels == 3 else ImageReadMode.GRAY
        try:
            image = eight_bit(decode_image(read_file(str(path)), mode=mode))
        except RuntimeError:  # a format libjpeg/libpng do not read (BMP, TIFF), or damaged
            image = self._with_pil(path)
        return resized(image, self.short_side, self.interpolation).contiguous()

    def _with_pil(self, path: Path) -> torch.Tensor:
        from PIL import Image

        try:
            with Image.open(path) as image:
                pixels = np.asarray(converted(image, "RGB" if self.channels == 3 else "L"))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise unreadable(self.root, path, err) from None
        return torch.from_numpy(pixels.copy()).reshape(*pixels.shape[:2], -1).permute(2, 0, 1)


def decode_jpegs_on(device: torch.device, paths: list[Path], decoder: Decoder) -> list:
    """nvJPEG: a batch of JPEG files decoded and resized on a CUDA `device`, back on the CPU.
    A batch nvJPEG refuses (a damaged file, a CMYK JPEG) falls back to `decoder`, file by file,
    which names the damaged one."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    if not paths:
        return []
    mode = ImageReadMode.RGB if decoder.channels == 3 else ImageReadMode.GRAY
    try:
        images = decode_jpeg([read_file(str(p)) for p in paths], mode=mode, device=device)
    except RuntimeError:
        return [decoder(p) for p in paths]
    return [resized(im, decoder.short_side, decoder.interpolation).cpu() for im in images]
