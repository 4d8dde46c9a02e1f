"""recipe_vs_timm.py's --smoke mode: both contestants (`experiment=vit_finetune` and the recipe
written with timm's parts) fine-tune the same ViT from the same file on the same folder for one
epoch, and the table and ratios come out. Its figures are not checked (one epoch, 80 images)."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/recipe_vs_timm.py


def test_the_recipe_benchmark_runs_both_contestants_in_smoke_mode(tmp_path):
    result = run_python("-m", "benchmarks.recipe_vs_timm", "--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "results.json").read_text())
    for name in ("groupwise", "timm"):
        (run,) = record["results"][name]
        assert run["steps"] == 2  # 80 training images at a batch of 64, one epoch
        assert 0 <= run["acc"] <= 1 and 0 <= run["ema_acc"] <= 1
        assert run["images_per_s"] > 0 and run["images_per_cpu_s"] > 0
    # the same pretrained file reached both: groupwise's load report names it
    report = json.loads((tmp_path / "groupwise_0" / "pretrained_report.json").read_text())
    assert report["path"] == str(tmp_path / "pretrained.pt") and "pos_embed" in report["loaded"]
    assert "| groupwise |" in result.stdout and "| timm |" in result.stdout
    assert "groupwise / timm: acc" in result.stdout
