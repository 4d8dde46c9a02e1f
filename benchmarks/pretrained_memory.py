"""Peak memory of loading a large checkpoint into a model with a new head: groupwise's dry run
against the seed's approach, measured alternately in the same run.

    python benchmarks/pretrained_memory.py            # torchvision vit_l_16, ~1.2 GB fp32
    python benchmarks/pretrained_memory.py --model resnet50 --rounds 1   # a quick look

The checkpoint is made here from a randomly initialised model (nothing downloads). Each
measurement is a fresh process: it imports everything the run imports, resets the kernel's
peak-RSS counter (VmHWM, via /proc/self/clear_refs), then loads into a 10-class model:

- seed: build the model, `torch.load`, keep the entries whose key and shape match (a dict
  comprehension), `update` the model's state_dict with them, `load_state_dict` it;
- groupwise: `python -m src.run dry_run=true` in-process (the Runner), the model built on the
  meta device and given the memory-mapped checkpoint tensors;
- groupwise+read: the same, then every weight read once (a sum), so every page of the
  memory-mapped checkpoint is resident: what a training step sees.

Printed: peak RSS above the post-import baseline, as a multiple of the model's size.
Linux only (reads /proc/self/status). With `--device cuda` the model ends on the GPU (the
seed's approach moves it there last) and each measurement also gives the seconds from the
baseline to the model on the device and the device's peak (`torch.cuda.max_memory_allocated`);
the baseline is taken after CUDA's start, whose host memory is not the load's.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's src/, whatever is installed

from benchmarks.peak_rss import reset_peak, status_kib  # noqa: E402 (run as a script: after ROOT)

APPROACHES = ("seed", "groupwise", "groupwise+read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vit_l_16", help="a torchvision model name")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of all approaches")
    parser.add_argument("--device", default="cpu", help="where the model ends: cpu or cuda")
    parser.add_argument("--child", choices=APPROACHES, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.checkpoint, args.device)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / f"{args.model}.pt"
        size = make_checkpoint(args.model, checkpoint)
        print(f"{args.model}: checkpoint {size / 2**20:,.0f} MiB (1000 classes, 3 channels)")
        results = {name: [] for name in APPROACHES}
        for _ in range(args.rounds):
            for name in APPROACHES:
                results[name].append(in_fresh_process(name, args.model, checkpoint, args.device))
    model_bytes = results["seed"][0]["model_bytes"]
    print(f"10-class model: {model_bytes / 2**20:,.0f} MiB of parameters and buffers")
    print(f"{'approach':<16} {'peak above baseline (MiB), per round':<40} {'x model size'}")
    for name, runs in results.items():
        peaks = [r["peak_above_baseline"] / 2**20 for r in runs]
        best = min(peaks) * 2**20 / model_bytes
        print(f"{name:<16} {', '.join(f'{p:,.0f}' for p in peaks):<40} {best:.2f}")
    ratio = min(r["peak_above_baseline"] for r in results["groupwise"]) / min(
        r["peak_above_baseline"] for r in results["seed"]
    )
    print(f"groupwise / seed peak: {ratio:.2f}")
    if args.device != "cpu":
        for name, runs in results.items():
            print(
                f"{name:<16} to {args.device}: {min(r['seconds'] for r in runs):.2f} s, device "
                f"peak {max(r['device_peak'] for r in runs) / 2**20:,.0f} MiB"
            )


def in_fresh_process(approach: str, model_name: str, checkpoint: Path, device: str) -> dict:
    """One measurement (`measure`) in a new Python process: the peak-RSS counter is the
    process's, so each approach needs its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", approach, "--model", model_name,
         "--checkpoint", str(checkpoint), "--device", device],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_checkpoint(model_name: str, path: Path) -> int:
    import torch
    import torchvision

    model = torchvision.models.get_model(model_name, weights=None)
    torch.save(model.state_dict(), path)
    return path.stat().st_size


def measure(approach: str, model_name: str, checkpoint: str, device: str) -> dict:
    # Everything either approach imports, before the baseline: only the load is measured.
    import sklearn.datasets  # noqa: F401  the digits dataset's import
    import torch
    import torchvision  # noqa: F401
    from hydra import compose, initialize_config_dir

    import src.run  # noqa: F401  registers the config resolvers
    from src.models.torchvision_models import TorchvisionSource
    from src.runner import Runner

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "dry_run=true",
                "model=resnet18",
                f"model.name={model_name}",
                "dataset.classes=[0,1,2,3,4,5,6,7,8,9]",
                "pretrained=none",
                f"pretrained.path={checkpoint}",
                "pretrained.adapt_input_channels=true",  # the digits are grey: 1 channel
                f"trainer.device={device}",
            ],
        )
    if device != "cpu":
        torch.zeros(1, device=device)  # CUDA's start: its host memory is not the load's
        torch.cuda.reset_peak_memory_stats(device)
    baseline = reset_peak()
    start = time.perf_counter()
    if approach == "seed":
        model = TorchvisionSource(model_name).build(in_channels=1, num_classes=10)
        pretrained_dict = torch.load(checkpoint, weights_only=True)
        net_state_dict = model.state_dict()
        pretrained_dict_1 = {
            k: v
            for k, v in pretrained_dict.items()
            if k in net_state_dict and v.shape == net_state_dict[k].shape
        }
        net_state_dict.update(pretrained_dict_1)
        model.load_state_dict(net_state_dict)
        model.to(device)
    else:
        with tempfile.TemporaryDirectory() as run_dir:
            runner = Runner(cfg, Path(run_dir))
            runner.run()
            model = runner.model
        if approach == "groupwise+read":
            with torch.no_grad():
                sum(float(t.float().sum()) for t in model.state_dict().values())
    if device != "cpu":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM") * 1024
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {
        "peak_above_baseline": peak - baseline,
        "model_bytes": model_bytes,
        "seconds": seconds,
        "device_peak": torch.cuda.max_memory_allocated(device) if device != "cpu" else 0,
    }


if __name__ == "__main__":
    main()
