"""The GPU benchmark's --smoke mode: every part of `python -m benchmarks.gpu` on the CPU with
tiny shapes, so the script works the day a GPU runs it. Its figures are not checked (they are
a CPU's); what each part must show is: the loops trained, the runner read the device back
only where it logs, a one-process torchrun ran DDP, a killed run resumed bit for bit."""

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.benchmark  # runs benchmarks/gpu.py


def test_every_part_of_the_gpu_benchmark_runs_in_smoke_mode(tmp_path):
    out, results_file = tmp_path / "out", tmp_path / "RESULTS.md"
    result = run_python(
        *("-m", "benchmarks.gpu", "--smoke", "--out", str(out), "--results", str(results_file))
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())

    throughput = results["throughput"]
    assert set(throughput) == {
        "resnet_bf16_data_on_gpu",
        "resnet_bf16_dataloader",
        "resnet_bf16_cached_folder",
        "vit_b16_bf16_layer_decay",
        "resnet_bf16_compile",
        "resnet_fp16_gradscaler",
    }
    for name, workload in throughput.items():
        for key in ("plain", "runner"):
            assert workload[key]["images_per_s"] > 0, (name, key)
            assert 0 < workload[key]["wall_median_ratio"] < 10, (name, key)
    # vit_layer_decay: tokens, patch embedding, 12 blocks and the head, most split by decay.
    assert throughput["vit_b16_bf16_layer_decay"]["optimizer_groups"] >= 13
    profile = throughput["resnet_bf16_data_on_gpu"]["profile"]
    assert profile["plain"]["host_reads"] == 0
    # The runner reads the device back at logged steps and epoch ends only: an epoch of two
    # steps makes at most a logged step's read and the epoch's loss.
    assert 1 <= profile["runner"]["host_reads"] <= 3
    assert "aten::convolution" in (out / "profile_runner.txt").read_text()

    ddp = results["ddp"]
    assert ddp["ok"], ddp
    assert ddp["ddp"]["world_size"] == 1 and "gloo" in ddp["ddp"]["backend"]
    assert ddp["checkpoint_step"] == ddp["optimizer_steps"] > 0

    resume = results["resume"]
    assert resume["identical"], resume
    assert resume["resumed_from"]["batches_in_epoch"] > 0  # killed mid-epoch
    assert resume["final_step"] > resume["killed_after_step"]

    pretrained = results["pretrained"]
    model_bytes = pretrained["groupwise"]["model_bytes"]
    assert pretrained["seed"]["peak_above_baseline"] > model_bytes  # the model and the file
    assert pretrained["groupwise"]["peak_above_baseline"] < model_bytes / 2  # memory-mapped

    assert "| throughput | resnet_bf16_data_on_gpu |" in result.stdout
    assert (out / "table.md").read_text().strip() in result.stdout
    assert not results_file.exists()  # CPU figures never go into RESULTS.md
