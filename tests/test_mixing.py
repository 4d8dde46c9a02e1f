"""Mixup, CutMix and label smoothing: torchvision's mixes for the same draw, the loss a
training step takes, and a mixed run that resumes bit-identical."""

import pytest
import torch
from torch.nn import functional as F
from torchvision.transforms import v2

from src.data.mixing import batch_mixing
from src.errors import GroupwiseError
from src.runner import Runner
from src.training.checkpoints import load_checkpoint
from tests.runs import TINY, assert_same_state, resumed_from

CLASSES = 5


def batch(seed: int = 0, size: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(size, 3, 16, 16, generator=generator)
    return images, torch.randint(CLASSES, (size,), generator=generator)


@pytest.mark.parametrize(
    ("alphas", "reference"),
    [
        ((0.8, 0.0), lambda: v2.MixUp(alpha=0.8, num_classes=CLASSES)),
        ((0.0, 1.0), lambda: v2.CutMix(alpha=1.0, num_classes=CLASSES)),
        (
            (0.8, 1.0),
            lambda: v2.RandomChoice(
                [
                    v2.MixUp(alpha=0.8, num_classes=CLASSES),
                    v2.CutMix(alpha=1.0, num_classes=CLASSES),
                ],
                p=[0.7, 0.3],
            ),
        ),
    ],
)
def test_mixed_images_and_targets_equal_torchvisions_for_the_same_draw(alphas, reference):
    options = {"mixup_alpha": alphas[0], "cutmix_alpha": alphas[1], "mixup_switch_prob": 0.3}
    mixing = batch_mixing(CLASSES, options)
    expected_transform = reference()
    for seed in range(6):  # both branches of the switch, several draws of lambda and box
        images, labels = batch(seed)
        torch.manual_seed(seed)
        mixed, targets = mixing(images, labels)
        torch.manual_seed(seed)
        expected_images, expected_targets = expected_transform(images, labels)
        assert torch.equal(mixed, expected_images)
        assert torch.equal(targets, expected_targets)
        assert targets.shape == (7, CLASSES)
        torch.testing.assert_close(targets.sum(1), torch.ones(7))
        assert not torch.equal(mixed, images)  # something was mixed (odd batch: no pairs)


def test_no_alpha_no_mixing():
    assert batch_mixing(CLASSES, {"mixup_alpha": 0.0, "cutmix_alpha": 0.0}) is None
    assert batch_mixing(CLASSES, {"batch_size": 8}) is None  # a section without the options


def test_label_smoothing_on_mixed_targets_is_timms_smoothed_mix():
    """timm smooths each one-hot, then mixes; smoothing is linear, so torch's
    cross-entropy with `label_smoothing` on the mixed targets gives the same loss."""
    logits = torch.randn(4, CLASSES)
    a, b, lam, eps = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 0, 2, 1]), 0.3, 0.1

    def smoothed(y):
        return F.one_hot(y, CLASSES) * (1 - eps) + eps / CLASSES

    timm_targets = lam * smoothed(a) + (1 - lam) * smoothed(b)
    timm_loss = torch.sum(-timm_targets * F.log_softmax(logits, -1), -1).mean()
    mixed = lam * F.one_hot(a, CLASSES) + (1 - lam) * F.one_hot(b, CLASSES)
    ours = F.cross_entropy(logits, mixed.float(), label_smoothing=eps)
    torch.testing.assert_close(ours, timm_loss)


def test_the_options_are_checked_against_their_ranges(make_cfg, tmp_path):
    cfg = make_cfg(
        "dataset.mixup_alpha=-1", "dataset.mixup_switch_prob=2", "trainer.label_smoothing=1"
    )
    with pytest.raises(GroupwiseError) as err:
        Runner(cfg, tmp_path).check()
    keys = [problem.split("=")[0] for problem in err.value.problems]
    assert sorted(keys) == [
        "dataset.mixup_alpha",
        "dataset.mixup_switch_prob",
        "trainer.label_smoothing",
    ]


@pytest.mark.e2e
def test_a_mixed_smoothed_run_trains_on_soft_targets_and_resumes_bit_identical(
    make_cfg, tmp_path, every_checkpoint, monkeypatch
):
    overrides = [
        *TINY,
        "dataset.mixup_alpha=0.8",
        "dataset.cutmix_alpha=1.0",
        "trainer.label_smoothing=0.1",
        "trainer.checkpoint_every_n_steps=1",
    ]
    seen = []
    cross_entropy = F.cross_entropy

    def recording(logits, target, **kwargs):
        seen.append((target.shape, kwargs.get("label_smoothing")))
        return cross_entropy(logits, target, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", recording)
    Runner(make_cfg(*overrides), tmp_path / "whole").run()
    # Training steps see soft targets and the smoothing; validation scores hard labels, plainly.
    assert (torch.Size([8, 5]), 0.1) in seen
    assert all(len(shape) == 1 for shape, smoothing in seen if smoothing is None)
    final = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    for step in (2, 7):  # inside epochs 1 and 2: the mixes after the resume are the same
        cfg = make_cfg(*overrides, "resume=true")
        resumed = resumed_from(every_checkpoint[step], tmp_path / f"from{step}", cfg)
        assert_same_state(final, resumed)
