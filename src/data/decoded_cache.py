"""The decoded cache (`dataset.cache=true`): every image of a folder decoded once, at a capped
size, into one memory-mapped file of uint8 pixels that later epochs, later runs and every job
of a sweep read without decoding (FFCV's idea: store once at `max_resolution`, read forever).

One cache per folder, colour mode, short side and interpolation, in
`<cache_dir>/<folder name>-<hash of those>/`:
- `pixels.u8`: the images one after another, each [height, width, channels] (channels last:
  torchvision's uint8 resize is about 1.5x faster on that layout), uint8;
- `index.npy`: int64 [images, 3]: each image's offset in pixels.u8, height and width;
- `key.json`: the format and version, and every file's relative path, size and modification
  time. A folder whose key differs (a file added, removed, replaced or touched) is rebuilt; an
  unchanged one never is.

A build writes into a temporary folder beside the cache, syncs it to disk and renames it into
place, so a build killed at any point leaves nothing a later run reads (only a `.building-*`
folder, safe to delete). Under torchrun one process per machine (local rank 0) builds while
the others wait at a barrier; then every rank reads the same files.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from src.data.decode import Decoder, header_size, stored_size
from src.data.decode_pass import decoded_in_order
from src.errors import GroupwiseError

FORMAT = "groupwise decoded image cache"
VERSION = 1
KEY, INDEX, PIXELS = "key.json", "index.npy", "pixels.u8"


@dataclass(frozen=True)
class CacheSpec:
    """What a folder's cache is built from and where it lives."""

    root: str  # dataset.root as the user wrote it, for messages
    cache_dir: Path
    channels: int  # 3: RGB, 1: grayscale (the model's colour mode)
    short_side: int  # the stored images' short side (never upscaled)
    interpolation: str
    workers: int  # DataLoader worker processes decoding the build

    def location(self, folder: Path) -> Path:
        what = f"{folder.resolve()}|{self.channels}|{self.short_side}|{self.interpolation}"
        return self.cache_dir / f"{folder.name}-{hashlib.sha256(what.encode()).hexdigest()[:16]}"

    def key(self, folder: Path, files: list[Path]) -> dict:
        """What the cache must have been built from to be read: each file's relative path, size
        and modification time (ns), the resolution, the colour mode and the format."""
        entries = []
        for file in files:
            stat = file.stat()
            entries.append([str(file.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
        return {
            "format": FORMAT,
            "version": VERSION,
            "channels": self.channels,
            "short_side": self.short_side,
            "interpolation": self.interpolation,
            "files": entries,
        }


class CachedImages(torch.utils.data.Dataset):
    """(transform(uint8 image [C, H, W]), label) per image of a built cache. The memory map is
    opened in each process that reads (DataLoader workers pickle the dataset without it)."""

    def __init__(self, path: Path, index: np.ndarray, channels: int, targets: list, transform):
        self.pixels_path, self.index, self.channels = path / PIXELS, index, channels
        self.targets, self.transform = list(targets), transform
        self._pixels = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._pixels is None:
            self._pixels = np.memmap(self.pixels_path, np.uint8, mode="r")
        offset, height, width = (int(v) for v in self.index[i])
        flat = np.array(self._pixels[offset : offset + self.channels * height * width])
        image = torch.from_numpy(flat).view(height, width, self.channels).permute(2, 0, 1)
        return self.transform(image), self.targets[i]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}


def cached_images(spec: CacheSpec, folder: Path, files: list[Path], targets, transform):
    """The folder's images read from its cache, built first if missing or out of date (under
    torchrun: by local rank 0 while the other ranks wait)."""
    path, key = spec.location(folder), spec.key(folder, files)
    # torchrun's local rank, as torch reads it (0 in a process of its own)
    local_rank = torch.distributed.get_node_local_rank(fallback_rank=0)
    if local_rank == 0 and read_key(spec, path) != key:
        build(spec, folder, files, path, key)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    return CachedImages(path, read_index(spec, path, key), spec.channels, targets, transform)


def read_key(spec: CacheSpec, path: Path) -> dict | None:
    """The key a cache was built from; None when there is none. A folder that is not a cache
    of this format is one line."""
    if not path.exists():
        return None
    try:
        key = json.loads((path / KEY).read_text())
        if key["format"] == FORMAT:
            return key
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise _damaged(spec, path, f"{KEY} is missing or not a key of a {FORMAT}")


def read_index(spec: CacheSpec, path: Path, key: dict) -> np.ndarray:
    """The cache's index, once its key, index and pixels agree (one line if they do not)."""
    found = read_key(spec, path)
    if found is None:  # under torchrun: local rank 0 built none here
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: no cache of {spec.root} at {path} after local "
            "rank 0 built it; give every process of a machine the same dataset.cache_dir"
        )
    if found != key:
        raise _damaged(spec, path, "the folder changed while the cache was built; run again")
    try:
        index = np.load(path / INDEX, allow_pickle=False)
        pixels = (path / PIXELS).stat().st_size
    except (OSError, ValueError) as err:
        raise _damaged(spec, path, f"{type(err).__name__}: {err}") from None
    if index.ndim != 2 or index.shape != (len(key["files"]), 3):
        raise _damaged(spec, path, f"{INDEX} does not list the {len(key['files'])} images")
    sizes = spec.channels * index[:, 1] * index[:, 2]
    expected = int((index[:, 0] + sizes).max(initial=0))
    if (index[:, 0] < 0).any() or pixels != expected:
        raise _damaged(spec, path, f"{PIXELS} holds {pixels} bytes, its index says {expected}")
    return index


def _damaged(spec: CacheSpec, path: Path, why: str) -> GroupwiseError:
    return GroupwiseError(
        f"dataset.cache_dir={spec.cache_dir}: {path} is not a readable decoded cache ({why}); "
        "delete that folder (the next run rebuilds it) or point dataset.cache_dir elsewhere"
    )


def build(spec: CacheSpec, folder: Path, files: list[Path], path: Path, key: dict) -> None:
    """Decode every file into a temporary folder beside `path`, sync it, rename it into place."""
    _check_space(spec, folder, files)
    try:
        spec.cache_dir.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".building-{path.name}-", dir=spec.cache_dir))
    except OSError as err:  # a file of that name, no permission
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: cannot write a cache there "
            f"({type(err).__name__}: {err.strerror}); point dataset.cache_dir at a writable folder"
        ) from None
    try:
        decoder = Decoder(spec.root, spec.channels, spec.short_side, spec.interpolation)
        index = np.zeros((len(files), 3), dtype=np.int64)
        offset = 0
        with open(building / PIXELS, "wb") as out:
            for i, image in enumerate(decoded_in_order(files, decoder, spec.workers, folder)):
                index[i] = (offset, image.shape[1], image.shape[2])
                out.write(image.permute(1, 2, 0).numpy().tobytes())  # channels last
                offset += image.numel()
            _sync(out)
        with open(building / INDEX, "wb") as out:
            np.save(out, index)
            _sync(out)
        with open(building / KEY, "w") as out:  # last: a key is only ever beside whole files
            json.dump(key, out)
            _sync(out)
        _install(spec, building, path, key)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _sync(file) -> None:
    file.flush()
    os.fsync(file.fileno())


