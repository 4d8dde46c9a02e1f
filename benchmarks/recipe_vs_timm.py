"""`experiment=vit_finetune` against the same recipe written with timm's own parts
(recipe_timm.py): final and EMA accuracy over seeds, and training throughput.

    python -m benchmarks.recipe_vs_timm [--seeds 3] [--epochs 30] [--smoke] [--out DIR]

Both fine-tune the same tiny timm ViT (4 blocks, width 64, patch 4, 32 px) from the same
pretrained file (the ViT trained here on digits 0-4 with a plain loop, saved by torch without
its head) on the same image folder (scikit-learn's digits 5-9 as 32 px PNGs, train/ and val/),
for the same epochs and warmup, with AdamW, layer decay 0.75, weight decay 0.05, drop path 0.1,
Mixup 0.8 / CutMix 1.0, label smoothing 0.1, RandAugment, random erasing 0.25 and an EMA of
0.9998 with warmup. Each contestant runs as a user runs it, in its own process, one intra-op
thread, through `startup_probe.py --count-steps`, so one clock times both: images/s is the
images of the steps after the first over the seconds from the first optimizer step to the last
(the per-epoch evaluations in between, as each does them). Seeds alternate which goes first,
so both share the machine's load alike. Printed: a table of mean ± std over seeds, and the
ratios groupwise / timm; results.json in --out.
"""

import argparse
import gzip
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.startup import ENV, PROBE, ROOT

