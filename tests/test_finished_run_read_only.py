"""A finished run is read-only to every command but `resume=true` (issue 20): each refused
command of the bad-input catalogue, each dry run and each refused resume, evaluation and
prediction, pointed at a finished run, leaves every byte of every file as it was."""

import errno
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from src import evaluate, predict
from tests.bad_inputs import CASES, run_all_in_one_process
from tests.conftest import (
    assert_one_clear_line,
    run_cli,
    run_cli_here,
    run_python,
    run_with_reader_gone,
)
from tests.runs import FEW_DIGITS, TINY, train_one_epoch
from tests.test_interrupt import paused_after_step_4, wait_for

pytestmark = pytest.mark.e2e  # every case runs the CLI

# Each into the finished run: a dry run (its reports, but nothing written), a new run
# (refused: it holds a trained run), and resumes refused for what they ask.
COMMANDS = [
    (["dry_run=true", "param_groups=fc3_boost"], 0, None),
    (["dry_run=true", "resume=true"], 0, None),
    (["trainer.max_epochs=2"], 2, "already holds a trained run"),
    (
        ["resume=true", "trainer.max_epochs=1"],
        2,
        "the run has trained 1 epochs already, and trainer.max_epochs=1",
    ),
    (["resume=true", "param_groups=fc3_boost", "trainer.max_epochs=2"], 2, "config differs"),
]


def hashes(run_dir) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = train_one_epoch(run_dir)
    (run_dir.parent / "console.txt").write_text(result.stdout)
    evaluate.main([f"run_dir={run_dir}", "split=val"])
    return run_dir


def test_a_run_says_where_it_is_and_run_log_holds_what_the_console_showed(finished_run):
    console = (finished_run.parent / "console.txt").read_text()
    assert console.splitlines() == (finished_run / "run.log").read_text().splitlines()
    for line in (
        f"run dir: {finished_run}",
        "epoch 1/1  train/loss ",
        f"finished: {finished_run}",
        f"  evaluate:    python -m src.evaluate run_dir={finished_run}\n",
        f"  tensorboard: tensorboard --logdir {finished_run}",
    ):
        assert line in console, line


def test_no_refused_command_or_dry_run_changes_a_byte_of_a_finished_run(finished_run, tmp_path):
    before = hashes(finished_run)
    assert {".hydra/config.yaml", "run.log", "param_groups.json", "eval_val.json"} <= set(before)
    for overrides, code, expected in COMMANDS:
        result = run_cli_here(*FEW_DIGITS, *overrides, f"hydra.run.dir={finished_run}", check=False)
        assert result.returncode == code, (overrides, result.stderr)
        if expected:
            assert_one_clear_line(result, expected)
        else:
            assert "nothing written into" in result.stdout
        assert hashes(finished_run) == before, overrides
    names = [n for n in CASES if n not in ("run-dir-is-a-file", "no-cuda")]
    results = run_all_in_one_process(tmp_path, names, run_dir=finished_run)
    assert all(r.returncode == 2 for r in results.values()), {
        n: r.stderr for n, r in results.items() if r.returncode != 2
    }
    assert hashes(finished_run) == before


