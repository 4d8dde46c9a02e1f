"""Tiny training runs on the digits and what the tests check them with: the overrides that make
a run take seconds, a finished run to point commands at, and the bit-identical comparison of
a resumed run's last checkpoint with an uninterrupted one's."""

import shutil
import subprocess
from pathlib import Path

import torch

from src.runner import Runner
from src.training.checkpoints import MODEL, OPTIMIZER, PROGRESS, SCHEDULER, load_checkpoint
from tests.conftest import run_cli_here

# 5 digits x 8 shots, batch 8: 5 steps an epoch.
FEW_DIGITS = ["dataset.shots_per_class=8", "dataset.batch_size=8"]

# 15 steps in all; a checkpoint every 3 steps lands mid-epoch (3, 6, 9, 12) as well as at
# epoch ends (5, 10, 15).
TINY = [
    *FEW_DIGITS,
    "trainer.max_epochs=3",
    "trainer.checkpoint_every_n_steps=3",
    "trainer.log_every_n_steps=2",
    "scheduler=cosine",  # moves every step: a resume at the wrong step would show
]


def train_one_epoch(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """A finished run in `run_dir`: one epoch of FEW_DIGITS through the CLI, in this process."""
    return run_cli_here(*FEW_DIGITS, *overrides, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")


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
