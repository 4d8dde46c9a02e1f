"""Images are what their files hold: 16-bit images read as their 8-bit values in every image path
(the uncached loader, predict's files, the decoded cache), pixels of no stated range refused,
files of formats not read counted in the run's log, a folder of one class refused."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from src.data import decode
from src.data.decoded_cache import PIXELS
from src.data.image_files import ImageFiles
from src.data.image_folder import ImageReader, image_folder
from src.errors import GroupwiseError
from tests.conftest import built_as_a_run_builds
from tests.generated_data import write_image_folder, write_png16

build_folder = built_as_a_run_builds(image_folder)
# The intended 8-bit values, stored in 16 bits as a 16-bit export stores them (v * 257).
EIGHT_BIT = np.array([[0, 1, 100, 200, 254, 255]] * 2, np.uint16)
GREY = EIGHT_BIT[..., None].repeat(3, axis=2)
RGB = np.stack([EIGHT_BIT, 255 - EIGHT_BIT, EIGHT_BIT // 2], axis=2)


def sixteen_bit_folder(root):
    """Two classes, each one 16-bit PNG: grey (PIL's mode I;16) and RGB."""
    for name, pixels in (("grey", EIGHT_BIT), ("rgb", RGB)):
        (root / name).mkdir(parents=True)
        write_png16(root / name / "16.png", pixels * 257)
    return root


@pytest.mark.parametrize(("name", "expected"), [("grey", GREY), ("rgb", RGB)])
def test_16_bit_pngs_read_as_their_8_bit_values_uncached_and_decoded(tmp_path, name, expected):
    path = sixteen_bit_folder(tmp_path / "data") / name / "16.png"
    uncached = np.asarray(ImageReader(str(tmp_path))(str(path)))
    assert uncached.tolist() == expected.tolist()  # not 99.5% white: PIL clips I;16 at 255
    decoder = decode.Decoder(str(tmp_path), channels=3, short_side=64, interpolation="bilinear")
    decoded = decoder(path)
    assert decoded.dtype == torch.uint8
    assert decoded.permute(1, 2, 0).tolist() == expected.tolist()
    # predict's reader gives the same 8-bit values (and grey ones for a one-channel model)
    (predicted, why) = ImageFiles([path], channels=3, transform=np.asarray)[0]
    assert why == "" and predicted.tolist() == expected.tolist()
    if name == "grey":
        grey = decode.Decoder(str(tmp_path), 1, 64, "bilinear")(path)
        assert grey[0].tolist() == EIGHT_BIT.tolist()
        assert ImageFiles([path], 1, np.asarray)[0][0].tolist() == EIGHT_BIT.tolist()


def test_the_decoded_cache_stores_16_bit_images_as_their_8_bit_values(tmp_path):
    root = sixteen_bit_folder(tmp_path / "data")
    build_folder(root=str(root), batch_size=2, seed=0, cache=True, cache_dir=str(tmp_path / "c"))
    (version,) = (tmp_path / "c").glob("*/v-*")  # the cache of the one folder
    stored = np.fromfile(version / PIXELS, np.uint8)
    assert stored.tolist() == np.concatenate([GREY.ravel(), RGB.ravel()]).tolist()


@pytest.mark.parametrize(
    ("pixels", "said"),
    [
        (np.full((4, 4), 0.5, np.float32), "floating-point pixels (PIL mode F)"),
        (np.full((4, 4), 70000, np.int32), "32-bit integer pixels (PIL mode I)"),
    ],
)
def test_pixels_of_no_stated_range_are_refused_in_one_line_on_every_path(tmp_path, pixels, said):
    path = tmp_path / "x.tif"
    Image.fromarray(pixels).save(path)
    for read in (ImageReader(str(tmp_path)), decode.Decoder(str(tmp_path), 3, 64, "bilinear")):
        with pytest.raises(GroupwiseError) as refused:
            read(path)
        assert str(refused.value) == (
            f"dataset.root={tmp_path}: the image {path} holds {said}, whose range the file does "
            "not state; save it with 8 or 16 bits per channel"
        )
    assert said in ImageFiles([path], 3, np.asarray)[0][1]  # predict: reported, not fatal


def test_files_of_formats_not_read_are_counted_in_the_log(tmp_path, caplog):
    root = write_image_folder(tmp_path / "data", per_class=4)
    Image.new("RGB", (8, 8)).save(root / "red" / "a.gif")
    Image.new("RGB", (8, 8)).save(root / "blue" / "b.GIF")
    (root / "blue" / "notes.txt").write_text("shot in May")
    (root / "blue" / ".DS_Store").write_bytes(b"\0")  # the system's: not counted
    with caplog.at_level(logging.WARNING):
        data = build_folder(root=str(root), batch_size=2, seed=0)
    assert len(data.train_loader.dataset) + len(data.val_loader.dataset) == 12  # the PNGs
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line == (
        f"dataset.root={root}: 3 file(s) not read, of formats ImageFolder does not read "
        "(2 .gif, 1 .txt: blue/b.GIF, blue/notes.txt, red/a.gif); convert them to PNG or JPEG "
        "to train on them"
    )


@pytest.mark.parametrize("layout", ["one folder", "train and val"])
def test_a_folder_of_one_class_is_refused_before_an_image_is_read(tmp_path, layout):
    root = tmp_path / "data"
    for split in ["."] if layout == "one folder" else ["train", "val"]:
        (root / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / split / "cat" / "0.png")
    with pytest.raises(GroupwiseError, match=r"holds one class folder \(cat\); a classifier"):
        build_folder(root=str(root), batch_size=2, seed=0)
