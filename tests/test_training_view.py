"""The training view's options (train_crop, crop_scale, crop_ratio, crop_padding, hflip,
vflip, color_jitter) and the evaluation's (crop_pct, interpolation): the issue-33 run of digits
in an image folder against timm's own create_transform, the cached crop against the uncached
one for the same draws, the digits' tensors, and the evaluation view that src.evaluate and
src.predict read back (Data.input)."""

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.transforms import RandomResizedCropAndInterpolation
from torchvision.transforms import v2

from src.config.dataset_schema import ImageFolderConfig, TorchvisionDatasetConfig
from src.data import cached_folder, digits
from src.data import image_folder as image_folder_module
from src.data.transforms import Augmentation, train_and_eval_transforms
from src.errors import GroupwiseError
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from tests.conftest import built_as_a_run_builds, view_of

image_folder = built_as_a_run_builds(image_folder_module.image_folder)
digits_data = built_as_a_run_builds(digits.digits)
PRE = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3)


def write_digit_folder(root, per_class: int = 4):
    """root/train|val/<digit>/*.png: scikit-learn's 8x8 digits as 32 px grey PNGs."""
    pixels, labels = digits.read_digits()
    for split, offset in (("train", 0), ("val", 50)):
        for digit in (2, 5, 7):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            chosen = np.flatnonzero(labels == digit)[offset : offset + per_class]
            for i in chosen:
                image = Image.fromarray((pixels[i] * 255 / 16).astype(np.uint8))
                image.resize((32, 32), Image.BILINEAR).save(folder / f"{i}.png")
    return root


def train_transform(loader) -> v2.Compose:
    dataset = loader.dataset
    while not hasattr(dataset, "transform"):  # Subset
        dataset = dataset.dataset
    return dataset.transform


