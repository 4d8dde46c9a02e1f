"""Decoded pixels as 8 bits per channel, whatever the file stores, alike on both image paths:
the uncached loaders' (PIL) and the decoded cache's (torchvision.io).

A 16-bit sample keeps its high byte (v >> 8: 257 * k gives k exactly, 65535 gives 255), as PIL
already does for 16-bit RGB and libpng's `png_set_strip_16` does; PIL's own conversion of
16-bit grey (mode I;16) instead clips every value above 255 to white. Pixels whose range the
file does not state (PIL's modes I, 32-bit integers, and F, floats) are refused rather than
guessed at.
"""

import numpy as np
import torch

# PIL's modes of 16-bit grey, by byte order.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# PIL's modes whose values have no stated range, and what they hold.
RANGELESS_MODES = {"I": "32-bit integer", "F": "floating-point"}


class UnsupportedPixels(ValueError):
    """Pixels that no 8-bit image can be made from without guessing their range."""


def converted(image, mode: str):
    """The PIL `image` in `mode` ("RGB" or "L"), 16-bit grey scaled to 8 bits first."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        high_bytes = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        image = Image.fromarray(high_bytes)
    elif image.mode in RANGELESS_MODES:
        raise UnsupportedPixels(
            f"{RANGELESS_MODES[image.mode]} pixels (PIL mode {image.mode}), whose range the file "
            "does not state; save it with 8 or 16 bits per channel"
        )
    return image.convert(mode)


def eight_bit(image: torch.Tensor) -> torch.Tensor:
    """A tensor torchvision.io decoded (uint8, or uint16 from a 16-bit PNG) as uint8."""
    if image.dtype == torch.uint16:  # uint16 has no shift of its own in torch
        return (image.to(torch.int32) >> 8).to(torch.uint8)
    return image