def _install(spec: CacheSpec, building: Path, path: Path, key: dict) -> None:
    """Rename the built folder into place, replacing an out-of-date cache; a cache of the same
    key installed meanwhile by another process (a parallel sweep's job) is kept."""
    descriptor = os.open(building, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the folder's entries, before its name
    finally:
        os.close(descriptor)
    if path.exists() and read_key(spec, path) != key:
        old = building.with_name(building.name.replace(".building-", ".old-", 1))
        os.rename(path, old)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(building, path)
    except OSError:  # another process installed one first
        if read_key(spec, path) != key:
            raise


def bytes_needed(spec: CacheSpec, files: list[Path]) -> int:
    """The cache's size, from the files' headers (no pixels decoded)."""
    total = 0
    for file in files:
        height, width = stored_size(*header_size(file, spec.root), spec.short_side)
        total += spec.channels * height * width
    return total + 24 * len(files) + 4096 + 200 * len(files)  # index, header, key


def _check_space(spec: CacheSpec, folder: Path, files: list[Path]) -> None:
    needed = bytes_needed(spec, files)
    existing = next((p for p in [spec.cache_dir, *spec.cache_dir.parents] if p.exists()), None)
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: the decoded cache of {folder} needs "
            f"{needed} bytes ({needed / 1e9:.2f} GB; {len(files)} images, short side "
            f"{spec.short_side}) and {free} bytes are free; free some space, point "
            "dataset.cache_dir at a larger disk, lower dataset.cache_resolution, or set "
            "dataset.cache=false"
        )
