"""The decoded caches on disk: who builds, who reads, what may be removed. Locks are the
operating system's (`fcntl.flock`), so a killed process holds none.

    <cache_dir>/<dataset>-<split>-<resolution>px-<hash>/   one cache (src.data.decoded_cache)
        build.lock        held (exclusive) by the one process building; the others wait on it
        v-<key hash>/     a version: pixels.u8, index.npy, key.json; never changed once installed
        .building-*/      a build in progress, or what a killed build left

A version is installed by renaming a whole `.building-*` folder, beside the others. Every
process that reads a version holds a shared lock on its key.json for as long as it reads (its
DataLoader workers open the same, unchanging files), so a version is removed only once it can
be locked exclusively: when no run holds it.
"""

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUILD_LOCK, KEY = "build.lock", "key.json"
VERSION_PREFIX, BUILDING_PREFIX, REMOVING_PREFIX = "v-", ".building-", ".removing-"
# What a build in progress expects to write, for the other builds' space checks.
EXPECTED = "expected_bytes"


@contextmanager
def build_lock(cache: Path) -> Iterator[None]:
    """Held while this process builds `cache`; another process's build of it is waited for."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / BUILD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def building_now(cache: Path) -> bool:
    """Whether a live process holds `cache`'s build lock."""
    try:
        with open(cache / BUILD_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no such cache, or not ours to lock: nobody builds there
        return False
    return False


def hold(version: Path):
    """An open key.json of `version` under a shared lock (keep it open to keep the version), with
    its use recorded; None when there is no such version (or it was just removed)."""
    try:
        key = open(version / KEY, "rb")  # noqa: SIM115 -- held by the reader for its whole run
    except (FileNotFoundError, NotADirectoryError):  # cache_dir a file: said when building
        return None
    fcntl.flock(key, fcntl.LOCK_SH)
    try:  # locked after a remover renamed it away: not the version any more
        same = os.stat(version / KEY).st_ino == os.fstat(key.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        key.close()
        return None
    with contextlib.suppress(OSError):  # a read-only cache_dir: still readable
        os.utime(version)  # its last use, for `python -m src.cache list`
    return key


def _remove_if_unheld(version: Path) -> bool:
    """Remove `version` unless a process holds it: renamed away first, under the exclusive lock,
    so a reader that locks it afterwards sees it gone."""
    try:
        key = open(version / KEY, "rb")  # noqa: SIM115 -- closed below
    except FileNotFoundError:  # half a version (deleted by hand): nobody can hold it
        key = None
    try:
        if key is not None:
            fcntl.flock(key, fcntl.LOCK_EX | fcntl.LOCK_NB)
        gone = version.with_name(f"{REMOVING_PREFIX}{version.name}-{os.getpid()}")
        os.rename(version, gone)
    except BlockingIOError:
        return False
    finally:
        if key is not None:
            key.close()
    shutil.rmtree(gone, ignore_errors=True)
    return True


def remove_unheld_versions(cache: Path, keep: Path | None) -> list[Path]:
    """Every version of `cache` but `keep` that no process holds, removed; what was removed."""
    versions = [v for v in cache.glob(VERSION_PREFIX + "*") if v != keep]
    return [v for v in versions if _remove_if_unheld(v)]


def remove_leftovers(cache: Path) -> list[Path]:
    """What killed builds and removals left in `cache`; call it holding the build lock (or
    having checked that nobody builds)."""
    leftovers = [*cache.glob(BUILDING_PREFIX + "*"), *cache.glob(REMOVING_PREFIX + "*")]
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)
    return leftovers


def bytes_in_progress(cache_dir: Path, besides: Path) -> int:
    """The bytes the builds in progress in `cache_dir` (other than `besides`'s) have yet to
    write: a space check counts them as taken."""
    pending = 0
    for building in cache_dir.glob(f"*/{BUILDING_PREFIX}*"):
        if building.parent == besides or not building_now(building.parent):
            continue
        try:
            expected = int((building / EXPECTED).read_text())
            written = sum(f.stat().st_size for f in building.iterdir() if f.name != EXPECTED)
        except (OSError, ValueError):  # just started or just installed
            continue
        pending += max(0, expected - written)
    return pending


def shown(size: int) -> str:
    """Bytes for a reader: 512 bytes, 37.5 KB, 1.23 GB (never a small size as 0.00 GB)."""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.3g} {unit}" if size < 1000 else f"{size:,.0f} {unit}"


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


@dataclass
class Cache:
    """One cache of `cache_dir`, as `python -m src.cache list` shows it."""

    path: Path
    source: str  # the folder it was decoded from (its newest version's key.json)
    size: int  # bytes on disk, every version and leftover included
    last_use: float  # seconds since the epoch: the newest version's last open
    versions: int
    leftovers: int  # killed builds' folders (a build in progress counts as none)


def caches(cache_dir: Path) -> list[Cache]:
    """Every cache of `cache_dir`, the most recently used first."""
    import json

    found = []
    for cache in (p for p in cache_dir.iterdir() if (p / BUILD_LOCK).exists()):
        versions = sorted(cache.glob(VERSION_PREFIX + "*"), key=lambda v: v.stat().st_mtime)
        try:
            source = json.loads((versions[-1] / KEY).read_text())["source"]
        except (IndexError, OSError, ValueError, KeyError, TypeError):
            source = "?"
        leftovers = [] if building_now(cache) else list(cache.glob(BUILDING_PREFIX + "*"))
        last_use = versions[-1].stat().st_mtime if versions else 0.0
        found.append(
            Cache(cache, source, folder_bytes(cache), last_use, len(versions), len(leftovers))
        )
    return sorted(found, key=lambda c: -c.last_use)


def clean(cache_dir: Path, unused_for_days: float) -> list[Path]:
    """Remove what no run needs: killed builds' leftovers, versions older than their cache's
    newest, and whole caches unused for `unused_for_days`, unless a process holds them."""
    removed = []
    for cache in caches(cache_dir):
        if building_now(cache.path):
            continue
        removed += remove_leftovers(cache.path)
        versions = sorted(cache.path.glob(VERSION_PREFIX + "*"), key=lambda v: v.stat().st_mtime)
        unused = not versions or time.time() - cache.last_use > unused_for_days * 86400
        removed += remove_unheld_versions(cache.path, None if unused else versions[-1])
        if unused and not any(cache.path.glob(VERSION_PREFIX + "*")):
            shutil.rmtree(cache.path, ignore_errors=True)
            removed.append(cache.path)
    return removed
