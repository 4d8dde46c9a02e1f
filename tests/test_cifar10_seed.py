"""`experiment=cifar10_seed` is the seed tutorial's recipe. CIFAR-10's loader verifies the
files' md5 sums, so its data cannot be generated honestly: a stand-in dataset takes its place
while the recipe builds its run, and the missing-data path is checked as the user meets it."""

import pytest
import torch
import torchvision
from PIL import Image
from torchvision.transforms import v2

from src.config.dataset_schema import TorchvisionDatasetConfig
from src.data import transforms
from src.data.torchvision_datasets import CIFAR10_NATIVE
from src.errors import GroupwiseError
from src.models.lenet import LeNet
from src.runner import Runner
from tests.conftest import view_of

TRAIN_IMAGES = 32  # batch 16: two optimizer steps per epoch


def stand_in_cifar10(requests: list[dict]) -> type:
    """torchvision's CIFAR10 as the recipe calls it: ten classes of 32x32 colour images."""

    class StandInCIFAR10(torch.utils.data.Dataset):
        def __init__(self, root, train, transform, download=False):
            requests.append({"train": train, "download": download})
            self.transform, self.size = transform, TRAIN_IMAGES if train else 16
            self.classes = [f"class {i}" for i in range(10)]
            self.targets = [i % 10 for i in range(self.size)]

        def __len__(self):
            return self.size

        def __getitem__(self, i):
            return self.transform(Image.new("RGB", (32, 32), (8 * i, 0, 0))), i % 10

    return StandInCIFAR10


def test_the_recipe_builds_the_seeds_model_optimizer_and_step_schedule(
    make_cfg, tmp_path, monkeypatch
):
    requests = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", stand_in_cifar10(requests))
    runner = Runner(make_cfg("experiment=cifar10_seed"), tmp_path)
    runner.setup()

    # CIFAR-10 is fetched on first use (its training images read again for validation, as
    # evaluated), batches of 16 with the seed's random crop; the test images are the test split.
    assert requests == [
        {"train": True, "download": True},
        {"train": True, "download": False},
        {"train": False, "download": True},
    ]
    assert len(runner.data.test_loader.dataset) == 16
    assert runner.data.train_loader.batch_size == 16
    crops = [t for t in runner.data.train_loader.dataset.dataset.transform.transforms if isinstance(t, v2.RandomCrop)]  # fmt: skip
    assert len(crops) == 1 and crops[0].padding == [4, 4, 4, 4]
    # The seed's Net for 3 channels and 10 classes, from its own initialisation.
    assert isinstance(runner.model, LeNet) and runner.model.fc3.out_features == 10
    assert runner.model.conv1.in_channels == 3
    assert not (tmp_path / "pretrained_report.json").exists()

    # SGD with momentum and weight decay (none on biases), fc3 at 10x the base lr.
    optimizer = runner.optimizer
    assert type(optimizer) is torch.optim.SGD
    assert [(g["name"], g["lr"], g["weight_decay"], g["momentum"]) for g in optimizer.param_groups] == [
        ("fc3", pytest.approx(0.01), 1e-4, 0.9),
        ("fc3", pytest.approx(0.01), 0.0, 0.9),
        ("default", 0.001, 1e-4, 0.9),
        ("default", 0.001, 0.0, 0.9),
    ]  # fmt: skip

    # StepLR(step_size=50, gamma=0.1) in epochs: over the run's epochs, one decay at epoch 50.
    lrs_per_epoch = []
    for _ in range(runner.cfg.trainer.max_epochs):
        lrs_per_epoch.append({g["name"]: g["lr"] for g in optimizer.param_groups})
        for _ in range(TRAIN_IMAGES // 16):
            optimizer.step()
            runner.scheduler.step()
    assert len(lrs_per_epoch) == 100
    for epoch, lrs in enumerate(lrs_per_epoch):
        base = 0.001 if epoch < 50 else 0.0001
        assert lrs == {"fc3": pytest.approx(10 * base), "default": pytest.approx(base)}, epoch


def test_the_seeds_cifar10_transforms():
    train, evaluation = transforms.train_and_eval_transforms(
        CIFAR10_NATIVE,
        "small",
        32,
        transforms.Augmentation("basic", 0.0, 2, 9, view_of(TorchvisionDatasetConfig)),
    )
    crop = [t for t in train.transforms if isinstance(t, v2.RandomCrop)]
    assert len(crop) == 1 and crop[0].size == (32, 32) and crop[0].padding == [4, 4, 4, 4]
    normalize = evaluation.transforms[-1]
    assert normalize.mean == [0.4948, 0.4857, 0.4468] and normalize.std == [0.2458, 0.2424, 0.2603]
    assert not any(isinstance(t, v2.Resize | v2.RandomCrop) for t in evaluation.transforms)


def test_without_the_data_the_recipe_says_how_to_get_it(make_cfg, tmp_path):
    cfg = make_cfg("experiment=cifar10_seed", "dataset.download=false", f"dataset.root={tmp_path}")
    with pytest.raises(GroupwiseError, match=r"CIFAR10 not found .* set dataset\.download=true"):
        Runner(cfg, tmp_path / "run").run()
