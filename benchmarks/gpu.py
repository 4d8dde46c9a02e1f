"""The speed claims on a CUDA GPU, in one run of a few minutes: the runner's loop against a
plain hand-written loop (and PyTorch Lightning when it is installed), peak GPU memory, a
large pretrained checkpoint loaded to the GPU, DDP over NCCL through `torchrun`, and exact
resume after a kill.

    python -m benchmarks.gpu --out DIR     # one CUDA GPU; appends the table to RESULTS.md
    python -m benchmarks.gpu --smoke       # every part on the CPU, tiny shapes, seconds

Parts (full mode; `--smoke` runs each on the CPU with tiny shapes: LeNet for the ResNets, a
narrow 12-block ViT, one round, Gloo for NCCL, compilation switched off):
1. throughput, images/s and the ratio to the plain loop (best round vs best round, and the
   median of per-round ratios), contestants alternating (benchmarks/loops.py):
   ResNet-50 at 224, batch 128, bf16 autocast, channels_last, data already on the GPU (with
   a torch.profiler table of plain and runner epochs in DIR); the same from JPEG files through
   a DataLoader (workers, pinned memory); the same from a decoded cache of 6,144 photos
   (`dataset.cache=true`: uint8 crops, flip and normalisation on the GPU); ViT-B/16 bf16 with `vit_layer_decay` groups;
   ResNet-50 with `trainer.compile=true` (compilation timed apart); ResNet-50 in float16
   with a GradScaler;
2. peak GPU memory of each contestant's epochs (above what it held before them);
3. torchvision's vit_l_16 checkpoint into a 10-class model on the GPU: time, host and device
   peaks, against the seed's load (benchmarks/pretrained_memory.py);
4. the CLI under a one-process `torchrun`: DDP over NCCL, trains, writes its checkpoint;
5. a run killed mid-epoch and resumed, against uninterrupted runs (benchmarks/gpu_runs.py).

DIR receives the log-worthy files as they are made: results.json after every part, the
profile tables, the table (table.md), so an interrupted run still leaves what it measured.
"""

import argparse
import contextlib
import gc
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmarks import gpu_runs
from benchmarks.gpu_data import on_device_overrides, write_photo_folder
from benchmarks.gpu_report import append_results, machine, markdown_table, rows, save
from benchmarks.loops import has_lightning, measure

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Workload:
    name: str
    overrides: list[str]
    rounds: int
    lightning: bool = True
    twin: bool = False
    profile: bool = False  # torch.profiler tables of a plain and a runner epoch
    notes: list[str] = field(default_factory=list)


def workloads(smoke: bool, photos: Path, workers: int, many: Path) -> list[Workload]:
    device = "cpu" if smoke else "cuda"
    size, batch, images = (32, 4, 8) if smoke else (224, 128, 1536)
    rounds = 1 if smoke else 4
    # --smoke: LeNet for ResNet-50 (a CPU takes seconds per step of a ResNet in bf16).
    resnet = [
        f"trainer.device={device}",
        "pretrained=none",
        *(["model=lenet", "param_groups=fc3_boost"] if smoke else ["model=resnet50"]),
        *([] if smoke else ["param_groups=head_boost"]),
        "trainer.channels_last=true",
    ]
    gpu_data = on_device_overrides(images, size, batch, device)
    vit = ["model=vit_b_16", "optimizer=adamw", "param_groups=vit_layer_decay", "pretrained=none"]
    if smoke:
        vit += ["model._target_=benchmarks.gpu_data.SmallViTSource", f"model.image_size={size}"]
    loader = [
        "dataset=image_folder",
        f"dataset.root={photos}",
        f"dataset.batch_size={batch}",
        f"dataset.num_workers={workers}",
        f"dataset.pin_memory={not smoke}",
        "dataset.persistent_workers=true",
        *([f"dataset.image_size={size}"] if smoke else []),
    ]
    # 6,144 photos (several batches per worker), decoded once before round 1.
    cached = [f"dataset.root={many}", "dataset.cache=true", f"dataset.cache_dir={many}.cache"]
    return [
        Workload(
            "resnet_bf16_data_on_gpu",
            [*resnet, *gpu_data, "trainer.precision=bf16"],
            rounds if smoke else rounds + 2,
            twin=not smoke,
            profile=True,
        ),
        Workload(
            "resnet_bf16_dataloader",
            [*resnet, *loader, "trainer.precision=bf16"],
            rounds,
            notes=[f"{workers} workers, pin_memory={not smoke}"],
        ),
        Workload(  # target: >= 0.9x resnet_bf16_data_on_gpu's runner images/s (issue 22)
            "resnet_bf16_cached_folder",
            [*resnet, *loader, *cached, "trainer.precision=bf16"],
            rounds,
            lightning=False,
            notes=[f"{workers} workers, decoded cache, flip and normalisation on the device"],
        ),
        Workload(
            "vit_b16_bf16_layer_decay",
            [f"trainer.device={device}", *vit, *gpu_data, "trainer.precision=bf16"],
            rounds,
        ),
        Workload(
            "resnet_bf16_compile",
            [*resnet, *gpu_data, "trainer.precision=bf16", "trainer.compile=true"],
            rounds,
            lightning=False,
            notes=["compilation off in --smoke"] if smoke else [],
        ),
        Workload(
            "resnet_fp16_gradscaler",
            [*resnet, *gpu_data, "trainer.precision=16"],
            rounds,
            # Lightning refuses float16 autocast on a CPU.
            lightning=not smoke,
        ),
    ]


