"""The device stage of uint8 batches: for the same image and the same draws, what
torchvision's CPU pipeline gives after its crop (bit for bit for none and basic, within the
PIL-versus-tensor kernels' rounding for the policies); each image its own draws."""

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from src.data.device_augmentation import (
    DeviceAugmentation,
    PerImageJitter,
    PerImagePolicy,
    device_stages,
)
from src.data.device_erasing import PerImageErasing
from src.data.transforms import Augmentation, train_and_eval_transforms
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from tests.conftest import view_of

PRE = Preprocess(8, 9, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), 3)
POLICIES = ["randaugment", "trivialaugment", "autoaugment"]
V2_POLICY = {
    "randaugment": lambda: v2.RandAugment(2, 9, interpolation=v2.InterpolationMode.BILINEAR),
    "trivialaugment": lambda: v2.TrivialAugmentWide(interpolation=v2.InterpolationMode.BILINEAR),
    "autoaugment": lambda: v2.AutoAugment(interpolation=v2.InterpolationMode.BILINEAR),
}


def uint8_batch(n=6, seed=0, channels=3, size=8):
    return torch.randint(
        0,
        256,
        (n, channels, size, size),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(seed),
    )


def smooth_image(channels: int, size: int = 32) -> torch.Tensor:
    """A photo-like uint8 image (smooth, so that interpolation differences stay small)."""
    noise = torch.rand(1, channels, 8, 8, generator=torch.Generator().manual_seed(0))
    smooth = torch.nn.functional.interpolate(noise, size=(size, size), mode="bilinear")
    return (smooth[0] * 255).round().to(torch.uint8)


def as_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if image.shape[0] == 1 else array)


def after_the_crop(pre: Preprocess, augment: Augmentation) -> v2.Compose:
    """The CPU training pipeline without its crop: what the device stage replaces."""
    train, _ = train_and_eval_transforms(pre, "photo", None, augment)
    crops = 2 if augment.name == "none" else 1  # Resize, CenterCrop | RandomResizedCrop
    return v2.Compose(train.transforms[crops:])


def test_evaluation_equals_torchvisions_scaling_and_normalisation():
    images = uint8_batch()
    expected = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(PRE.mean, PRE.std)])
    assert torch.equal(DeviceAugmentation(PRE)(images), expected(images))
    _, evaluation = device_stages(PRE, Augmentation("randaugment", 1.0, 2, 9, view_of()))
    assert torch.equal(evaluation(images), expected(images))  # no flip, policy nor erasing