MODEL = "vit_tiny_patch16_224"
MODEL_ARGS = {"depth": 4, "embed_dim": 64, "num_heads": 4, "patch_size": 4, "img_size": 32}


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 digits (the file it ships) at 32x32 in [0, 1], and their labels."""
    sklearn_dir = Path(importlib.util.find_spec("sklearn").origin).parent
    with gzip.open(sklearn_dir / "datasets" / "data" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    pixels = torch.tensor(table[:, :-1], dtype=torch.float32).view(-1, 1, 8, 8) / 16
    return F.interpolate(pixels, size=(32, 32), mode="bilinear"), torch.tensor(table[:, -1]).long()


def write_folder(root: Path, images, labels, per_class: int | None) -> Path:
    """root/{train,val}/<digit>/*.png of digits 5-9: 20% of each digit to val (fixed draw), the
    training images an even number (timm's Mixup refuses an odd batch)."""
    generator = torch.Generator().manual_seed(0)
    for digit in range(5, 10):
        index = (labels == digit).nonzero().flatten()
        index = index[torch.randperm(len(index), generator=generator)][:per_class]
        n_val = max(1, round(len(index) * 0.2))
        n_train = (len(index) - n_val) // 2 * 2
        for split, chosen in (("val", index[:n_val]), ("train", index[n_val : n_val + n_train])):
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen.tolist():
                grey = (images[i, 0] * 255).round().clamp(0, 255).byte().numpy()
                Image.fromarray(grey).convert("RGB").save(folder / f"{i}.png")
    return root


def pretrain(path: Path, images, labels, epochs: int) -> Path:
    """The ViT trained on digits 0-4 (a plain loop, AdamW), saved without its head."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(MODEL, num_classes=5, **MODEL_ARGS)
    chosen = labels < 5
    x = (images[chosen].expand(-1, 3, -1, -1) - 0.5) / 0.5  # the model's mean and std: 0.5
    y = labels[chosen]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    for _ in range(epochs):
        for batch in torch.randperm(len(y)).split(64):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    torch.save(state, path)
    return path


def commands(root: Path, weights: Path, out: Path, seed: int, args) -> dict[str, list[str]]:
    warmup = args.warmup_epochs
    groupwise = [
        "src.run", "experiment=vit_finetune", f"model.name={MODEL}",
        *(f"+model.{k}={v}" for k, v in MODEL_ARGS.items() if k != "img_size"),
        f"dataset.root={root}", "dataset.image_size=32", f"pretrained.path={weights}",
        f"trainer.max_epochs={args.epochs}", f"scheduler.warmup_epochs={warmup}",
        "trainer.ema_decay=0.9998", f"optimizer.lr={args.lr}", f"seed={seed}",
        f"hydra.run.dir={out}/groupwise_{seed}",
    ]  # fmt: skip
    timm_script = [
        "benchmarks.recipe_timm", str(root), str(weights), str(out / f"timm_{seed}.json"),
        f"--model={MODEL}", f"--model-args={json.dumps(MODEL_ARGS)}", f"--epochs={args.epochs}",
        f"--warmup-epochs={warmup}", f"--lr={args.lr}", "--ema-decay=0.9998", f"--seed={seed}",
    ]  # fmt: skip
    return {
        "groupwise": [*PROBE, "--count-steps", *groupwise],
        "timm": [*PROBE, "--count-steps", *timm_script],
    }


def run(command: list[str], images_per_epoch: int, epochs: int) -> dict:
    """Run one contestant; its throughput from the probe's step clock."""
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=ENV)
    if result.returncode != 0:
        raise SystemExit(f"{command[3]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("steps "))
    steps, first, last, first_cpu, last_cpu = (float(v) for v in line.split()[1:])
    images = images_per_epoch * epochs * (steps - 1) / steps  # after the first step
    return {
        "steps": int(steps),
        "images_per_s": images / (last - first),
        "images_per_cpu_s": images / (last_cpu - first_cpu),
    }


def accuracies(name: str, out: Path, seed: int) -> dict:
    if name == "timm":
        final = json.loads((out / f"timm_{seed}.json").read_text())
        return {"acc": final["acc"], "ema_acc": final["ema_acc"]}
    metrics = json.loads((out / f"groupwise_{seed}" / "metrics.json").read_text())
    return {"acc": metrics["val/acc"], "ema_acc": metrics["val_ema/acc"]}


def summary(results: dict) -> tuple[list[str], dict]:
    """The table's rows (mean ± std over seeds) and the ratios groupwise / timm."""
    keys = ("acc", "ema_acc", "images_per_s", "images_per_cpu_s")
    mean = {n: {k: statistics.mean(r[k] for r in rs) for k in keys} for n, rs in results.items()}

    def spread(name: str, key: str, scale: float, digits: int) -> str:
        values = [r[key] * scale for r in results[name]]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"

    rows = [
        "| contestant | val acc (%) | EMA val acc (%) | images/s | images/CPU-s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in results:
        cells = [spread(name, "acc", 100, 1), spread(name, "ema_acc", 100, 1)]
        cells += [spread(name, "images_per_s", 1, 0), spread(name, "images_per_cpu_s", 1, 0)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    ratios = {k: mean["groupwise"][k] / mean["timm"][k] for k in keys}
    return rows, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--warmup-epochs", type=float, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=25)
    # The experiment's 2.5e-4 (MAE's 1e-3 per 256 images) barely moves this tiny ViT in 30
    # short epochs (both contestants stay near chance); both get the same.
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--smoke", action="store_true", help="1 seed, 1 epoch, 20 images a digit")
    parser.add_argument("--out", type=Path, help="where runs and results.json go (default: temp)")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.epochs, args.warmup_epochs, args.pretrain_epochs = 1, 1, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        images, labels = digits()
        root = write_folder(out / "digits", images, labels, 20 if args.smoke else None)
        weights = pretrain(out / "pretrained.pt", images, labels, args.pretrain_epochs)
        per_epoch = sum(1 for _ in (root / "train").glob("*/*.png"))
        results = {"groupwise": [], "timm": []}
        for seed in range(args.seeds):
            runs = commands(root, weights, out, seed, args)
            for name in list(runs)[:: 1 if seed % 2 == 0 else -1]:  # alternate who goes first
                started = time.time()
                measured = run(runs[name], per_epoch, args.epochs)
                measured.update(accuracies(name, out, seed), seed=seed, wall=time.time() - started)
                results[name].append(measured)
                print(f"{name} seed {seed}: {measured}", flush=True)
        rows, ratios = summary(results)
        print("\n".join(rows))
        print("groupwise / timm: " + ", ".join(f"{k} {v:.3f}x" for k, v in ratios.items()))
        record = {"args": vars(args) | {"out": str(args.out)}, "results": results}
        (out / "results.json").write_text(json.dumps(record | {"ratios": ratios}, indent=1))
        if args.out is None:
            print(json.dumps(record["results"]))


if __name__ == "__main__":
    sys.exit(main())
