"""The decoded cache (`dataset.cache=true`): every image of a folder decoded once, at a capped
size, into one memory-mapped file of uint8 pixels that later epochs, later runs and every job
of a sweep read without decoding (FFCV's idea: store once at `max_resolution`, read forever).

One cache per folder, colour mode, short side and interpolation, in
`<cache_dir>/<dataset>-<split>-<short side>px-<hash of those>/`; in it one folder per version
of the folder's files (`src.data.cache_store`: the locks, who may remove what), each holding
- `pixels.u8`: the images one after another, each [height, width, channels] (channels last:
  torchvision's uint8 resize is about 1.5x faster on that layout), uint8;
- `index.npy`: int64 [images, 3]: each image's offset in pixels.u8, height and width;
- `key.json`: the format and version, the source folder, and every file's relative path, size,
  modification time, inode and change time (or, with `dataset.cache_hash_contents`, or where
  the filesystem gives no inode, a hash of its bytes). A copy that keeps the modification time
  (`cp -p`, `rsync -t`, `tar x`) still changes the change time, which no user can set; a
  folder whose key differs gets a new version, built beside the old one, which the runs still
  reading it keep.

A build writes into a temporary folder inside the cache, syncs it to disk and renames it into
place, so a build killed at any point leaves nothing a later run reads (only a `.building-*`
folder, removed by the next build or `python -m src.cache clean`). One process builds a cache
at a time (a lock); the others wait and then read it. Under torchrun one process per machine
(local rank 0) builds while the others wait at a barrier; then every rank reads the same files.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from src.data import cache_store
from src.data.decode import Decoder, header_size, stored_size
from src.data.decode_pass import decoded_in_order
from src.errors import GroupwiseError

FORMAT = "groupwise decoded image cache"
VERSION = 2  # 2: versions beside each other, inode and change time in the key
KEY, INDEX, PIXELS = cache_store.KEY, "index.npy", "pixels.u8"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheSpec:
    """What a folder's cache is built from and where it lives."""

    root: str  # dataset.root as the user wrote it, for messages
    cache_dir: Path
    channels: int  # 3: RGB, 1: grayscale (the model's colour mode)
    short_side: int  # the stored images' short side (never upscaled)
    interpolation: str
    workers: int  # DataLoader worker processes decoding the build
    hash_contents: bool = False  # key each file by its bytes' hash, not its inode and ctime

    def location(self, folder: Path) -> Path:
        """`<dataset>-<split>-<short side>px-<hash>`: the split is the folder's name under the
        root (`all` when the root itself is split)."""
        root, folder = Path(self.root).expanduser().resolve(), folder.resolve()
        split = "all" if folder == root else "-".join(folder.relative_to(root).parts)
        what = f"{folder}|{self.channels}|{self.short_side}|{self.interpolation}"
        digest = hashlib.sha256(what.encode()).hexdigest()[:12]
        return self.cache_dir / f"{root.name}-{split}-{self.short_side}px-{digest}"

    def key(self, folder: Path, files: list[Path]) -> dict:
        """What the cache must have been built from to be read: the source folder, each file's
        relative path, size, modification time (ns) and what a copy keeping that time cannot
        keep (its inode and change time, or its bytes' hash), the resolution, the colour mode
        and the format."""
        entries = []
        for file in files:
            stat = file.stat()
            entry = [str(file.relative_to(folder)), stat.st_size, stat.st_mtime_ns]
            if self.hash_contents or stat.st_ino == 0:  # a filesystem without inodes
                with open(file, "rb") as contents:
                    entry.append("sha256:" + hashlib.file_digest(contents, "sha256").hexdigest())
            else:
                entry += [stat.st_ino, stat.st_ctime_ns]
            entries.append(entry)
        return {
            "format": FORMAT,
            "version": VERSION,
            "source": str(folder.resolve()),
            "channels": self.channels,
            "short_side": self.short_side,
            "interpolation": self.interpolation,
            "files": entries,
        }


