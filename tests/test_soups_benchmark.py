"""soups.py's --smoke mode, LeNet on two splits and the ViT on one: on each split a sweep of
two jobs, their soups and the sweep-wide evaluate; then the memory probe on small states. The accuracies are not compared with anything
(one epoch); what must hold at any size is checked."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/soups.py


@pytest.mark.parametrize(("model", "splits"), [("lenet", 2), ("vit", 1)])
def test_the_soups_benchmark_runs_every_part_in_smoke_mode(tmp_path, model, splits):
    result = run_python(
        "-m", "benchmarks.soups", "--smoke", f"--model={model}", f"--splits={splits}",
        f"--out={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    assert sorted(record["splits"]) == [str(split) for split in range(splits)]
    for figures in record["splits"].values():
        assert figures["uniform soup"]["jobs"] == 2  # both jobs of the split
        assert 1 <= figures["greedy soup"]["jobs"] <= 2
        # the greedy soup's promise: never worse on validation than its best ingredient
        assert figures["greedy soup"]["val"] >= figures["best job"]["val"]
        assert all(0 <= figures[name]["test"] <= 1 for name in figures)
    # the pot holds about two models at any N, not N of them
    assert sorted(record["peak_mib"]) == ["1", "2"]
    assert "greedy soup - best job on test:" in result.stdout
    assert "mean over splits" in result.stdout
