"""soups.py's --smoke mode with the ViT (its pretraining too; LeNet's sweeps differ only in
the model options, and tests/test_soup.py soups LeNet): on each of two splits a sweep of two
jobs, their soups and the sweep-wide evaluate, the verdict over the splits; then the memory
probe on small states. The accuracies are not compared with anything
(one epoch); what must hold at any size is checked."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/soups.py


def test_the_soups_benchmark_runs_every_part_in_smoke_mode(tmp_path):
    result = run_python("-m", "benchmarks.soups", "--smoke", "--model=vit", f"--out={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert sorted(record["splits"]) == ["0", "1"]
    for figures in record["splits"].values():
        assert figures["uniform soup"]["jobs"] == 2  # both jobs of the split
        assert 1 <= figures["greedy soup"]["jobs"] <= 2
        # the greedy soup's promise: never worse on validation than its best ingredient
        assert figures["greedy soup"]["val"] >= figures["best job"]["val"]
        assert all(0 <= figures[name]["test"] <= 1 for name in figures)
    # the pot holds about two models at any N, not N of them
    assert sorted(record["peak_mib"]) == ["1", "2"]
    assert "greedy soup - best job on test:" in result.stdout
    # the test pairs splits, and says so: not the sweep summary's seeds
    verdicts = [line for line in result.stdout.splitlines() if " - best job on test:" in line]
    assert len(verdicts) == 2 and all("over splits;" in line for line in verdicts)
    assert not any("seed" in line for line in verdicts), verdicts
