"""The decoded cache (dataset.cache=true): built once, rebuilt when the folder changes, never
half-read, refused in one line when damaged, foreign or without room."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data import decode
from src.data.decoded_cache import INDEX, KEY, PIXELS
from src.data.image_folder import image_folder
from src.errors import GroupwiseError
from tests.conftest import ROOT, built_as_a_run_builds
from tests.generated_data import write_image_folder

build_folder = built_as_a_run_builds(image_folder)


def cached_data(root: Path, cache_dir: Path, **options):
    options = {"batch_size": 4, "seed": 0, "cache": True, **options}
    return build_folder(root=str(root), cache_dir=str(cache_dir), **options)


def only_cache(cache_dir: Path) -> Path:
    """The one version of the one cache in `cache_dir`."""
    (cache,) = cache_dir.glob("*/v-*")
    return cache


def test_cached_folder_yields_uint8_crops_that_the_device_stages_normalise(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=5, size=(48, 40))
    data = cached_data(root, tmp_path / "cache", image_size=24)
    images, _ = next(iter(data.train_loader))
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 24, 24)
    assert data.train_on_device(images).dtype == torch.float32
    # The split of one folder composes with the cache: 15 images, 3 held out (one a class).
    assert (len(data.train_loader.dataset), len(data.val_loader.dataset)) == (12, 3)
    # Stored at the evaluation resize (short side 24 * 37 / 32 = 28): evaluation crops only.
    cache = only_cache(tmp_path / "cache")
    index = np.load(cache / INDEX)
    assert index[:, 1:].tolist() == [[28, 33]] * 15
    val_images, _ = next(iter(data.val_loader))
    (_, _, height, width) = val_images.shape
    assert (height, width) == (24, 24)


def test_an_unchanged_folder_is_read_without_decoding_and_a_changed_file_rebuilds(
    tmp_path, decoded
):
    root = write_image_folder(tmp_path / "data", per_class=3)
    cached_data(root, tmp_path / "cache")
    assert len(decoded) == 9
    cached_data(root, tmp_path / "cache", val_fraction=0.5)  # the same files: read as they are
    assert len(decoded) == 9

    changed = root / "red" / "1.png"
    os.utime(changed, ns=(0, 10**18))  # touched: its modification time
    touched = cached_data(root, tmp_path / "cache")  # kept: this version is read on
    assert len(decoded) == 18

    Image.new("RGB", (64, 64), (255, 255, 255)).save(changed)  # replaced: size and pixels
    data = cached_data(root, tmp_path / "cache")
    assert len(decoded) == 27
    # The newest version beside the one still read here; the first, read by nobody, removed.
    versions = sorted((tmp_path / "cache").glob("*/v-*"), key=lambda v: v.stat().st_mtime)
    read = [d.train_loader.dataset.dataset.pixels_path.parent for d in (touched, data)]
    assert versions == read
    index = np.load(versions[-1] / INDEX)
    assert index[:, 1:].tolist() == [[37, 44]] * 7 + [[37, 37], [37, 44]]  # blue, green, red
    assert sorted(p.name for p in versions[-1].iterdir()) == sorted([INDEX, KEY, PIXELS])


def test_a_build_that_fails_midway_leaves_no_cache(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "data", per_class=4)
    decode_file, calls = decode.Decoder.__call__, []

    def failing(self, path):
        calls.append(path)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return decode_file(self, path)

    monkeypatch.setattr(decode.Decoder, "__call__", failing)
    with pytest.raises(RuntimeError, match="killed"):
        cached_data(root, tmp_path / "cache")
    # Not even the temporary folder: only the cache's build lock.
    assert [p.name for p in (tmp_path / "cache").glob("*/*")] == ["build.lock"]
    monkeypatch.setattr(decode.Decoder, "__call__", decode_file)
    data = cached_data(root, tmp_path / "cache")
    assert len(data.train_loader.dataset) + len(data.val_loader.dataset) == 12


SLOW_BUILD = """
import sys, time
from src.data import decode
from src.data.image_folder import image_folder
from src.config.dataset_schema import ImageFolderConfig
from tests.conftest import built_as_a_run_builds
decode_file = decode.Decoder.__call__
def slow(self, path):
    time.sleep(0.05)
    return decode_file(self, path)
