"""Ctrl-C (SIGINT) during training, sent to a real run in its own process mid-epoch: one line
with where training stood, the checkpoint resume=true continues from and the command that
does it; exit 130; no traceback; no half-written file. The command it gives finishes the run
bit-identical to an uninterrupted one."""

import json
import re
import shlex

import pytest

from src.training.checkpoints import load_checkpoint
from tests.conftest import read_scalars, run_cli, run_python
from tests.runs import TINY, assert_same_state

pytestmark = pytest.mark.e2e  # whole runs, interrupted and resumed


def interrupt(after_step: int, run_dir) -> str:
    """The run stopped by SIGINT right after its `after_step`-th step: its one stderr line."""
    result = run_python(
        "-m", "tests.crashing_run", "sigint", str(after_step), *TINY, f"hydra.run.dir={run_dir}"
    )
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / "metrics.json").exists()
    return lines[0]


def test_ctrl_c_mid_epoch_says_how_to_resume_and_resuming_ends_bit_identical(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_cli(*TINY, f"hydra.run.dir={whole}")

    # After step 4 of 15 (5 an epoch): the last checkpoint is step 3's, 3 batches into epoch 1.
    line = interrupt(4, split)
    checkpoint = split / "checkpoints" / "last.pt"
    found = re.fullmatch(
        r"groupwise: error: interrupted in epoch 1, at step (\d+); resume=true continues from "
        rf"{re.escape(str(checkpoint))} \(epoch 0 done and 3 batches of epoch 1, step 3\): "
        r"(python -m src\.run .*)",
        line,
    )
    assert found, line
    assert int(found.group(1)) in (3, 4)
    command = shlex.split(found.group(2))
    assert command[-2:] == [f"hydra.run.dir={split}", "resume=true"]

    run_cli(*command[3:])  # the command the line gives, as typed
    assert_same_state(load_checkpoint(whole / "checkpoints/last.pt"), load_checkpoint(checkpoint))
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (whole, split)]
    assert metrics[0] == metrics[1]
    assert read_scalars(split)["train/loss"] == read_scalars(whole)["train/loss"]


def test_ctrl_c_before_the_first_checkpoint_says_there_is_none(tmp_path):
    line = interrupt(1, tmp_path / "run")
    assert "no checkpoint had been written yet, so there is nothing to resume" in line
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
