"""The decoded cache is never silently wrong (issue 31): a version, once installed, never changes
under its readers; a replacement that keeps the modification time is seen; building draws no
random numbers; one process builds while the others wait; and what it did is said and listed."""

import errno
import gc
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data import cache_store
from src.data.decoded_cache import INDEX, PIXELS
from src.errors import GroupwiseError
from tests.conftest import ROOT, run_python
from tests.generated_data import write_image_folder
from tests.test_decoded_cache import cached_data

# A build in a process of its own: each file decoded slowly (so that two builds overlap), its
# process id appended to argv[3]; then the version it read printed.
BUILD = """
import os, sys, time
from src.data import decode
from src.data.image_folder import image_folder
from tests.conftest import built_as_a_run_builds
decode_file = decode.Decoder.__call__
def slow(self, path):
    time.sleep(0.02)
    with open(sys.argv[3], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return decode_file(self, path)
decode.Decoder.__call__ = slow
data = built_as_a_run_builds(image_folder)(
    root=sys.argv[1], cache_dir=sys.argv[2], batch_size=4, seed=0, cache=True
)
print(data.train_loader.dataset.dataset.pixels_path.parent)
"""


def build_in_a_process(root: Path, cache_dir: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, str(root), str(cache_dir), str(log)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def batches(loader) -> list[torch.Tensor]:
    return [images for images, _ in loader]


@pytest.mark.e2e  # real processes: two loader workers, and a rebuild in another process
def test_a_reader_in_a_worker_keeps_its_pixels_while_another_process_rebuilds(tmp_path):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=6), tmp_path / "cache"
    data = cached_data(root, cache_dir, augment="none", num_workers=2)
    before = batches(data.val_loader)  # read by two worker processes
    held = data.val_loader.dataset.dataset.pixels_path.parent

    # Another job finds a file replaced (other pixels) and one added, and rebuilds.
    Image.new("RGB", (48, 40), (255, 255, 255)).save(root / "red" / "0.png")
    Image.new("RGB", (48, 40), (0, 0, 0)).save(root / "red" / "extra.png")
    build = build_in_a_process(root, cache_dir, tmp_path / "decoded.log")
    out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    rebuilt = Path(out.split()[-1])
    assert rebuilt != held and rebuilt.parent == held.parent  # beside it, not in its place

    # This run's next epoch: new workers, the same version, the same pixels.
    after = batches(data.val_loader)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert held.is_dir()
    # Once this run lets it go, the next build removes it.
    del data, before, after
    gc.collect()
    os.utime(root / "red" / "1.png", ns=(0, 10**18))
    cached_data(root, cache_dir)
    assert not held.exists() and not rebuilt.exists()


