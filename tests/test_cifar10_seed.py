"""`experiment=cifar10_seed` is the seed tutorial's recipe. CIFAR-10's loader verifies the
files' md5 sums, so its data cannot be generated honestly: the recipe is checked as composed,
and the missing-data path as the user meets it."""

import pytest
from torchvision.transforms import v2

from src.data import transforms
from src.data.torchvision_datasets import CIFAR10_NATIVE
from src.errors import GroupwiseError
from src.runner import Runner


def test_the_experiment_is_the_seeds_recipe(make_cfg):
    cfg = make_cfg("experiment=cifar10_seed")
    assert cfg.model._target_ == "src.models.lenet.LeNet"
    assert (
        cfg.dataset._target_ == "src.data.torchvision_datasets.cifar10"
        and cfg.dataset.download is True
    )
    assert cfg.dataset.batch_size == 16 and cfg.dataset.transform_from is None
    assert cfg.optimizer._target_ == "torch.optim.SGD"
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.optimizer.weight_decay) == (
        0.001,
        0.9,
        1e-4,
    )
    assert dict(cfg.param_groups) == {"fc3": {"pattern": "^fc3\\.", "lr_mult": 10}}
    assert cfg.scheduler._target_ == "src.optim.schedulers.step"
    assert (cfg.scheduler.step_size, cfg.scheduler.gamma) == (50, 0.1)
    assert cfg.pretrained.path is None


def test_the_seeds_cifar10_transforms():
    train, evaluation = transforms.build(CIFAR10_NATIVE, "small", 32, augment=True)
    crop = [t for t in train.transforms if isinstance(t, v2.RandomCrop)]
    assert len(crop) == 1 and crop[0].size == (32, 32) and crop[0].padding == [4, 4, 4, 4]
    normalize = evaluation.transforms[-1]
    assert normalize.mean == [0.4948, 0.4857, 0.4468] and normalize.std == [0.2458, 0.2424, 0.2603]
    assert not any(isinstance(t, v2.Resize | v2.RandomCrop) for t in evaluation.transforms)


def test_without_the_data_the_recipe_says_how_to_get_it(make_cfg, tmp_path):
    cfg = make_cfg("experiment=cifar10_seed", "dataset.download=false", f"dataset.root={tmp_path}")
    with pytest.raises(GroupwiseError, match=r"CIFAR10 not found .* set dataset\.download=true"):
        Runner(cfg, tmp_path / "run").run()
