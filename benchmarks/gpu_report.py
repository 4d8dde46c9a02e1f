"""The GPU benchmark's results (benchmarks/gpu.py) as one markdown table, a row per workload
or part, the plain loop (or the seed's way) beside the runner (groupwise) and Lightning; saved
to the --out folder as they come, and appended to RESULTS.md with the machine."""

import json
import os
import platform
import time
from pathlib import Path

import torch

HEADER = (
    "part",
    "workload",
    "plain loop / seed",
    "runner / groupwise (x plain: best, median)",
    "Lightning (x plain: best, median)",
    "peak memory, runner / plain",
    "notes",
)
ORDER = (
    "resnet_bf16_data_on_gpu",
    "resnet_bf16_dataloader",
    "vit_b16_bf16_layer_decay",
    "resnet_bf16_compile",
    "resnet_fp16_gradscaler",
)
MIB = 2**20


def markdown_table(table: list[tuple]) -> str:
    lines = [HEADER, ("---",) * len(HEADER), *table]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def rows(results: dict) -> list[tuple]:
    throughput = results.get("throughput", {})
    table = [throughput_row(name, throughput[name]) for name in ORDER if name in throughput]
    if "pretrained" in results:
        table.append(pretrained_row(results["pretrained"]))
    if "ddp" in results:
        table.append(ddp_row(results["ddp"]))
    if "resume" in results:
        table.append(resume_row(results["resume"]))
    return table


def _speed(result: dict, key: str) -> str:
    if key not in result:
        return "-"
    r = result[key]
    return (
        f"{r['images_per_s']:,.0f} img/s, **{r['wall_ratio_of_best']:.3f}x / "
        f"{r['wall_median_ratio']:.3f}x**"
    )


def throughput_row(name: str, result: dict) -> tuple:
    plain, runner = result["plain"], result["runner"]
    if runner["peak_memory"] is None:
        memory = "- (CPU)"
    else:
        memory = (
            f"{runner['peak_memory'] / MIB:,.0f} / {plain['peak_memory'] / MIB:,.0f} MiB "
            f"({runner['peak_memory'] / max(plain['peak_memory'], 1):.2f}x)"
        )
        if "lightning" in result:
            memory += f"; Lightning {result['lightning']['peak_memory'] / MIB:,.0f} MiB"
    notes = [*result.get("notes", []), f"{result['optimizer_groups']} optimizer groups"]
    if "twin" in result:
        twin = result["twin"]
        notes.append(
            f"twin plain loop (noise floor) {twin['wall_ratio_of_best']:.3f}x / "
            f"{twin['wall_median_ratio']:.3f}x"
        )
    if "compile" in name:
        # The first contestant to compile pays for it; the next finds the graphs compiled
        # (the same model code, shapes and dtypes): the larger of the two is the cold compile.
        seconds = {
            key: max(0.0, result[key]["first_epoch_s"] - result[key]["steady_epoch_s"])
            for key in ("plain", "runner")
        }
        notes.append(
            f"compilation, cold (first epoch minus a steady one): {max(seconds.values()):.1f} s; "
            f"the other contestant reused the compiled graphs: {min(seconds.values()):.1f} s"
        )
    if "profile" in result:
        notes += [
            f"profiled epoch, {key}: {p['wall_ms']:.0f} ms wall, {p['self_device_ms']:.0f} ms "
            f"on the device, {p['host_reads']} host reads, {p['stream_syncs']} stream syncs"
            for key, p in result["profile"].items()
        ]
    return (
        "throughput",
        name,
        f"{plain['images_per_s']:,.0f} img/s",
        _speed(result, "runner"),
        _speed(result, "lightning"),
        memory,
        "; ".join(notes),
    )


def _load(run: dict) -> str:
    text = f"{run['seconds']:.2f} s, host +{run['peak_above_baseline'] / MIB:,.0f} MiB"
    return text + (f", device {run['device_peak'] / MIB:,.0f} MiB" if run["device_peak"] else "")


def pretrained_row(result: dict) -> tuple:
    model_mib = result["groupwise"]["model_bytes"] / MIB
    return (
        "pretrained load",
        f"{result['model']} checkpoint ({result['checkpoint_bytes'] / MIB:,.0f} MiB) into 10 "
        "classes",
        _load(result["seed"]),
        _load(result["groupwise"]),
        "-",
        "-",
        f"model {model_mib:,.0f} MiB; host peaks above the post-import baseline",
    )


def ddp_row(result: dict) -> tuple:
    if result["ok"]:
        ddp = result["ddp"]
        outcome = (
            f"ok: DDP over {ddp['backend']}, world {ddp['world_size']}, "
            f"{result['optimizer_steps']} steps, checkpoint at step {result['checkpoint_step']}"
        )
    else:
        outcome = f"FAILED: {result.get('error') or result}"
    return (
        "torchrun",
        "one process, the real CLI",
        "-",
        outcome,
        "-",
        "-",
        f"{result['seconds']:.0f} s from launch to exit",
    )


def resume_row(result: dict) -> tuple:
    if "error" in result:
        return ("resume", "killed mid-epoch", "-", f"FAILED: {result['error']}", "-", "-", "")
    differences = result["max_abs_difference"]
    if result["identical"]:
        outcome = "bit-identical to the uninterrupted run"
    else:
        outcome = f"max abs difference {differences['resumed']:.3g}"
    if not result["ok"]:
        outcome = f"FAILED: {outcome}"
    at = result["resumed_from"]
    notes = [
        f"killed after step {result['killed_after_step']}, resumed from step "
        f"{at['global_step']} (epoch {at['epoch'] + 1}, batch {at['batches_in_epoch']}), "
        f"to step {result['final_step']}",
        "torch.use_deterministic_algorithms(True, warn_only=True), CUBLAS_WORKSPACE_CONFIG=:4096:8",
    ]
    if "again" in differences:
        notes.append(f"two uninterrupted runs: max abs difference {differences['again']:.3g}")
    ops = result["nondeterministic_ops"]
    notes.append(f"ops without a deterministic kernel: {', '.join(ops) if ops else 'none'}")
    return ("resume", "killed mid-epoch, resumed", "-", outcome, "-", "-", "; ".join(notes))


def machine(smoke: bool) -> str:
    where = "CPU (--smoke)" if smoke else torch.cuda.get_device_name()
    cuda = f", CUDA {torch.version.cuda}" if torch.cuda.is_available() else ""
    return (
        f"{where}; {os.cpu_count()} CPU cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}{cuda}"
    )


def save(results: dict, out: Path | None, table: str | None = None) -> None:
    if out is None:
        return
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if table is not None:
        (out / "table.md").write_text(table + "\n")


def append_results(path: Path, machine_line: str, table: str) -> None:
    with path.open("a") as f:
        f.write(
            f"\n### GPU run, {time.strftime('%Y-%m-%d')}: `python -m benchmarks.gpu`\n\n"
            f"Machine: {machine_line}.\n\n{table}\n"
        )
    print(f"appended to {path}")
