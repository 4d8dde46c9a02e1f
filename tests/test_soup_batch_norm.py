"""Batch-norm statistics of a soup: recomputed as one plain pass over the training batches
(the rest of the model as evaluated), on a small BN model and on a tiny resnet18 sweep."""

from pathlib import Path

import pytest
import torch
from torch import nn

from src.soups import batch_norm, ingredients, recipes
from src.soups.tasting import Tasting
from src.trained_run import open_run
from tests.conftest import run_cli


def small_bn_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4, momentum=0.1),
        nn.Dropout(0.5),  # in eval mode during the pass: else the next layer's input is noise
        nn.Conv2d(4, 3, 3),
        nn.BatchNorm2d(3, momentum=0.1),
    )


def plain_statistics(model: nn.Sequential, batches: list[torch.Tensor]) -> list[tuple]:
    """Each BN layer's expected running mean and variance, by hand: every batch's mean and
    unbiased variance of the layer's input (each batch normalised by its own statistics, as in
    training; dropout off), averaged with equal weight over the batches."""
    expected = []
    for index, layer in enumerate(model):
        if not isinstance(layer, nn.BatchNorm2d):
            continue
        means, variances = [], []
        for images in batches:
            x = images
            for earlier in model[:index]:
                if isinstance(earlier, nn.BatchNorm2d):
                    mean = x.mean((0, 2, 3), keepdim=True)
                    var = x.var((0, 2, 3), unbiased=False, keepdim=True)
                    x = (x - mean) / torch.sqrt(var + earlier.eps)
                    x = x * earlier.weight.view(1, -1, 1, 1) + earlier.bias.view(1, -1, 1, 1)
                elif not isinstance(earlier, nn.Dropout):
                    x = earlier(x)
            means.append(x.mean((0, 2, 3)))
            variances.append(x.var((0, 2, 3), unbiased=True))
        expected.append((torch.stack(means).mean(0), torch.stack(variances).mean(0)))
    return expected


@torch.no_grad()
def test_recompute_takes_one_plain_pass_over_the_training_batches():
    model = small_bn_model()
    for norm in (model[1], model[4]):  # stale statistics, as an average of models has
        norm.running_mean.fill_(5.0)
        norm.running_var.fill_(9.0)
    batches = [torch.randn(6, 1, 8, 8) * 2 + 1 for _ in range(3)]
    loader = [(images, torch.zeros(len(images))) for images in batches]

    seen = batch_norm.recompute(model, loader, torch.device("cpu"))

    assert seen == 3
    assert not model.training and not any(module.training for module in model.modules())
    assert model[1].momentum == 0.1 and model[4].momentum == 0.1  # the model's own, back
    for norm, (mean, var) in zip(
        (model[1], model[4]), plain_statistics(model, batches), strict=True
    ):
        torch.testing.assert_close(norm.running_mean, mean)
        torch.testing.assert_close(norm.running_var, var)


def test_statistics_are_taken_on_the_training_view_turned_off():
    dataset = {"_target_": "x", "augment": "basic", "train_crop": "resized", "hflip": 0.5}
    plain = batch_norm.unaugmented(dataset)
    assert plain == {"_target_": "x", "augment": "none", "train_crop": "none", "hflip": 0.0}
    assert "vflip" not in plain  # only the options the dataset kind has
    assert dataset["augment"] == "basic"  # the run's own section is left as it is


def test_a_model_without_batch_norm_is_told_apart():
    assert batch_norm.has_batch_norm(small_bn_model())
    assert not batch_norm.has_batch_norm(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))


@pytest.fixture(scope="module")
def resnet_jobs(tmp_path_factory) -> list[Path]:
    """Two ResNet-18 jobs (seeds 0, 1) on one split of 12 digits: one training batch of 16."""
    sweep_dir = tmp_path_factory.mktemp("resnet_sweep")
    run_cli(
        "-m", "model=resnet18", "pretrained=none", "dataset.image_size=32", "seed=0,1",
        "dataset.split_seed=0", "dataset.shots_per_class=4", "dataset.classes=[5,6,7]",
        "dataset.batch_size=16", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    return [sweep_dir / "seed=0", sweep_dir / "seed=1"]


def one_batch_statistics(run_dir: Path, weights: dict) -> dict[str, tuple]:
    """Each BN layer's mean and unbiased variance of its input when `weights` see the run's
    one training batch in train mode: what a plain pass over it leaves as running stats."""
    run = open_run(str(run_dir), "best")
    data = run.data()
    model = run.model(data.in_channels, data.num_classes, torch.device("cpu"))
    model.load_state_dict(weights)
    seen = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            module.register_forward_pre_hook(
                lambda _, inputs, name=name: seen.__setitem__(name, inputs[0])
            )
    (images, _), *rest = list(data.train_loader)
    assert not rest, "the test needs the training split in one batch"
    with torch.no_grad():
        model.train()(images)
    return {name: (x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=True)) for name, x in seen.items()}


@pytest.mark.e2e
def test_a_soup_of_resnets_gets_statistics_of_its_own_and_one_ingredient_keeps_its(resnet_jobs):
    jobs = [ingredients.read(job) for job in resnet_jobs]
    tasting = Tasting(open_run(str(resnet_jobs[0]), "best"), torch.device("cpu"), None)

    soup, _, record = recipes.uniform(jobs, tasting)

    assert record["batch_norm"] == "recomputed on 1 training batches, without augmentation"
    states = [torch.load(job.checkpoint, weights_only=True)["model"] for job in jobs]
    averaged = {
        key: (states[0][key] + states[1][key]) / 2 if value.is_floating_point() else value
        for key, value in states[0].items()
    }
    expected = one_batch_statistics(resnet_jobs[0], averaged)
    assert len(expected) == 20  # every BN layer of a ResNet-18
    for name, (mean, var) in expected.items():
        torch.testing.assert_close(soup[f"{name}.running_mean"], mean)
        torch.testing.assert_close(soup[f"{name}.running_var"], var)
        stale = averaged[f"{name}.running_var"]
        assert not torch.allclose(soup[f"{name}.running_var"], stale)  # not the average's

    alone, _, record = recipes.uniform(jobs[:1], tasting)
    assert record["batch_norm"] == "the one ingredient's own"
    assert all(torch.equal(alone[key], value) for key, value in states[0].items())