decode.Decoder.__call__ = slow
built_as_a_run_builds(image_folder)(
    root=sys.argv[1], cache_dir=sys.argv[2], batch_size=4, seed=0, cache=True
)
"""


@pytest.mark.e2e  # a real process, killed
def test_a_build_killed_by_sigkill_leaves_nothing_a_later_run_reads(tmp_path, decoded):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=30), tmp_path / "cache"
    build = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, str(root), str(cache_dir)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in cache_dir.glob("*/.building-*/" + PIXELS)):
        assert build.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(build.pid, signal.SIGKILL)
    build.wait()
    # Only the temporary folder is left; the next run builds the cache whole and removes it.
    (cache,) = cache_dir.iterdir()
    left = sorted(p.name for p in cache.iterdir())
    assert left[0].startswith(".building-") and left[1:] == ["build.lock"]
    data = cached_data(root, cache_dir)
    assert not list(cache.glob(".building-*"))
    assert len(decoded) == 90
    assert len(data.train_loader.dataset) + len(data.val_loader.dataset) == 90
    next(iter(data.val_loader))


def damage_pixels(cache: Path) -> None:
    with open(cache / PIXELS, "r+b") as pixels:
        pixels.truncate(100)


def foreign_key(cache: Path) -> None:
    (cache / KEY).write_text('{"name": "something else"}')


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (damage_pixels, "pixels.u8 holds 100 bytes, its index says"),
        (foreign_key, "key.json is missing or not a key of a groupwise decoded image cache"),
        (lambda cache: (cache / INDEX).unlink(), "FileNotFoundError"),
    ],
)
def test_a_damaged_or_foreign_cache_is_one_line(tmp_path, damage, said):
    root = write_image_folder(tmp_path / "data", per_class=2)
    cached_data(root, tmp_path / "cache")
    cache = only_cache(tmp_path / "cache")
    damage(cache)
    with pytest.raises(GroupwiseError) as err:
        cached_data(root, tmp_path / "cache")
    (line,) = err.value.problems
    assert said in line and "delete that folder (the next run rebuilds it)" in line
    assert str(cache) in line


def test_a_full_disk_is_refused_before_writing_with_the_bytes_needed(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "data", per_class=2, size=(48, 40))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 9, 1))
    with pytest.raises(GroupwiseError) as err:
        cached_data(root, tmp_path / "cache")
    # 6 images stored at 37x44 (short side 37: LeNet's evaluation resize), RGB.
    pixels = 6 * 3 * 37 * 44
    (line,) = err.value.problems
    assert "needs" in line and "and 1 bytes are free" in line
    needed = int(line.split(" needs ")[1].split(" bytes")[0])
    assert pixels < needed < pixels + 10_000
    assert not (tmp_path / "cache").exists()


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path):
    root = write_image_folder(tmp_path / "data", per_class=2)
    (tmp_path / "cache").write_text("")
    with pytest.raises(GroupwiseError, match="cannot write a cache there"):
        cached_data(root, tmp_path / "cache")


def test_a_rank_other_than_local_zero_reads_what_local_rank_zero_built(
    tmp_path, decoded, monkeypatch
):
    root = write_image_folder(tmp_path / "data", per_class=2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(GroupwiseError, match="after local rank 0 built it"):
        cached_data(root, tmp_path / "cache")
    assert decoded == []  # rank 1 never builds
    monkeypatch.setenv("LOCAL_RANK", "0")
    cached_data(root, tmp_path / "cache")
    monkeypatch.setenv("LOCAL_RANK", "1")
    cached_data(root, tmp_path / "cache")
    assert len(decoded) == 6


def test_stored_sizes_cap_the_short_side_and_never_upscale():
    assert decode.stored_size(300, 400, 37) == (37, 49)
    assert decode.stored_size(400, 300, 256) == (341, 256)
    assert decode.stored_size(30, 40, 37) == (30, 40)


def test_cached_evaluation_batches_match_the_uncached_pipelines(tmp_path):
    """The same images, resized and centre-cropped from the cache (then the device stage) or
    from the files (PIL, torchvision's transforms): equal but for the resize kernels' rounding."""
    root = write_image_folder(tmp_path / "data", per_class=3, size=(60, 44))
    cached = cached_data(root, tmp_path / "cache", augment="none")
    uncached = build_folder(root=str(root), batch_size=4, seed=0, augment="none")
    (images, labels), (expected, expected_labels) = (
        next(iter(data.val_loader)) for data in (cached, uncached)
    )
    assert torch.equal(labels, expected_labels)
    difference = (cached.eval_on_device(images) - expected).abs()
    assert difference.mean() < 0.02 and difference.max() < 0.3
