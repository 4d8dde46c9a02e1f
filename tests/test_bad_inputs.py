"""The catalogue of bad input (tests/bad_inputs.py), each case through the real CLI: exit 2,
one `groupwise: error:` line naming the key, the value and the rule, no traceback, and nothing
written."""

import pytest
import torch

from tests.bad_inputs import CASES, run_all_in_one_process
from tests.conftest import assert_one_clear_line, run_cli

pytestmark = pytest.mark.e2e  # every case runs the CLI


def test_every_bad_input_is_one_clear_line_and_writes_nothing(tmp_path):
    names = [n for n in CASES if not (n == "no-cuda" and torch.cuda.is_available())]
    assert len(names) >= 100
    results = run_all_in_one_process(tmp_path, names)
    failures = []
    for name, result in results.items():
        try:
            assert_one_clear_line(result, CASES[name][1])
        except AssertionError as err:
            failures.append(f"{name}: {err}")
        # A refused run leaves nothing: not even Hydra's record (.hydra/), run.log or the dir.
        run_dir = tmp_path / name / "run"
        if run_dir.is_dir():
            failures.append(f"{name}: left {run_dir}: {sorted(p.name for p in run_dir.iterdir())}")
    assert not (tmp_path / "code-carrying-file" / "pwned").exists()
    # Nothing landed in the directory the cases ran in (an empty hydra.run.dir, a sweep).
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in names) == [
        "cases.json",
        "results.json",
    ]
    assert not failures, "\n".join(failures)


def test_the_catalogue_runs_the_command_itself(tmp_path):
    """The in-process runs above are the command's own: the same case in its own process
    gives the same line and exit code."""
    name = "zero-epochs"
    in_process = run_all_in_one_process(tmp_path / "in", [name])[name]
    alone = run_cli(*CASES[name][0], f"hydra.run.dir={tmp_path / 'alone'}", check=False)
    assert (in_process.returncode, in_process.stderr) == (alone.returncode, alone.stderr)