def test_training_flips_each_image_on_its_own_draw_from_the_seeded_generator():
    images = uint8_batch(64)
    torch.manual_seed(3)
    out = DeviceAugmentation(PRE, hflip=0.5)(images)
    plain = DeviceAugmentation(PRE)
    flipped = [torch.equal(o, plain(images[i : i + 1].flip(-1))[0]) for i, o in enumerate(out)]
    kept = [torch.equal(o, plain(images[i : i + 1])[0]) for i, o in enumerate(out)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54  # per image, not one choice for the whole batch
    torch.manual_seed(3)
    assert torch.equal(DeviceAugmentation(PRE, hflip=0.5)(images), out)


def outcomes_equal_on_both_paths(pre, augment, file_channels: int) -> set[bytes]:
    """The device stage's image for 12 seeded draws, each checked equal to the CPU pipeline's
    for the same seed; the distinct outcomes."""
    cpu, (device, _) = after_the_crop(pre, augment), device_stages(pre, augment)
    image = smooth_image(file_channels)
    outcomes = set()
    for seed in range(12):
        torch.manual_seed(seed)
        expected = cpu(as_pil(image))
        torch.manual_seed(seed)
        out = device(image[None])[0]
        assert torch.equal(out, expected), seed
        outcomes.add(out.numpy().tobytes())
    return outcomes


@pytest.mark.parametrize(
    ("file_channels", "model_channels"), [(3, 3), (1, 1), (1, 3)], ids=["rgb", "gray", "gray2rgb"]
)
@pytest.mark.parametrize("policy", ["none", "basic"])
@pytest.mark.parametrize("erasing", [0.0, 0.5])
def test_none_and_basic_give_the_cpu_pipelines_numbers_for_the_same_draws(
    policy, erasing, file_channels, model_channels
):
    pre = Preprocess(
        32, 37, IMAGENET_MEAN[:model_channels], IMAGENET_STD[:model_channels], model_channels
    )
    augment = Augmentation(policy, erasing, 2, 9, view_of())
    outcomes = outcomes_equal_on_both_paths(pre, augment, file_channels)
    if erasing:  # about half the draws erase a box, each its own
        assert len(outcomes) > 4
    else:  # the image as it is, and (basic) mirrored
        assert len(outcomes) == {"none": 1, "basic": 2}[policy]


VIEWS = {  # each view option, alone and with the others and a policy after it
    "hflip": ({"hflip": 0.3}, "basic"),
    "vflip": ({"hflip": 0.0, "vflip": 0.5}, "basic"),
    "color_jitter": ({"hflip": 0.0, "color_jitter": 0.4}, "basic"),
    "all": ({"hflip": 0.5, "vflip": 0.5, "color_jitter": 0.3}, "randaugment"),
}


@pytest.mark.parametrize(
    ("file_channels", "model_channels"), [(3, 3), (1, 1), (1, 3)], ids=["rgb", "gray", "gray2rgb"]
)
@pytest.mark.parametrize("view", list(VIEWS))
def test_each_view_option_gives_the_cpu_pipelines_numbers_for_the_same_draws(
    view, file_channels, model_channels
):
    """The flips and the colour jitter, drawn per image on the device as the CPU pipeline
    draws them (the jitter with PIL's kernels on the CPU, as the workers run it)."""
    pre = Preprocess(
        32, 37, IMAGENET_MEAN[:model_channels], IMAGENET_STD[:model_channels], model_channels
    )
    options, policy = VIEWS[view]
    augment = Augmentation(policy, 0.0, 2, 9, view_of(**options))
    outcomes = outcomes_equal_on_both_paths(pre, augment, file_channels)
    assert len(outcomes) > 1  # the option changes what training sees


def test_the_jitter_with_torchs_kernels_draws_each_image_as_colorjitter_alone():
    """What an accelerator computes: each image its own factors and order, as v2.ColorJitter
    called image by image on the same generator."""
    images = uint8_batch(16, channels=3, size=16)
    torch.manual_seed(2)
    batched = PerImageJitter(v2.ColorJitter(0.4, 0.4, 0.4), pil_on_cpu=False)(images)
    torch.manual_seed(2)
    jitter = v2.ColorJitter(0.4, 0.4, 0.4)
    assert torch.equal(batched, torch.stack([jitter(image) for image in images]))


@pytest.mark.parametrize("policy", POLICIES)
def test_each_image_draws_what_torchvisions_policy_draws_for_it_alone(policy):
    """The batch, in one call, equals the v2 policy called image by image on the same
    generator: the same operations, magnitudes and kernels per image (torch's kernels, which
    an accelerator runs, grouped by operation)."""
    images = uint8_batch(48, channels=3, size=32)
    torch.manual_seed(5)
    batched = PerImagePolicy(V2_POLICY[policy](), pil_on_cpu=False)(images)
    torch.manual_seed(5)
    reference = V2_POLICY[policy]()
    one_by_one = torch.stack([reference(image) for image in images])
    assert torch.equal(batched, one_by_one)
    # ...which torchvision's policy on the whole batch is not: one draw for all images.
    torch.manual_seed(5)
    same = V2_POLICY[policy]()(images)
    changed = [not torch.equal(a, b) for a, b in zip(same, images, strict=True)]
    assert all(changed) or not any(changed)


def policy_stage(pre: Preprocess, augment: Augmentation, pil_on_cpu: bool) -> DeviceAugmentation:
    train, _ = device_stages(pre, augment)
    train.policy = PerImagePolicy(train.policy.policy, pil_on_cpu)
    return train


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_a_policy_on_the_cpu_gives_the_cpu_pipelines_numbers_for_the_same_draws(policy, channels):
    """On the CPU the device stage runs the policy with PIL's kernels, as the workers do."""
    pre = Preprocess(32, 37, IMAGENET_MEAN[:channels], IMAGENET_STD[:channels], channels)
    augment = Augmentation(policy, 0.5, 2, 9, view_of())
    cpu, device = after_the_crop(pre, augment), policy_stage(pre, augment, pil_on_cpu=True)
    image = smooth_image(channels)
    for seed in range(20):
        torch.manual_seed(seed)
        expected = cpu(as_pil(image))
        torch.manual_seed(seed)
        assert torch.equal(device(image[None])[0], expected), seed


@pytest.mark.parametrize("policy", POLICIES)
def test_a_policy_with_torchs_kernels_matches_the_cpu_pipeline_within_their_rounding(policy):
    """What an accelerator computes, for the same draws: the same operations at the same
    magnitudes; PIL's kernels (the CPU path) and torch's round and interpolate differently:
    a few grey levels of 255 at most, on average over the image, and most draws agree to
    the bit."""
    pre = Preprocess(32, 37, IMAGENET_MEAN, IMAGENET_STD, 3)
    augment = Augmentation(policy, 0.5, 2, 9, view_of())
    cpu, device = after_the_crop(pre, augment), policy_stage(pre, augment, pil_on_cpu=False)
    image, std = smooth_image(3), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    grey_levels = []
    for seed in range(30):
        torch.manual_seed(seed)
        expected = cpu(as_pil(image))
        torch.manual_seed(seed)
        out = device(image[None])[0]
        grey_levels.append(((out - expected).abs() * std * 255).mean().item())
    assert max(grey_levels) < 4
    assert sorted(grey_levels)[len(grey_levels) // 2] < 0.5


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_policies_and_erasing_run_on_uint8_batches_of_one_and_three_channels(policy, channels):
    pre = Preprocess(16, 18, IMAGENET_MEAN[:channels], IMAGENET_STD[:channels], channels)
    train, _ = device_stages(
        pre, Augmentation(policy, 0.5, 4, 30, view_of())
    )  # the strongest setting
    torch.manual_seed(0)
    out = train(uint8_batch(33, channels=channels, size=16))
    assert out.shape == (33, channels, 16, 16) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("pil_on_cpu", [True, False])
def test_copies_of_one_image_in_a_batch_are_augmented_independently(policy, pil_on_cpu):
    images = smooth_image(3).expand(64, -1, -1, -1)
    torch.manual_seed(2)
    out = PerImagePolicy(V2_POLICY[policy](), pil_on_cpu)(images)
    outcomes = {image.numpy().tobytes() for image in out}
    assert len(outcomes) > 20  # one op for the whole batch would give 1


def test_random_erasing_draws_a_box_per_image_and_erases_it_to_zero():
    images = torch.ones(64, 3, 16, 16)
    torch.manual_seed(1)
    erased = PerImageErasing(1.0)(images)
    zeros = (erased == 0).all(1)  # [batch, h, w]: erased pixels
    assert zeros.any((1, 2)).all()
    boxes = {
        tuple(z.nonzero().min(0).values.tolist() + z.nonzero().max(0).values.tolist())
        for z in zeros
    }
    assert len(boxes) > 50
    for z in zeros:  # one rectangle each
        rows, columns = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        assert z[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1].all()
        assert z.sum() == len(rows) * len(columns)
    torch.manual_seed(1)
    half = PerImageErasing(0.5)(images)
    assert 16 < (half == 0).any((1, 2, 3)).sum() < 48
