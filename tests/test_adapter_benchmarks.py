"""The adapter benchmarks' --smoke modes: the memory and step-time comparison of LoRA and full
fine-tuning, and the full FT / LoRA / LoRA+ sweep on the digits transfer, run end to end on
tiny settings. Their figures are not checked (2 steps; 1 epoch of 4 shots)."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark


def test_the_memory_benchmark_measures_both_ways_in_smoke_mode(tmp_path):
    out = tmp_path / "memory.json"
    result = run_python("benchmarks/adapter_memory.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(out.read_text())
    (full,), (lora,) = record["runs"]["full"], record["runs"]["lora"]
    assert lora["params"] == full["params"] == full["trainable"] > 10 * lora["trainable"]
    assert record["peak"]["full"] > 0 and record["step"]["lora"] > 0
    assert "LoRA / full: peak memory" in result.stdout


def test_the_sweep_benchmark_trains_the_source_and_compares_the_three_ways(tmp_path):
    result = run_python("benchmarks/adapter_digits.py", "--smoke", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = (tmp_path / "sweep" / "summary.md").read_text()
    assert summary.startswith("3 jobs")  # one seed: the three ways, each trained
    for way in ("full", "lora", "lora_plus"):
        assert f"| {way} | 1 |" in summary and f"finetune={way}` | completed |" in summary
    assert (tmp_path / "source" / "checkpoints" / "last.pt").is_file()
