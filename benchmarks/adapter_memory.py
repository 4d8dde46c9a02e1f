"""Peak memory and step time of LoRA r=8 against full fine-tuning, on a randomly initialised
ViT-B/16 (timm's vit_base_patch16_224, 86M parameters) on the CPU, AdamW.

    python benchmarks/adapter_memory.py                 # ViT-B/16 at 224 pixels, batch 8
    python benchmarks/adapter_memory.py --smoke         # a tiny ViT, 2 steps: that it runs

Each way is measured in a fresh process, the two alternating over `--rounds`: it builds the
model (LoRA: wrapped as a run wraps it, src/adapters, the groups on the trainable tensors),
resets the kernel's peak-RSS counter (VmHWM, via /proc/self/clear_refs), then trains
`--steps` steps on random images; the first step (the optimizer state is made there) is left
out of the times. Large blocks are mapped and unmapped by glibc (`MALLOC_MMAP_THRESHOLD_=65536`;
`--glibc-heap`: its default), so peak RSS counts what tensors hold, not freed heap. Printed: the gradients and optimizer state that training keeps (counted),
peak RSS above the built model (measured: activations included, which LoRA does not shrink),
the median step time, and LoRA's ratio to full fine-tuning of each. Linux only (reads /proc/self/status).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's src/, whatever is installed

from benchmarks.peak_rss import reset_peak, status_kib  # noqa: E402 (run as a script: after ROOT)

WAYS = ("full", "lora")
# What each trained float32 element holds beyond its weight: its gradient and AdamW's 2 moments.
STATE_BYTES = 4 + 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny ViT, 2 steps, 1 round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--glibc-heap", action="store_true", help="glibc's default mmap threshold (see below)"
    )
    parser.add_argument("--measure", choices=WAYS, help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    model, size = ("vit_tiny_patch16_224", 32) if args.smoke else ("vit_base_patch16_224", 224)
    if args.smoke:
        args.rounds, args.steps, args.batch = 1, 2, 2
    if args.measure:
        print(json.dumps(measure(args.measure, model, size, args.steps, args.batch)))
        return
    # glibc keeps freed blocks below its (growing) mmap threshold in its heap, so peak RSS
    # would count memory no tensor holds any more; blocks from 64 KiB are mapped and unmapped.
    env = {**os.environ} if args.glibc_heap else {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    results = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            command = [sys.executable, __file__, "--measure", way, "--steps", str(args.steps)]
            command += ["--batch", str(args.batch)] + ["--smoke"] * args.smoke
            out = subprocess.run(
                command, capture_output=True, text=True, check=True, cwd=ROOT, env=env
            )
            results[way].append(json.loads(out.stdout.splitlines()[-1]))
    report = summarize(results, model, size, args.batch)
    print(report["table"])
    if args.out:
        args.out.write_text(json.dumps({**report, "runs": results}, indent=2) + "\n")


def measure(way: str, model_name: str, size: int, steps: int, batch: int) -> dict:
    import torch

    from src.adapters.step import adapt
    from src.adapters.targets import adapter_spec
    from src.config.schema import AdapterConfig, defaults
    from src.models.timm_models import TimmSource
    from src.optim.built import build_param_groups
    from src.optim.specs import parse_specs

    torch.manual_seed(0)
    source = TimmSource(model_name, image_size=size)
    model = source.build(3, 10)
    roles = source.roles(model)
    spec = None
    if way == "lora":
        spec = adapter_spec({**defaults(AdapterConfig), "kind": "lora"}, model, roles)
    model, trained, roles = adapt(model, spec, roles)
    groups, _ = build_param_groups(trained, parse_specs(None), roles, 1e-4, 0.05, False)
    optimizer = torch.optim.AdamW(groups, lr=1e-4)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    baseline = reset_peak()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return {
        "peak_above_model": status_kib("VmHWM") * 1024 - baseline,
        "step_seconds": times[1:],
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "params": sum(
            p.numel()
            for n, p in model.named_parameters()
            if "lora_" not in n and ".modules_to_save." not in n
        ),
        "threads": torch.get_num_threads(),
    }


def summarize(results: dict, model: str, size: int, batch: int) -> dict:
    peak = {w: statistics.median(r["peak_above_model"] for r in results[w]) for w in WAYS}
    step = {w: statistics.median(t for r in results[w] for t in r["step_seconds"]) for w in WAYS}
    rows = [
        "| way | trainable parameters | gradients + AdamW state (counted) | peak RSS above "
        "the model | median step |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {w} | {results[w][0]['trainable']:,} of {results[w][0]['params']:,} | "
            f"{results[w][0]['trainable'] * STATE_BYTES / 2**20:,.0f} MiB | "
            f"{peak[w] / 2**20:,.0f} MiB | {step[w]:.2f} s |"
            for w in WAYS
        ),
    ]
    ratios = {"peak": peak["lora"] / peak["full"], "step": step["lora"] / step["full"]}
    rows.append(
        f"\nLoRA / full: peak memory {ratios['peak']:.2f}x, step time {ratios['step']:.2f}x "
        f"({model}, {size} px, batch {batch}, {results['full'][0]['threads']} threads)"
    )
    return {"peak": peak, "step": step, "ratios": ratios, "table": "\n".join(rows)}


if __name__ == "__main__":
    main()