def cli_runs(smoke: bool, photos: Path, workers: int) -> tuple[list[str], list[str]]:
    """The overrides of the torchrun run and of the resume runs: ResNet-18 on the photos in
    bf16 (--smoke: LeNet on the digits, the lightest run there is: each process pays its
    imports, and the smoke mode starts five)."""
    run = ["pretrained=none", "trainer.precision=bf16", "trainer.channels_last=true"]
    if smoke:
        run += ["model=lenet", "trainer.device=cpu", "dataset.shots_per_class=4"]
    else:
        run += [
            "model=resnet18",
            "trainer.device=cuda",
            "dataset=image_folder",
            f"dataset.root={photos}",
            f"dataset.num_workers={min(workers, 8)}",
            "dataset.pin_memory=true",
        ]
    ddp = [*run, f"dataset.batch_size={4 if smoke else 128}", "trainer.max_epochs=1"]
    # Mid-epoch checkpoints, a schedule that moves every step, augmentations in the workers:
    # all must be restored for the resumed run to match.
    resume = [
        *run,
        *([] if smoke else ["dataset.image_size=64"]),
        f"dataset.batch_size={4 if smoke else 64}",
        "trainer.max_epochs=2",
        f"trainer.checkpoint_every_n_steps={2 if smoke else 5}",
        "trainer.log_every_n_steps=2",
        "scheduler=cosine",
    ]
    return ddp, resume


