"""A finished run is read-only to every command but `resume=true` (issue 20): each refused
command of the bad-input catalogue, each dry run and each refused resume, evaluation and
prediction, pointed at a finished run, leaves every byte of every file as it was."""

import hashlib
import json
import subprocess
import sys

import pytest

from src import evaluate, predict
from tests.bad_inputs import CASES, run_all_in_one_process
from tests.conftest import ROOT, assert_one_clear_line, run_cli_here
from tests.runs import FEW_DIGITS, train_one_epoch

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
    """`python -m src.evaluate ... | head -4`: the reader gone before the table is printed."""
    output = tmp_path / "eval.json"
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "src.evaluate", f"run_dir={finished_run}", f"output={output}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader_gone.stdout.close()  # as `head` exits
    stderr = reader_gone.stderr.read()
    assert reader_gone.wait(timeout=300) == 0, stderr
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr
    assert json.loads(output.read_text())["split"] == "test"
