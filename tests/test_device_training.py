"""The device stage composed with the trainer: uint8 batches from the loaders, the policy,
random erasing and scaling on the device, then Mixup/CutMix; trained, evaluated,
checkpointed and resumed bit-identical (a data source built by hand, in memory)."""

import pytest
import torch
from torch.utils.data import TensorDataset

import src.runner
from src.data.device_augmentation import device_stages
from src.data.loading import Data, Loading
from src.data.transforms import Augmentation, input_description
from src.models.contract import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from src.runner import Runner
from src.training.checkpoints import load_checkpoint
from tests.conftest import read_scalars, view_of
from tests.runs import assert_same_state, resumed_from

pytestmark = pytest.mark.e2e  # whole runs

PRE = Preprocess(32, 36, IMAGENET_MEAN, IMAGENET_STD, 3)
OVERRIDES = [
    "pretrained=none",
    "dataset.batch_size=4",
    "dataset.mixup_alpha=0.8",
    "dataset.cutmix_alpha=1.0",
    "dataset.mixup_switch_prob=0.5",
    "trainer.max_epochs=2",
    "trainer.checkpoint_every_n_steps=1",
    "scheduler=cosine",
]


def uint8_images(n: int, seed: int) -> TensorDataset:
    """3 classes, each a colour plus noise, as uint8 [3, 32, 32] images already cropped."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    colours = torch.tensor([[200, 40, 40], [40, 200, 40], [40, 40, 200]])[labels]
    noise = torch.randint(-40, 40, (n, 3, 32, 32), generator=generator)
    images = (colours.view(n, 3, 1, 1) + noise).clamp(0, 255).to(torch.uint8)
    return TensorDataset(images, labels)


def in_memory_data(seen: list) -> Data:
    """What a cached image folder hands the run: uint8 loaders and the device stages (the
    stages wrapped to record what they are given)."""
    train_loader, val_loader = Loading(4, 0, 0, False, False).loaders(
        uint8_images(24, 0), uint8_images(12, 1)
    )
    train, evaluation = device_stages(PRE, Augmentation("randaugment", 0.5, 2, 9, view_of()))

    def recorded(stage, name):
        def run(images):
            seen.append((name, images.dtype))
            return stage(images)

        return run

    return Data(
        train_loader,
        val_loader,
        3,
        3,
        ["red", "green", "blue"],
        input=input_description(PRE, "photo"),
        train_on_device=recorded(train, "train"),
        eval_on_device=recorded(evaluation, "eval"),
    )


def test_uint8_batches_train_through_policy_erasing_and_mixing_and_resume_bit_identical(
    make_cfg, tmp_path, every_checkpoint, monkeypatch
):
    seen = []
    monkeypatch.setattr(src.runner, "build_data", lambda *args: in_memory_data(seen))
    mixed = []
    mixing = src.runner.mixing.batch_mixing

    def recording_mixing(num_classes, dataset):
        mix = mixing(num_classes, dataset)

        def run(images, labels):
            mixed.append(images.dtype)
            return mix(images, labels)

        return run

    monkeypatch.setattr(src.runner.mixing, "batch_mixing", recording_mixing)
    Runner(make_cfg(*OVERRIDES), tmp_path / "whole").run()
    # 6 training batches an epoch, then 3 validation batches; mixing after the device stage.
    assert seen[:7] == [("train", torch.uint8)] * 6 + [("eval", torch.uint8)]
    assert mixed == [torch.float32] * 12
    scalars = read_scalars(tmp_path / "whole")
    assert [step for step, _ in scalars["val/acc"]] == [6, 12]
    final = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    for step in (3, 8):  # inside epochs 1 and 2: the augmentations after the resume are the same
        cfg = make_cfg(*OVERRIDES, "resume=true")
        resumed = resumed_from(every_checkpoint[step], tmp_path / f"from{step}", cfg)
        assert_same_state(final, resumed)
