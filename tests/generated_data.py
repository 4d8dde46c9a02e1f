"""Datasets written to disk by the tests themselves, in the formats users' files come in."""

import struct
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"blue": (0, 0, 200), "red": (200, 0, 0), "green": (0, 160, 0)}


def write_image_folder(root: Path, per_class: int, size=(48, 40), seed: int = 0) -> Path:
    """root/<class>/<i>.png: noisy images of one dominant colour per class (learnable)."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            noise = rng.integers(0, 55, (size[1], size[0], 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def write_idx(root: Path, folder: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """MNIST's idx format (big-endian header, uint8 pixels) as torchvision reads it from
    root/<folder>/raw; digit d's images are bright in a band whose height depends on d."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 6, 4:24] = 255
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 0x0803, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 0x0801, n) + labels.tobytes()
        )
    return root


def write_png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG of `pixels` (uint16, [height, width] grey or [height, width, 3] RGB), written
    byte by byte as the PNG specification lays it out: PIL writes 16-bit grey, never 16-bit RGB."""
    import zlib

    height, width = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 else 0
    rows = pixels.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path