def profile_to(out: Path | None):
    """An `after_rounds` hook: one plain and one runner epoch under torch.profiler, their
    op tables written to `out`, and a summary of each returned for the table."""

    def after_rounds(runner, contestants) -> dict:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        CPU = DeviceType.CPU

        cuda = runner.device.type == "cuda"
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        summary = {}
        for key in ("plain", "runner"):
            with profile(activities=activities) as prof:
                wall, _ = contestants[key](1)
            events = prof.key_averages()
            # Kernels only, as the table's "Self CUDA time total": an op's own row repeats
            # the time of its kernels.
            device_us = sum(e.self_device_time_total for e in events if e.device_type != CPU)
            calls = {e.key: e.count for e in events}
            summary[key] = {
                "wall_ms": wall * 1e3,
                "self_cpu_ms": sum(e.self_cpu_time_total for e in events) / 1e3,
                "self_device_ms": device_us / 1e3,
                "host_reads": calls.get("aten::_local_scalar_dense", 0),
                "stream_syncs": calls.get("cudaStreamSynchronize", 0),
                "ops": sum(calls.values()),
            }
            if out is not None:
                sorts = ["self_device_time_total"] if cuda else []
                (out / f"profile_{key}.txt").write_text(
                    "\n".join(
                        events.table(sort_by=sort, row_limit=40)
                        for sort in [*sorts, "self_cpu_time_total"]
                    )
                )
        return {"profile": summary}

    return after_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU, tiny")
    parser.add_argument("--out", type=Path, help="a folder for results.json and profiles")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/RESULTS.md")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --smoke, or on a machine with a GPU")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        # One thread, here and in the runs it starts: on a busy CI machine, threads that
        # spin-wait for a core slow tiny steps down tenfold.
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"
    started = time.perf_counter()
    results = {"machine": machine(args.smoke), "mode": "smoke" if args.smoke else "full"}
    print(results["machine"], flush=True)
    printed = []

    def saved() -> None:
        """Results so far to --out, and the table's new rows to the console: a run cut short
        leaves what it measured."""
        save(results, args.out)
        new = [row for row in rows(results) if row not in printed]
        print("\n".join(markdown_table(new).splitlines()[2:]), flush=True)
        printed.extend(new)

    with tempfile.TemporaryDirectory() as tmp:
        run_parts(args.smoke, Path(tmp), args.out, results, saved)
    results["seconds"] = time.perf_counter() - started
    table = markdown_table(rows(results))
    print(f"\n{table}\n\n{results['seconds']:.0f} s in all", flush=True)
    save(results, args.out, table)
    if not args.smoke:
        append_results(args.results, results["machine"], table)


def run_parts(smoke: bool, tmp: Path, out: Path | None, results: dict, saved) -> None:
    """Into `results`, `saved()` after each part: the main workload first, the runs of whole
    processes, the other workloads, the slow compilation last (a run cut short keeps the
    rest)."""
    start = time.perf_counter()
    workers = 1 if smoke else max(2, min(12, (os.cpu_count() or 2) - 4))
    photos = tmp / "photos"
    many = tmp / "many_photos"  # the cached workload's: several batches per worker
    if smoke:
        write_photo_folder(photos, classes=3, train=4, val=2, size=(40, 32))
        write_photo_folder(many, classes=3, train=8, val=2, size=(40, 32))
    else:  # 1536 training images: 12 batches of 128; 6144: 48
        write_photo_folder(photos, classes=12, train=128, val=4, size=(400, 300))
        write_photo_folder(many, classes=12, train=512, val=4, size=(400, 300))
    main_workload, *others = sorted(
        workloads(smoke, photos, workers, many), key=lambda s: (not s.profile, "compile" in s.name)
    )
    lightning = has_lightning()
    if not lightning:
        print("lightning not installed: runner vs plain loop only")

    def part_done(name: str) -> None:
        saved()
        print(f"  {name}: {time.perf_counter() - start:.0f} s so far", flush=True)

    for index, spec in enumerate([main_workload, *others]):
        print(f"\n{spec.name}", flush=True)
        # Inductor compiles for minutes on a CPU: the smoke run takes the path without it.
        no_compile = torch._dynamo.config.patch(disable=True) if smoke else contextlib.nullcontext()
        with no_compile:
            result = measure(
                spec.overrides,
                epochs=1,
                rounds=spec.rounds,
                lightning=lightning and spec.lightning,
                twin=spec.twin,
                after_rounds=profile_to(out) if spec.profile else None,
            )
        results.setdefault("throughput", {})[spec.name] = {**result, "notes": spec.notes}
        gc.collect()  # the workload's models and loaders: before the next one allocates
        if not smoke:
            torch.cuda.empty_cache()
        part_done(spec.name)
        if index > 0:
            continue
        ddp, resume = cli_runs(smoke, photos, workers)
        results["ddp"] = gpu_runs.torchrun_ddp(ddp)
        part_done("torchrun")
        results["resume"] = gpu_runs.resume_exactness(
            resume, kill_after_step=3 if smoke else 8, repeat=not smoke
        )
        part_done("resume")
        results["pretrained"] = gpu_runs.pretrained_load(
            *(("resnet18", "cpu") if smoke else ("vit_l_16", "cuda")), fresh=not smoke
        )
        part_done("pretrained load")


if __name__ == "__main__":
    main()