def test_a_replacement_that_keeps_size_and_modification_time_is_rebuilt(tmp_path, decoded):
    root = tmp_path / "data"
    for name in ("red", "blue"):
        (root / name).mkdir(parents=True)
    target = root / "red" / "0.bmp"  # uncompressed: a replacement of the same size in bytes
    Image.new("RGB", (40, 40), (200, 0, 0)).save(target)
    Image.new("RGB", (40, 40), (0, 0, 200)).save(root / "blue" / "1.bmp")
    first = cached_data(root, tmp_path / "cache")
    assert len(decoded) == 2

    replacement = tmp_path / "backup.bmp"
    Image.new("RGB", (40, 40), (0, 200, 0)).save(replacement)
    old = target.stat()
    shutil.copy2(replacement, target)  # as `cp -p` copies: the content, then the times
    os.utime(target, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    second = cached_data(root, tmp_path / "cache")
    assert len(decoded) == 4
    image, _ = second.train_loader.dataset.dataset[1]  # red/0.bmp: blue/ sorts first
    assert image.float().mean((1, 2)).argmax() == 1  # green: the new pixels
    del first


def test_hashing_contents_sees_a_replacement_and_ignores_a_bare_status_change(tmp_path, decoded):
    """For filesystems whose inodes and change times cannot be trusted."""
    root = write_image_folder(tmp_path / "data", per_class=1)
    cached_data(root, tmp_path / "cache", cache_hash_contents=True)
    os.chmod(root / "red" / "0.png", 0o600)  # a new change time, the same bytes
    cached_data(root, tmp_path / "cache", cache_hash_contents=True)
    assert len(decoded) == 3
    stat = (root / "red" / "0.png").stat()
    Image.new("RGB", (48, 40), (1, 2, 3)).save(root / "red" / "0.png")
    os.utime(root / "red" / "0.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cached_data(root, tmp_path / "cache", cache_hash_contents=True)
    assert len(decoded) == 6


def test_building_draws_no_random_numbers_from_the_runs_generators(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=3)
    drawn = []
    for _ in ("builds", "reuses"):
        torch.manual_seed(0)
        cached_data(root, tmp_path / "cache", num_workers=1)  # decoded in a loader worker
        drawn.append(torch.rand(4))
    assert torch.equal(*drawn)


@pytest.mark.e2e  # real processes
def test_two_processes_starting_on_one_uncached_folder_decode_it_once(tmp_path):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=10), tmp_path / "cache"
    log = tmp_path / "decoded.log"
    first = build_in_a_process(root, cache_dir, log)
    deadline = time.monotonic() + 60
    while not list(cache_dir.glob("*/.building-*")):  # the first is building: start another
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    second = build_in_a_process(root, cache_dir, log)
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    decoders = log.read_text().split()
    assert len(decoders) == 30 and decoders == [str(first.pid)] * 30
    assert outputs[0][0].split()[-1] == outputs[1][0].split()[-1]  # the same version read


def test_the_space_check_counts_the_builds_in_progress(tmp_path, monkeypatch):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=2), tmp_path / "cache"
    other = cache_dir / "other-train-256px-0"
    (other / ".building-x").mkdir(parents=True)
    (other / ".building-x" / cache_store.EXPECTED).write_text(str(10**6))
    free = shutil._ntuple_diskusage(10**9, 0, 10**6)  # room for one of the two builds
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    with cache_store.build_lock(other), pytest.raises(GroupwiseError) as err:
        cached_data(root, cache_dir)
    (line,) = err.value.problems
    assert "and 1000000 bytes are free, 1 MB of it taken by builds in progress" in line
    # A small size in a readable unit, never 0.00 GB.
    assert "needs 34744 bytes (34.7 KB; 6 images" in line
    cached_data(root, cache_dir)  # a killed build's leftover takes no room


def test_a_disk_error_while_building_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=2), tmp_path / "cache"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(GroupwiseError) as err:
        cached_data(root, cache_dir)
    (line,) = err.value.problems
    assert "failed (OSError: No space left on device); nothing was installed" in line
    assert [p.name for p in cache_dir.glob("*/*")] == ["build.lock"]


def test_the_log_says_built_or_reused_with_the_path_images_and_bytes(tmp_path, caplog):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=3), tmp_path / "cache"
    with caplog.at_level(logging.INFO, "src.data.decoded_cache"):
        cached_data(root, cache_dir)
        cached_data(root, cache_dir)
    # The first is built; every later open (val reads the same folder, the second run) reuses.
    built, *_, reused = (r.getMessage() for r in caplog.records)
    (version,) = cache_dir.glob("data-all-37px-*/v-*")  # named by dataset, split, resolution
    size = cache_store.shown(cache_store.folder_bytes(version))
    assert built.startswith(f"decoded cache: built {version} (9 images, {size}, ")
    assert reused.startswith(f"decoded cache: reused {version} (9 images, {size}, ")
    assert (version / PIXELS).is_file() and (version / INDEX).is_file()


def test_sizes_are_shown_in_a_readable_unit():
    shown = cache_store.shown
    assert [shown(512), shown(29_900), shown(1_234_567), shown(2_500_000_000)] == [
        "512 bytes",
        "29.9 KB",
        "1.23 MB",
        "2.5 GB",
    ]


def test_the_cache_command_lists_and_cleans_what_no_run_holds(tmp_path):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=2), tmp_path / "cache"
    cached_data(root, cache_dir)
    (version,) = cache_dir.glob("*/v-*")
    (version.parent / ".building-killed").mkdir()  # a killed build's leftover
    listed = run_python("-m", "src.cache", "list", f"cache_dir={cache_dir}")
    assert listed.returncode == 0, listed.stderr
    assert f"from {root.resolve()}" in listed.stdout and "1 killed build(s) left" in listed.stdout

    held = cached_data(root, cache_dir)  # a run reading it: kept by every clean
    cleaned = run_python("-m", "src.cache", "clean", f"cache_dir={cache_dir}", "unused_for_days=0")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (version.parent / ".building-killed").exists() and version.is_dir()
    del held
    gc.collect()
    cleaned = run_python("-m", "src.cache", "clean", f"cache_dir={cache_dir}", "unused_for_days=0")
    assert cleaned.returncode == 0, cleaned.stderr
    assert list(cache_dir.iterdir()) == []
