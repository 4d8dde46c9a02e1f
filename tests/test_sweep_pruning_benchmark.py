"""sweep_pruning.py's --smoke mode: the grid of 8 multipliers x 3 seeds, in full and pruned,
comes out with the epochs and seconds each spent and both answers. Its figures are not
checked against each other (8 epochs of 8 shots a digit): only that they are what the sweeps
wrote."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/sweep_pruning.py


def test_the_pruning_benchmark_runs_the_full_and_the_pruned_grid_in_smoke_mode(tmp_path):
    pytest.importorskip("optuna", minversion="4")
    result = run_python("-m", "benchmarks.sweep_pruning", "--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    full, pruned = record["results"]["full"], record["results"]["pruned"]
    assert full["jobs"] == pruned["jobs"] == 24 and full["pruned"] == 0
    assert full["epochs"] == full["full_epochs"] == 24 * 8
    assert pruned["pruned"] > 0 and pruned["epochs"] < full["epochs"]
    assert record["same_answer"] == (full["winner"] == pruned["winner"])
    assert "| full | 24 | 0 | 192 | 100% |" in result.stdout