def test_evaluate_and_predict_never_overwrite_beside_a_finished_run(finished_run, tmp_path, capsys):
    before = hashes(finished_run)
    for main, args, expected in (
        (evaluate.main, ["split=val"], "eval_val.json: already exists (nothing was overwritten)"),
        (predict.main, [f"inputs={tmp_path / 'nope'}"], "no such file or directory"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main([f"run_dir={finished_run}", *args])
        assert exit_.value.code == 2, expected
        assert expected in capsys.readouterr().err
    (tmp_path / "not_images").mkdir()
    (tmp_path / "not_images" / "a.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit) as exit_:
        predict.main([f"run_dir={finished_run}", f"inputs={tmp_path / 'not_images'}"])
    assert exit_.value.code == 2
    assert "none of its 1 file(s) could be read as an image" in capsys.readouterr().err
    assert hashes(finished_run) == before


def test_evaluate_into_a_closed_pipe_still_writes_its_report(finished_run, tmp_path):
    """`python -m src.evaluate ... | head -4`: the reader gone before the table is printed; with
    output= elsewhere, nothing is written into the run dir (no TensorBoard events either)."""
    before = hashes(finished_run)
    output = tmp_path / "eval.json"
    code, stderr = run_with_reader_gone(
        "-m", "src.evaluate", f"run_dir={finished_run}", f"output={output}", timeout=300
    )
    assert code == 0, stderr
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr
    assert json.loads(output.read_text())["split"] == "test"
    assert hashes(finished_run) == before


def test_a_trained_run_without_last_pt_is_never_started_anew(finished_run, tmp_path):
    """metrics.json, best.pt or export/ make a dir trained: with last.pt gone, resume=true
    offers a new dir, and a new run into it is refused without suggesting resume=true."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "checkpoints" / "last.pt").unlink()
    before = hashes(run_dir)
    resumed = run_cli_here(*FEW_DIGITS, "resume=true", f"hydra.run.dir={run_dir}", check=False)
    assert_one_clear_line(resumed, "holds a trained run but no last.pt to continue from")
    assert "another hydra.run.dir" in resumed.stderr and "drop resume" not in resumed.stderr
    anew = run_cli_here(*FEW_DIGITS, f"hydra.run.dir={run_dir}", check=False)
    assert_one_clear_line(anew, "already holds a trained run; choose another hydra.run.dir")
    assert hashes(run_dir) == before


def test_a_second_writer_is_refused_while_a_run_trains(tmp_path):
    """A real run (paused after its 4th step) holds its dir: a second run, a resume=true and an
    evaluation into it are refused in one line naming its pid, exit 75; nothing of it
    changes; once it is stopped (SIGTERM), the resume goes ahead."""
    run_dir = tmp_path / "run"
    training = paused_after_step_4(run_dir)
    try:
        wait_for(run_dir / "checkpoints" / "last.pt", training)
        before = hashes(run_dir)
        for command, expected in (
            (["-m", "src.run", *TINY, f"hydra.run.dir={run_dir}"], "is being written by"),
            (["-m", "src.run", *TINY, f"hydra.run.dir={run_dir}", "resume=true"], "still running"),
            (["-m", "src.evaluate", f"run_dir={run_dir}", "split=val"], "is writing it"),
        ):
            result = run_python(*command)
            assert result.returncode == 75, result.stderr
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and expected in lines[0], result.stderr
            assert f"pid {training.pid}: python -m tests.crashing_run" in lines[0], lines[0]
        assert hashes(run_dir) == before
    finally:
        training.send_signal(signal.SIGTERM)
        stderr = training.communicate(timeout=120)[1]
    assert training.returncode == 143, stderr
    run_cli(*TINY, f"hydra.run.dir={run_dir}", "resume=true")
    assert (run_dir / "metrics.json").exists()


def test_evaluate_on_a_read_only_run_dir_is_one_line(finished_run, tmp_path, capsys, monkeypatch):
    """Writes into the run dir fail as on a read-only mount (EROFS, monkeypatched in this
    process: chmod does not stop root): exit 74, one line naming the file and output=."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "eval_val.json").unlink()
    before = hashes(run_dir)

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(Path, "write_text", read_only)
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([f"run_dir={run_dir}", "split=val"])
    assert exit_.value.code == 74
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Read-only file system" in err[0] and "output=" in err[0], err
    monkeypatch.undo()
    assert hashes(run_dir) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
def test_evaluate_on_a_chmod_read_only_run_dir_is_one_line(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "eval_val.json").unlink()
    run_dir.chmod(0o555)
    try:
        result = run_python("-m", "src.evaluate", f"run_dir={run_dir}", "split=val")
    finally:
        run_dir.chmod(0o755)
    assert result.returncode == 74 and len(result.stderr.splitlines()) == 1, result.stderr
