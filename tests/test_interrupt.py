"""Ctrl-C (SIGINT) and SIGTERM (a scheduler's preemption) during training, sent to a real run in
its own process mid-epoch, and a checkpoint that finds the disk full: one line (not labelled
an error) with where training stood, the checkpoint resume=true continues from and the command
that does it; exit 130, 143, 74; no traceback; no half-written file. The command it gives
finishes the run bit-identical to an uninterrupted one. Ctrl-C once or twice at any moment of
start-up, and a reader that closes the pipe, are one line or none in every command."""

import json
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from src.training.checkpoints import load_checkpoint
from tests.conftest import ROOT, read_scalars, run_cli, run_python, run_with_reader_gone
from tests.runs import FEW_DIGITS, TINY, assert_same_state

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
    assert (run_dir / "run.log").read_text().splitlines()[-1] == lines[0]  # the run's own log
    return lines[0]


def test_ctrl_c_mid_epoch_says_how_to_resume_and_resuming_ends_bit_identical(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_cli(*TINY, f"hydra.run.dir={whole}")

    # After step 4 of 15 (5 an epoch): the last checkpoint is step 3's, 3 batches into epoch 1.
    line = interrupt(4, split)
    checkpoint = split / "checkpoints" / "last.pt"
    found = re.fullmatch(
        r"groupwise: interrupted by Ctrl-C in epoch 1, at step (\d+); resume=true continues from "
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


def resumed_as_told(line: str, run_dir) -> None:
    """The command at the end of `line`, run as typed: it continues the run in `run_dir`."""
    command = shlex.split(line.rpartition("python -m src.run ")[2])
    assert command[-2:] == [f"hydra.run.dir={run_dir}", "resume=true"], line
    run_cli(*command)


def test_a_preempted_run_sigterm_then_requeued_resume_ends_bit_identical(tmp_path):
    """A scheduler's preemption: SIGTERM to the real process mid-epoch (after step 4 of 15,
    while it pauses), exit 143 and one line; the requeued `resume=true` it gives finishes the run
    exactly as an uninterrupted one."""
    whole, preempted = tmp_path / "whole", tmp_path / "preempted"
    run_cli(*TINY, f"hydra.run.dir={whole}")
    paused = paused_after_step_4(preempted)
    wait_for(preempted / "checkpoints" / "last.pt", paused)
    time.sleep(1)  # step 4 done, asleep
    paused.send_signal(signal.SIGTERM)
    stderr = paused.communicate(timeout=120)[1]
    assert paused.returncode == 143, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupwise: interrupted by SIGTERM in epoch 1")
    assert not list(preempted.rglob("*.tmp"))
    # The reason is in the run's own log too: a scheduler's console may be gone.
    assert (preempted / "run.log").read_text().splitlines()[-1] == lines[0]
    resumed_as_told(lines[0], preempted)
    assert_same_state(
        load_checkpoint(whole / "checkpoints/last.pt"),
        load_checkpoint(preempted / "checkpoints/last.pt"),
    )


def paused_after_step_4(run_dir) -> subprocess.Popen:
    """A real run of TINY into `run_dir`, asleep for 60 s after its 4th step (to be signalled
    or to hold its dir); its stderr piped."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.crashing_run",
            "pause",
            "4",
            *TINY,
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} never came"
        time.sleep(0.1)


def test_a_checkpoint_on_a_full_disk_keeps_the_last_one_and_says_how_to_resume(tmp_path):
    """The 3rd checkpoint's write fails halfway with ENOSPC (torch.save monkeypatched in the
    real CLI's process, tests/crashing_run.py): exit 74, one line naming the file, the bytes
    and the resume command; the 2nd checkpoint kept, no temporary file; resuming as told ends
    bit-identical to an uninterrupted run."""
    whole, full = tmp_path / "whole", tmp_path / "full"
    run_cli(*TINY, f"hydra.run.dir={whole}")
    result = run_python("-m", "tests.crashing_run", "full", "3", *TINY, f"hydra.run.dir={full}")
    assert result.returncode == 74, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stdout, result.stderr
    assert re.match(
        rf"groupwise: error: could not write {re.escape(str(full / 'checkpoints/last.pt'))} "
        r"\(No space left on device; about [\d,]+ bytes to write\); .* \(epoch 1 done, step 5\) "
        "is kept: free space, then python -m src.run ",
        lines[0],
    ), lines[0]
    assert not list(full.rglob("*.tmp"))
    resumed_as_told(lines[0], full)
    assert_same_state(
        load_checkpoint(whole / "checkpoints/last.pt"),
        load_checkpoint(full / "checkpoints/last.pt"),
    )


@pytest.mark.parametrize("delay", [0.2, 1.0, 2.5])
@pytest.mark.parametrize("times", [1, 2])
def test_ctrl_c_during_start_up_once_or_twice_is_one_line(tmp_path, delay, times):
    """SIGINT at a moment of start-up (Python's imports, Hydra's composing, torch's import, the
    run's checks), once or twice 50 ms apart: at most one line, never a traceback, exit 130
    (or death by SIGINT itself, before Python has its handler)."""
    started = subprocess.Popen(
        [sys.executable, "-m", "src.run", *FEW_DIGITS, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    for _ in range(times):
        started.send_signal(signal.SIGINT)
        time.sleep(0.05)
    stdout, stderr = started.communicate(timeout=120)
    assert started.returncode in (130, -signal.SIGINT), stderr
    assert "Traceback" not in stdout + stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) <= 1 and all(x.startswith("groupwise: interrupted by Ctrl-C") for x in lines)


@pytest.mark.parametrize(
    ("module", "command"),
    [
        ("numpy", ["src.run", *FEW_DIGITS]),  # imported by torch's C code, which clears errors
        ("torch._dynamo", ["src.run", *FEW_DIGITS]),
        ("numpy", ["src.soup", "sweep_dir=no_such_sweep"]),
        ("torch._C", ["src.predict", "run_dir=no_such_run", "inputs=."]),
    ],
)
def test_ctrl_c_while_torch_or_numpy_is_imported_is_never_lost(tmp_path, module, command):
    """Ctrl-C sent the moment `module` starts to be imported (tests/interrupted_import.py): a
    library that swallows it (torch imports numpy in C and clears any error) must not make the
    command go on as if never stopped, or fail later on a half-imported numpy."""
    if command[0] == "src.run":
        command = [*command, f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_python("-m", "tests.interrupted_import", module, *command)
    assert result.returncode == 130, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupwise: interrupted by Ctrl-C"), lines
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["src.run", "-h"],
        ["src.cache", "--help"],
        ["src.evaluate", "--help"],
        ["src.predict", "--help"],
    ],
)
def test_a_reader_that_closes_the_pipe_is_no_error(command):
    """`python -m src.run -h | head -3`: the reader gone before the help is printed."""
    code, stderr = run_with_reader_gone("-m", *command, timeout=60)
    assert code == 0, stderr
    assert stderr == ""