def test_a_digits_folder_without_flips_at_scale_half_to_one_is_timms_create_transform(
    tmp_path, monkeypatch
):
    """Issue 33's run, as groupwise options and as timm's create_transform(scale=(0.5, 1),
    hflip=0) with timm's other defaults (colour jitter 0.4, bilinear): the same transforms'
    parameters, and the same tensors for the same crop boxes and jitter draws."""
    root = write_digit_folder(tmp_path / "digits")
    data = image_folder(
        root=str(root),
        transform_from=None,  # the photo default: 32 px in 37, ImageNet's mean and std
        crop_scale=[0.5, 1.0],
        hflip=0.0,
        color_jitter=0.4,
    )
    ours = train_transform(data.train_loader)
    timm = create_transform(
        32, is_training=True, scale=(0.5, 1), hflip=0, mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
    crop, jitter = ours.transforms[0], ours.transforms[2]
    timm_crop, timm_jitter = timm.transforms[0], timm.transforms[1]
    assert isinstance(crop, v2.RandomResizedCrop) and list(crop.size) == list(timm_crop.size)
    assert tuple(crop.scale) == tuple(timm_crop.scale) == (0.5, 1)
    assert crop.ratio == pytest.approx(timm_crop.ratio)
    assert crop.interpolation.value == timm_crop.interpolation.value == "bilinear"
    for name in ("brightness", "contrast", "saturation"):
        assert list(getattr(jitter, name)) == pytest.approx(list(getattr(timm_jitter, name)))
    flips = (v2.RandomHorizontalFlip, v2.RandomVerticalFlip)
    assert not any(isinstance(t, flips) for t in ours.transforms)
    assert not any("Flip" in type(t).__name__ for t in timm.transforms)

    # timm draws its box with Python's random, torchvision with torch's: the same box is given
    # to both; the jitter's draws are torch's in both (torchvision's ColorJitter, same order).
    image = Image.open(next((root / "train" / "2").iterdir())).convert("RGB")
    outcomes = set()
    for seed in range(4):
        torch.manual_seed(seed)
        expected = ours(image)
        torch.manual_seed(seed)
        box = crop.make_params([image])
        box = (box["top"], box["left"], box["height"], box["width"])
        monkeypatch.setattr(
            RandomResizedCropAndInterpolation, "get_params", lambda *a, box=box: box
        )
        torch.testing.assert_close(timm(image), expected, rtol=0, atol=1e-5)
        outcomes.add(expected.numpy().tobytes())
    assert len(outcomes) == 4


def photo_image(size=(48, 40)) -> Image.Image:
    noise = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.interpolate(noise[None], size=size[::-1], mode="bilinear")[0]
    return Image.fromarray((smooth * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())


@pytest.mark.parametrize(
    "view",
    [
        {"train_crop": "resized", "crop_scale": [0.5, 1.0], "crop_ratio": [0.5, 2.0]},
        {"train_crop": "padded", "crop_padding": 6},
        {"train_crop": "padded"},
        {"train_crop": "none"},
    ],
    ids=["resized", "padded6", "padded", "none"],
)
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_the_cached_crop_draws_the_uncached_crop(view, interpolation):
    """For the same draws the decoded cache's crop (uint8 tensors, in the loader) cuts the box
    the uncached pipeline cuts from the PIL image: exactly for the padded crop and none (no
    resampling at the stored resolution), within PIL's and torch's resampling for the resized."""
    pre = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3, interpolation)
    augment = Augmentation("basic", 0.0, 2, 9, view_of(**view))
    uncached, _ = train_and_eval_transforms(pre, "photo", None, augment)
    uncached_crop = v2.Compose([t for t in uncached.transforms if not isinstance(t, v2.RGB)][:-4])
    cached, _ = cached_folder.crop_transforms(pre, augment)
    image = photo_image((44, 37))  # stored as the cache stores it: short side pre.resize
    tensor = v2.functional.pil_to_tensor(image)
    for seed in range(6):
        torch.manual_seed(seed)
        expected = v2.functional.pil_to_tensor(uncached_crop(image)).float()
        torch.manual_seed(seed)
        out = cached(tensor).float()
        assert out.shape == expected.shape == (3, 32, 32)
        if view["train_crop"] == "resized":
            assert (out - expected).abs().mean() < 3, seed
        else:
            assert torch.equal(out, expected), seed


def test_the_cached_and_uncached_image_folder_take_the_evaluation_crop_and_interpolation(tmp_path):
    """crop_pct and interpolation reach evaluation, the cache and Data.input (which export,
    src.evaluate and src.predict read), in both paths."""
    root = write_digit_folder(tmp_path / "digits", per_class=2)
    options = {"root": str(root), "transform_from": None, "image_size": 32}
    changed = {"crop_pct": 0.5, "interpolation": "bicubic"}
    for cache in (False, True):
        cache_dir = str(tmp_path / "cache")
        data = image_folder(**options, **changed, cache=cache, cache_dir=cache_dir)
        assert data.input["resize"] == 64 and data.input["crop"] == 32
        assert data.input["interpolation"] == "bicubic"
        val = data.val_loader.dataset
        resize = val.transform.transforms[0]
        assert isinstance(resize, v2.Resize) and resize.size == [64]
        assert resize.interpolation.value == "bicubic"
        plain = image_folder(**options, cache=cache, cache_dir=cache_dir)
        assert plain.input["resize"] == 37 and plain.input["interpolation"] == "bilinear"


def test_a_small_dataset_with_an_evaluation_crop_is_evaluated_as_a_photo():
    pre = Preprocess(28, 28, (0.1,), (0.3,), 1)
    augment = Augmentation("basic", 0.0, 2, 9, view_of(TorchvisionDatasetConfig))
    train, evaluation = train_and_eval_transforms(pre, "small", 28, augment)
    assert [type(t) for t in evaluation.transforms][:1] == [v2.ToImage]  # whole, as today
    assert isinstance(train.transforms[0], v2.RandomCrop)


def test_the_digits_view_defaults_to_none_and_each_option_changes_the_training_digits():
    plain = digits_data()
    assert isinstance(plain.train_loader.dataset, torch.utils.data.TensorDataset)  # as before
    images, labels = next(iter(plain.train_loader))
    mirrored, mirrored_labels = next(iter(digits_data(hflip=1.0, vflip=1.0).train_loader))
    assert torch.equal(mirrored_labels, labels)  # the same seeded order
    assert torch.equal(mirrored, images.flip(-1).flip(-2))
    torch.manual_seed(0)
    shifted, _ = next(iter(digits_data(train_crop="padded", crop_padding=4).train_loader))
    assert shifted.shape == images.shape and not torch.equal(shifted, images)
    torch.manual_seed(0)
    cropped, _ = next(iter(digits_data(train_crop="resized", crop_scale=[0.5, 0.6]).train_loader))
    assert cropped.shape == images.shape and not torch.equal(cropped, images)
    torch.manual_seed(0)
    jittered, _ = next(iter(digits_data(color_jitter=0.4).train_loader))
    assert not torch.equal(jittered, images) and jittered.min() >= 0 and jittered.max() <= 1
    # Evaluation sees the digits as they are, whatever the view.
    val = next(iter(plain.val_loader))[0]
    assert torch.equal(next(iter(digits_data(hflip=1.0).val_loader))[0], val)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"crop_scale": [1.0, 0.5]}, r"dataset\.crop_scale=\[1\.0, 0\.5\]: not a \[min, max\]"),
        ({"crop_ratio": [0.75]}, r"dataset\.crop_ratio=\[0\.75\]: not a \[min, max\] pair"),
    ],
)
def test_a_scale_or_ratio_that_is_no_pair_is_one_line_before_anything_is_built(override, message):
    with pytest.raises(GroupwiseError, match=message):
        digits_data(**override)


def test_each_kind_defaults_to_what_it_did_before_its_view_had_options():
    photo, small, digit = view_of(), view_of(TorchvisionDatasetConfig), view_of(digits.DigitsConfig)
    assert (photo.crop, photo.scale, photo.hflip) == ("resized", (0.08, 1.0), 0.5)
    assert photo.ratio == pytest.approx((3 / 4, 4 / 3))
    assert (small.crop, small.padding, small.hflip) == ("padded", None, 0.0)
    assert (digit.crop, digit.hflip, digit.vflip, digit.color_jitter) == ("none", 0.0, 0.0, 0.0)
    assert ImageFolderConfig().crop_pct is None and ImageFolderConfig().interpolation is None
