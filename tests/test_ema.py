"""Weight EMA: torch's AveragedModel and timm's ModelEmaV3 fed the same weights give the same
average; val_ema/* beside val/*; best.pt and the export follow the EMA when the monitor does;
a resumed EMA run ends bit-identical."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from src.errors import GroupwiseError
from src.runner import Runner
from src.training.checkpoints import EMA, load_checkpoint
from src.training.ema import WeightEma, ema_weights
from tests.conftest import read_scalars
from tests.runs import FEW_DIGITS, TINY, assert_same_state, resumed_from


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def train_steps(model: nn.Module, steps: int):
    """Yields after each SGD step (BatchNorm's running statistics move too)."""
    model(torch.rand(4, 3, 6, 6))  # materialise the lazy layer
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        model(torch.rand(4, 3, 6, 6, generator=generator)).square().mean().backward()
        optimizer.step()
        optimizer.zero_grad()
        yield


def test_the_ema_without_warmup_equals_averaged_models_ema():
    model = small_net()
    next(train_steps(model, 1), None)
    ours = WeightEma(model, decay=0.9, warmup=False)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for _ in train_steps(model, 12):
        ours.update(model)
        reference.update_parameters(model)
    expected = reference.state_dict()
    for key, value in ours.state_dict().items():
        if value.is_floating_point():
            assert torch.equal(value, expected[key]), key
    # Integer buffers (BatchNorm's step count) are the model's; AveragedModel blends them.
    assert ours.module[1].num_batches_tracked == model[1].num_batches_tracked


def test_the_warmed_up_ema_equals_timms_model_ema_v3():
    timm_ema = pytest.importorskip("timm.utils.model_ema")
    model = small_net()
    next(train_steps(model, 1), None)
    ours = WeightEma(model, decay=0.99, warmup=True)
    reference = timm_ema.ModelEmaV3(model, decay=0.99, use_warmup=True)
    for step, _ in enumerate(train_steps(model, 30), start=1):
        ours.update(model)
        reference.update(model, step=step)  # as timm's train.py counts its updates
    expected = reference.module.state_dict()
    for key, value in ema_weights(ours.state_dict()).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-6, atol=1e-7, msg=key)
    assert ours.decay_now() == pytest.approx(1 - 31 ** (-2 / 3))  # still warming up


def test_monitoring_the_ema_without_one_is_one_clear_line(make_cfg, tmp_path):
    with pytest.raises(GroupwiseError) as err:
        Runner(make_cfg("trainer.monitor=val_ema/acc"), tmp_path).check()
    (problem,) = err.value.problems
    assert problem.startswith("trainer.monitor=val_ema/acc: no weight EMA is kept; set trainer.")


@pytest.mark.e2e
def test_an_ema_of_decay_0_scores_as_the_model_at_every_epoch(make_cfg, tmp_path):
    Runner(make_cfg(*TINY, "trainer.ema_decay=0"), tmp_path).run()
    scalars = read_scalars(tmp_path)
    assert len(scalars["val_ema/acc"]) == 3
    assert scalars["val_ema/acc"] == scalars["val/acc"]
    assert scalars["val_ema/loss"] == scalars["val/loss"]


@pytest.mark.e2e
def test_best_and_export_follow_the_ema_when_the_monitor_does(make_cfg, tmp_path):
    overrides = [*TINY, "trainer.ema_decay=0.9", "trainer.monitor=val_ema/loss"]
    Runner(make_cfg(*overrides), tmp_path).run()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["best"]["metric"] == "val_ema/loss"
    assert metrics["best"]["value"] <= metrics["val_ema/loss"]  # the last epoch's, or lower
    best = load_checkpoint(tmp_path / "checkpoints/best.pt")
    assert best[EMA]  # the EMA is checkpointed
    exported = load_file(tmp_path / "export/model.safetensors")
    for key, value in ema_weights(best[EMA]).items():
        assert torch.equal(exported[key], value), key
    assert any(not torch.equal(exported[key], best["model"][key]) for key in exported)
    origin = json.loads((tmp_path / "export/model.json").read_text())["weights"]
    assert origin["weights"] == "ema"


@pytest.mark.e2e
def test_a_resumed_ema_run_ends_bit_identical(make_cfg, tmp_path, every_checkpoint):
    overrides = [*TINY, "trainer.ema_decay=0.95", "trainer.checkpoint_every_n_steps=1"]
    Runner(make_cfg(*overrides), tmp_path / "whole").run()
    final = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    for step in (2, 7):
        cfg = make_cfg(*overrides, "resume=true")
        resumed = resumed_from(every_checkpoint[step], tmp_path / f"from{step}", cfg)
        assert_same_state(final, resumed)
        assert final[EMA].keys() == resumed[EMA].keys()
        for key, value in final[EMA].items():
            assert torch.equal(value, resumed[EMA][key]), key


@pytest.mark.e2e
def test_an_ema_set_at_resume_starts_from_the_resumed_weights(make_cfg, tmp_path):
    short = [*FEW_DIGITS, "trainer.max_epochs=1"]
    Runner(make_cfg(*short), tmp_path).run()
    (tmp_path / "metrics.json").unlink()  # as if stopped before its end
    longer = [*FEW_DIGITS, "trainer.max_epochs=2", "trainer.ema_decay=0.5", "resume=true"]
    Runner(make_cfg(*longer), tmp_path).run()
    assert [step for step, _ in read_scalars(tmp_path)["val_ema/acc"]] == [10]  # epoch 2 only
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")[EMA]