def version_of(cache: Path, key: dict) -> Path:
    """The folder of `cache`'s version built from `key`: named by it, so a changed folder's
    version is installed beside the ones still read."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache / f"{cache_store.VERSION_PREFIX}{digest}"


class CachedImages(torch.utils.data.Dataset):
    """(transform(uint8 image [C, H, W]), label) per image of a version of a cache, held (a
    shared lock) while this dataset lives. The memory map is opened in each process that reads
    (DataLoader workers pickle the dataset without it or the lock: the version's files never
    change while this process holds it)."""

    def __init__(self, version: Path, held, index: np.ndarray, channels: int, targets, transform):
        self.pixels_path, self.index, self.channels = version / PIXELS, index, channels
        self.targets, self.transform = list(targets), transform
        self._held, self._pixels = held, None

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
        return {**self.__dict__, "_pixels": None, "_held": None}


def cached_images(spec: CacheSpec, folder: Path, files: list[Path], targets, transform):
    """The folder's images read from its cache, built first if missing or out of date (by one
    process at a time; under torchrun: by local rank 0 while the other ranks wait)."""
    cache, key = spec.location(folder), spec.key(folder, files)
    version, start = version_of(cache, key), time.monotonic()
    # torchrun's local rank, as torch reads it (0 in a process of its own)
    local_rank = torch.distributed.get_node_local_rank(fallback_rank=0)
    held = cache_store.hold(version) if local_rank == 0 else None
    built = held is None and local_rank == 0 and _build_once(spec, folder, files, cache, key)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    held = held or cache_store.hold(version)
    if held is None:  # under torchrun: local rank 0 built none here
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: no cache of {spec.root} at {version} after "
            "local rank 0 built it; give every process of a machine the same dataset.cache_dir"
        )
    index = read_index(spec, version, key)
    log.info(
        "decoded cache: %s %s (%d images, %s, %.1f s)",
        "built" if built else "reused",
        version,
        len(index),
        cache_store.shown(cache_store.folder_bytes(version)),
        time.monotonic() - start,
    )
    return CachedImages(version, held, index, spec.channels, targets, transform)


def _build_once(spec: CacheSpec, folder: Path, files: list[Path], cache: Path, key: dict) -> bool:
    """Build the version of `key` unless another process builds it meanwhile (this one waits
    for it); whether this process built it."""
    version = version_of(cache, key)
    if not cache_store.building_now(cache):  # else: waited for, not built here
        _check_space(spec, folder, files, cache)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(cache_store.build_lock(cache))  # waits for another's build
        except OSError as err:  # a file of that name, no permission
            raise _unwritable(spec, err) from None
        held = cache_store.hold(version)
        if held is not None:  # built by the process this one waited for
            held.close()
            return False
        cache_store.remove_leftovers(cache)
        shutil.rmtree(version, ignore_errors=True)  # a version without its key: nobody holds it
        build(spec, folder, files, cache, key)
        cache_store.remove_unheld_versions(cache, keep=version)
        return True


def read_index(spec: CacheSpec, path: Path, key: dict) -> np.ndarray:
    """The version's index, once its key, index and pixels agree (one line if they do not)."""
    try:
        found = json.loads((path / KEY).read_text())
    except (OSError, ValueError):
        found = None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise _damaged(spec, path, f"{KEY} is missing or not a key of a {FORMAT}")
    if found != key:
        raise _damaged(spec, path, f"{KEY} is not the key its folder is named by")
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


def _unwritable(spec: CacheSpec, err: OSError) -> GroupwiseError:
    return GroupwiseError(
        f"dataset.cache_dir={spec.cache_dir}: cannot write a cache there "
        f"({type(err).__name__}: {err.strerror}); point dataset.cache_dir at a writable folder"
    )


def build(spec: CacheSpec, folder: Path, files: list[Path], cache: Path, key: dict) -> None:
    """Decode every file into a temporary folder inside `cache`, sync it, rename it into place
    as the version of `key`; a failure leaves nothing behind (a disk error: one line)."""
    try:
        building = Path(tempfile.mkdtemp(prefix=cache_store.BUILDING_PREFIX, dir=cache))
    except OSError as err:
        raise _unwritable(spec, err) from None
    try:
        (building / cache_store.EXPECTED).write_text(str(bytes_needed(spec, files)))
        _write(spec, folder, files, building, key)
        (building / cache_store.EXPECTED).unlink()
        _sync_folder(building)  # the folder's entries, before its name
        os.rename(building, version_of(cache, key))
    except OSError as err:  # the disk filled up (another job's files), an I/O error
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: building the decoded cache of {folder} failed "
            f"({type(err).__name__}: {err.strerror}); nothing was installed; free some space or "
            "point dataset.cache_dir elsewhere, and run again"
        ) from None
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _write(spec: CacheSpec, folder: Path, files: list[Path], building: Path, key: dict) -> None:
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


def _sync(file) -> None:
    file.flush()
    os.fsync(file.fileno())


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def bytes_needed(spec: CacheSpec, files: list[Path]) -> int:
    """The cache's size, from the files' headers (no pixels decoded)."""
    total = 0
    for file in files:
        height, width = stored_size(*header_size(file, spec.root), spec.short_side)
        total += spec.channels * height * width
    return total + 24 * len(files) + 4096 + 200 * len(files)  # index, header, key


def _check_space(spec: CacheSpec, folder: Path, files: list[Path], cache: Path) -> None:
    """Refused before anything is written when the cache, with what the other builds in
    progress have yet to write, would not fit."""
    needed = bytes_needed(spec, files)
    existing = next((p for p in [spec.cache_dir, *spec.cache_dir.parents] if p.exists()), None)
    free = shutil.disk_usage(existing).free
    others = cache_store.bytes_in_progress(spec.cache_dir, cache) if spec.cache_dir.is_dir() else 0
    if free - others < needed:
        building = (
            f", {cache_store.shown(others)} of it taken by builds in progress" if others else ""
        )
        raise GroupwiseError(
            f"dataset.cache_dir={spec.cache_dir}: the decoded cache of {folder} needs "
            f"{needed} bytes ({cache_store.shown(needed)}; {len(files)} images, short side "
            f"{spec.short_side}) and {free} bytes are free{building}; free some space, point "
            "dataset.cache_dir at a larger disk, lower dataset.cache_resolution, or set "
            "dataset.cache=false"
        )
