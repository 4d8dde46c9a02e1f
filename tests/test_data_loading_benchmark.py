"""The data loading benchmark's --smoke mode (benchmarks/data_loading.py): every part runs and
reports its figures; the figures themselves are not checked (tiny folders, a shared CPU)."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/data_loading.py


def test_every_part_of_the_data_loading_benchmark_runs_in_smoke_mode(tmp_path):
    result = run_python("-m", "benchmarks.data_loading", "--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    loader = results["loader"]
    assert [len(v) for v in loader["images_per_s"].values()] == [2, 2, 2]
    assert all(v > 0 for values in loader["images_per_s"].values() for v in values)
    assert loader["ratio_epoch_2_on"] > 0
    lenet = results["lenet"]
    assert [len(runs[0]) for runs in lenet["epoch_seconds"].values()] == [2, 2]
    assert lenet["speedup_epoch_2_on"] > 0
    accuracy = results["accuracy"]["val_acc"]
    assert len(accuracy) == 4 and all(0 <= a <= 1 for accs in accuracy.values() for a in accs)
    assert "cached / today" in result.stdout
