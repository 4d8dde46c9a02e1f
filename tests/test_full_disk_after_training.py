"""A full disk once training has finished, in a real CLI process (tests/crashing_run.py makes
the write fail with ENOSPC, as the OS fails it): the export, metrics.json, TensorBoard's event
file at close, and `src.evaluate`'s report. One line naming the file and the reason, exit 74,
no traceback, no half-written file; a run's checkpoints kept, and the line says so and how to
go on."""

import re
import shlex

import pytest

from src.training.checkpoints import PROGRESS, load_checkpoint
from tests.conftest import run_cli, run_python
from tests.runs import FEW_DIGITS

pytestmark = pytest.mark.e2e  # whole runs

RUN = [*FEW_DIGITS, "trainer.max_epochs=2"]  # 10 steps


def one_line(result) -> str:
    assert result.returncode == 74, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("mode", "written"),
    [
        (["full-file", "model.json"], "export"),
        (["full-file", "metrics.json"], "metrics.json"),
        (["full-events", "0"], "events.out.tfevents.*"),
    ],
    ids=["export", "metrics", "events"],
)
def test_a_write_after_training_on_a_full_disk_is_one_line_and_keeps_the_checkpoints(
    tmp_path, mode, written
):
    run_dir = tmp_path / "run"
    result = run_python("-m", "tests.crashing_run", *mode, *RUN, f"hydra.run.dir={run_dir}")
    line = one_line(result)
    [path] = run_dir.glob(written) if "*" in written else [run_dir / written]
    checkpoints = run_dir / "checkpoints"
    found = re.fullmatch(
        rf"groupwise: error: could not write {re.escape(str(path))} \(No space left on device\) "
        rf"after training finished; the checkpoints are kept \({re.escape(str(checkpoints))}: "
        r"best\.pt, last\.pt; epoch 2, step 10\): free space, then (python -m src\.run .*) "
        "trains one epoch more and writes the rest",
        line,
    )
    assert found, line
    assert load_checkpoint(checkpoints / "last.pt")[PROGRESS]["epoch"] == 2
    # Not read as finished, and nothing half-written: no metrics.json, no temporary file.
    assert not (run_dir / "metrics.json").exists() and not list(run_dir.rglob("*.tmp"))
    if written == "export":
        assert not (run_dir / "export").exists()
    command = shlex.split(found.group(1))
    assert command[-3:] == ["trainer.max_epochs=3", f"hydra.run.dir={run_dir}", "resume=true"]
    if written == "metrics.json":  # once there is room, the command given finishes the run
        run_cli(*command[3:])
        assert (run_dir / "metrics.json").is_file() and (run_dir / "export").is_dir()
        assert load_checkpoint(checkpoints / "last.pt")[PROGRESS]["epoch"] == 3


def test_evaluate_on_a_full_disk_is_one_line_and_writes_no_half_report(tmp_path):
    run_dir = tmp_path / "run"
    run_cli(*RUN, f"hydra.run.dir={run_dir}")
    evaluate = ["src.evaluate", f"run_dir={run_dir}", "split=val"]
    report = run_dir / "eval_val.json"

    result = run_python("-m", "tests.crashing_run", "full-file", "eval_val", *evaluate)
    assert one_line(result) == (
        f"groupwise: error: could not write {report} (No space left on device); pass "
        "output=<file>.json where there is room"
    )
    assert not report.exists() and not list(run_dir.glob("*.tmp"))

    result = run_python("-m", "tests.crashing_run", "full-events", "0", *evaluate)
    line = one_line(result)
    assert re.fullmatch(
        rf"groupwise: error: could not write {re.escape(str(run_dir))}/events\.out\.tfevents\.\S+ "
        rf"\(No space left on device\); the report {re.escape(str(report))} is written; only "
        "TensorBoard lacks it",
        line,
    ), line
    assert report.is_file()


def test_an_event_file_write_failing_in_tensorboards_thread_is_one_line_no_thread_traceback(
    tmp_path,
):
    """TensorBoard writes in a thread of its own: a full disk there would print that thread's
    traceback before the run's own line."""
    run_dir = tmp_path / "run"
    result = run_python(
        "-m", "tests.crashing_run", "full-events-write", "5", *RUN, f"hydra.run.dir={run_dir}"
    )
    line = one_line(result)
    assert "Exception in thread" not in result.stderr
    assert (
        line.startswith(f"groupwise: error: could not write {run_dir}/events.out.tfevents.")
        and "(No space left on device)" in line
    ), line
