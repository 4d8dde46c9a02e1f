"""Exact resume: a run killed at any point and resumed ends bit-identical to an uninterrupted
one; checkpoints are atomic; a changed model or param groups is refused."""

import json
import subprocess

import pytest
import torch
from torch import nn

from src.runner import Runner
from src.training.checkpoints import PROGRESS, load_checkpoint
from tests.conftest import read_scalars, run_cli, run_python
from tests.runs import TINY, assert_same_state, resumed_from

pytestmark = pytest.mark.e2e  # whole runs, killed and resumed


def crash(mode: str, n: int, *overrides: str) -> subprocess.CompletedProcess:
    result = run_python("-m", "tests.crashing_run", mode, str(n), *overrides)
    assert result.returncode == -9, result.stderr  # killed by SIGKILL, not an error
    return result


def test_a_run_killed_at_several_points_and_resumed_ends_bit_identical(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_cli(*TINY, f"hydra.run.dir={whole}")

    # Killed right after step 5 of 15 (0-based step 4, mid-epoch): the last checkpoint is
    # the one after step 3, three batches into epoch 1.
    crash("step", 5, *TINY, f"hydra.run.dir={split}")
    state = load_checkpoint(split / "checkpoints/last.pt")
    assert (state[PROGRESS]["global_step"], state[PROGRESS]["batches_in_epoch"]) == (3, 3)

    # Resumed, and killed halfway through its 2nd checkpoint write (after step 6): the
    # previous checkpoint (end of epoch 1, step 5) stays whole and loadable.
    crash("write", 2, *TINY, "resume=true", f"hydra.run.dir={split}")
    partial = split / "checkpoints/last.pt.tmp"
    assert 0 < partial.stat().st_size < (split / "checkpoints/last.pt").stat().st_size
    with pytest.raises(RuntimeError):
        torch.load(partial, weights_only=True)
    state = load_checkpoint(split / "checkpoints/last.pt")
    assert (state[PROGRESS]["epoch"], state[PROGRESS]["global_step"]) == (1, 5)

    # Resumed, and killed after 6 more steps (step 11, mid-epoch 3; last checkpoint step 10).
    crash("step", 6, *TINY, "resume=true", f"hydra.run.dir={split}")
    state = load_checkpoint(split / "checkpoints/last.pt")
    assert (state[PROGRESS]["epoch"], state[PROGRESS]["global_step"]) == (2, 10)

    run_cli(*TINY, "resume=true", f"hydra.run.dir={split}")
    assert_same_state(
        load_checkpoint(whole / "checkpoints/last.pt"),
        load_checkpoint(split / "checkpoints/last.pt"),
    )
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (whole, split)]
    assert metrics[0] == metrics[1]
    # TensorBoard shows each step once, as an uninterrupted run would.
    assert read_scalars(split)["train/loss"] == read_scalars(whole)["train/loss"]


class DropoutNet(nn.Module):
    """A tiny model that draws from torch's RNG every step, as dropout does."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.AvgPool2d(4), nn.Flatten(), nn.Linear(in_channels * 64, 32), nn.ReLU()
        )
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.dropout(self.body(x)))


def test_resuming_from_any_step_checkpoint_restores_dropout_rng_and_data_order(
    make_cfg, tmp_path, every_checkpoint
):
    overrides = [
        *TINY,
        "trainer.checkpoint_every_n_steps=1",
        "model._target_=tests.test_resume.DropoutNet",
        "pretrained=none",
    ]
    Runner(make_cfg(*overrides), tmp_path / "whole").run()
    final = load_checkpoint(tmp_path / "whole/checkpoints/last.pt")
    assert sorted(every_checkpoint) == list(range(1, 16))
    for step in (2, 7, 13):  # inside epochs 1, 2 and 3
        cfg = make_cfg(*overrides, "resume=true")
        resumed = resumed_from(every_checkpoint[step], tmp_path / f"from{step}", cfg)
        assert_same_state(final, resumed)
