"""Exact resume: a run killed at any point and resumed ends bit-identical to an uninterrupted
one; checkpoints are atomic; a changed model or param groups is refused."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from src.runner import Runner
from src.training.checkpoints import MODEL, OPTIMIZER, PROGRESS, SCHEDULER, load_checkpoint
from tests.conftest import read_scalars, run_cli, run_python

pytestmark = pytest.mark.e2e  # whole runs, killed and resumed

# 5 digits x 8 shots, batch 8: 5 steps an epoch, 15 in all; a checkpoint every 3 steps
# lands mid-epoch (3, 6, 9, 12) as well as at epoch ends (5, 10, 15).
TINY = [
    "dataset.shots_per_class=8",
    "dataset.batch_size=8",
    "trainer.max_epochs=3",
    "trainer.checkpoint_every_n_steps=3",
    "trainer.log_every_n_steps=2",
    "scheduler=cosine",  # moves every step: a resume at the wrong step would show
]


def crash(mode: str, n: int, *overrides: str) -> subprocess.CompletedProcess:
    result = run_python("-m", "tests.crashing_run", mode, str(n), *overrides)
    assert result.returncode == -9, result.stderr  # killed by SIGKILL, not an error
    return result


def assert_same_state(expected: dict, actual: dict) -> None:
    for key, tensor in expected[MODEL].items():
        assert torch.equal(tensor, actual[MODEL][key]), key
    for index, state in expected[OPTIMIZER]["state"].items():
        for key, tensor in state.items():
            assert torch.equal(tensor, actual[OPTIMIZER]["state"][index][key]), (index, key)
    assert expected[OPTIMIZER]["param_groups"] == actual[OPTIMIZER]["param_groups"]
    assert expected[SCHEDULER] == actual[SCHEDULER]
    assert expected[PROGRESS] == actual[PROGRESS]


def resumed_from(step_checkpoint: Path, run_dir: Path, cfg) -> dict:
    """The last checkpoint of a run resumed (`cfg` has resume=true) in `run_dir` from a copy of
    an uninterrupted run's step checkpoint."""
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(step_checkpoint, run_dir / "checkpoints/last.pt")
    Runner(cfg, run_dir).run()
    return load_checkpoint(run_dir / "checkpoints/last.pt")


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
