"""Soups of a digits-transfer sweep against its best job, and a soup's peak memory.

    python -m benchmarks.soups [--model lenet|vit] [--splits 3] [--seeds 3] [--epochs 3]
    python -m benchmarks.soups --smoke --out DIR  # 2 splits of 2 jobs, 1 epoch, small states

1. LeNet from the shipped digits 0-4 weights onto digits 5-9 (8 shots a class), or with
   `--model vit` the tiny timm ViT of recipe_vs_timm.py, pretrained here on digits 0-4 with a
   plain loop (`--pretrain-epochs`): for each of `--splits` splits (dataset.split_seed), a
   sweep of the head's lr multipliers x seeds,
   then `src.soup` and `src.evaluate sweep_dir=`; prints the best job's, the uniform soup's and
   the greedy soup's val and test accuracy on each split, and whether each soup's lead over the
   best job on test is beyond seed noise: the sweep summary's own test (src/tracking/
   sweep_stats.py), paired over the splits (each split a replicate: its images, its sweep).
2. Peak memory (ru_maxrss of a fresh process) of averaging N checkpoints of a 25M-parameter
   state, one at a time from memory-mapped files, against loading one: the soup holds about
   two models, never N.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.recipe_vs_timm import MODEL, MODEL_ARGS, digits, pretrain
from src.tracking.sweep_stats import Setting, Verdict, verdict

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import resource, sys, torch
from pathlib import Path
from src.soups.average import RunningSum, mapped_weights
paths = sorted(Path(sys.argv[1]).glob('*.pt'))[: int(sys.argv[2])]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[3] == 'all':  # the baseline: every ingredient in memory at once
    states = [torch.load(path, weights_only=True)['model'] for path in paths]
else:
    pot = RunningSum()
    for path in paths:
        pot.add(mapped_weights(path)[0])
    soup = pot.average()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def model_options(model: str, work: Path, pretrain_epochs: int) -> list[str]:
    """The sweep's model, its pretrained digits 0-4 weights and its head's group."""
    if model == "lenet":  # the shipped weights (pretrained=digits_0to4, the default)
        return ["param_groups=fc3_boost"]
    weights = pretrain(work / "vit_digits_0to4.pt", *digits(), pretrain_epochs)
    return [
        "model=timm", f"model.name={MODEL}",
        *(f"+model.{k}={v}" for k, v in MODEL_ARGS.items() if k != "img_size"),
        f"pretrained.path={weights}", "pretrained.adapt_input_channels=true",
        "optimizer=adamw", "optimizer.lr=1e-3", "param_groups=head_boost",
    ]  # fmt: skip


def sweep_figures(work: Path, split: int, args, model: list[str], multipliers: str) -> dict:
    """name -> (val/acc, test/acc, jobs in it) of the best job and the two soups, on `split`."""
    sweep_dir = work / f"sweep_split{split}"
    seed_list = ",".join(str(s) for s in range(args.seeds))
    common = [
        "dataset.shots_per_class=8",
        f"dataset.split_seed={split}",
        f"trainer.max_epochs={args.epochs}",
    ]
    head = model[-1].removeprefix("param_groups=").removesuffix("_boost")  # fc3 or head
    run = [sys.executable, "-m", "src.run", "-m", *model, *common]
    run += [
        f"param_groups.{head}.lr_mult={multipliers}",
        f"seed={seed_list}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    for command in (
        run,
        [sys.executable, "-m", "src.soup", f"sweep_dir={sweep_dir}"],
        [sys.executable, "-m", "src.evaluate", f"sweep_dir={sweep_dir}"],
    ):
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    figures = {}
    for kind in ("uniform", "greedy"):
        soup_dir = sweep_dir / "soups" / kind
        soup = json.loads((soup_dir / "soup.json").read_text())
        test = json.loads((soup_dir / "eval_test.json").read_text())["accuracy"]
        best = max(soup["ingredients"], key=lambda ingredient: ingredient["val_acc"])
        best_test = json.loads((Path(best["run_dir"]) / "eval_test.json").read_text())["accuracy"]
        used = sum(ingredient["in_soup"] for ingredient in soup["ingredients"])
        figures["best job"] = (best["val_acc"], best_test, 1)
        figures[f"{kind} soup"] = (soup["val_acc"], test, used)
    return figures


def peak_memory(work: Path, counts: list[int], side: int) -> dict[int, tuple[float, float]]:
    import torch

    state = {f"layer{i}.weight": torch.randn(side, side) for i in range(25)}  # 100 MB at 1000
    for n in range(max(counts)):
        torch.save(
            {"model": state, "config": {"trainer": {"monitor": "val/acc"}}}, work / f"{n}.pt"
        )
    peaks = {}
    for n in counts:
        peaks[n] = tuple(
            float(subprocess.run(
                [sys.executable, "-c", PROBE, str(work), str(n), mode],
                cwd=ROOT, check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1])
            for mode in ("soup", "all")
        )  # fmt: skip
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["lenet", "vit"], default="lenet")
    parser.add_argument("--pretrain-epochs", type=int, default=25, help="the ViT's, on 0-4")
    parser.add_argument("--splits", type=int, help="default: 3 (--smoke: 2)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="every part, at a tiny size")
    parser.add_argument("--out", type=Path, help="also write the figures to DIR/results.json")
    args = parser.parse_args()
    # AdamW's base lr is 1e-3: x100 would put the ViT's head at 0.1
    multipliers = "1,10,100" if args.model == "lenet" else "1,3,10"
    counts, side = [1, 4, 8], 1000
    if args.smoke:  # the figures mean nothing: only that each part runs and reports
        args.splits, args.seeds, args.epochs, args.pretrain_epochs = args.splits or 2, 1, 1, 1
        multipliers = ",".join(multipliers.split(",")[::2])  # the lowest and the highest
        counts, side = [1, 2], 400
    args.splits = args.splits or 3
    results = {}
    if not args.memory_only:
        results["splits"] = sweep(args, multipliers)
    with tempfile.TemporaryDirectory() as tmp:
        peaks = peak_memory(Path(tmp), counts, side)
    model_mb = 25 * side * side * 4 / 1e6
    print(f"peak memory added by averaging N checkpoints of {model_mb:.0f} MB (one model)")
    for n, (soup, loaded) in peaks.items():
        ratio = f"{loaded / soup:.1f}x" if soup else "the soup added nothing measurable"
        print(f"N={n}: soup {soup:.0f} MiB; all N loaded {loaded:.0f} MiB ({ratio})")
    results["peak_mib"] = {n: {"soup": soup, "all": loaded} for n, (soup, loaded) in peaks.items()}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))


def sweep(args, multipliers: str) -> dict:
    per_split = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = model_options(args.model, Path(tmp), args.pretrain_epochs)
        for split in range(args.splits):
            per_split[split] = sweep_figures(Path(tmp), split, args, model, multipliers)
    name = "LeNet" if args.model == "lenet" else f"ViT ({MODEL}, {MODEL_ARGS})"
    print(
        f"{name} digits 0-4 -> 5-9, 8 shots, head lr_mult {multipliers} x {args.seeds} seeds, "
        f"{args.epochs} epochs, on each of {args.splits} splits"
    )
    print(f"{'split':>5} {'model':<14} {'jobs':>4} {'val/acc':>8} {'test/acc':>8}")
    for split, figures in per_split.items():
        for name, (val, test, used) in figures.items():
            print(f"{split:>5} {name:<14} {used:>4} {val:>8.4f} {test:>8.4f}")
    best = replicates("best job", per_split)
    for kind in ("uniform soup", "greedy soup"):
        print(seed_noise(verdict(replicates(kind, per_split), best, "test/acc", "split")))
    return {
        split: {
            name: dict(zip(("val", "test", "jobs"), row, strict=True))
            for name, row in figures.items()
        }
        for split, figures in per_split.items()
    }


def replicates(name: str, per_split: dict) -> Setting:
    """One model kind's test accuracy on each split, as the sweep summary's test takes a
    setting's seeds: the split seed is the replicate the soup and the best job share."""
    jobs = [
        {"replicate": (split,), "status": "completed", "test/acc": figures[name][1]}
        for split, figures in per_split.items()
    ]
    return Setting({"model": name}, jobs)


def seed_noise(found: Verdict) -> str:
    name = found.winner.values["model"]
    line = f"{name} - best job on test: {found.lead:+.4f} mean over splits; {found.test}"
    if found.p is None:
        return line
    said = "beyond the noise between splits" if found.beyond_noise else "within the noise"
    needed = f" ({found.seeds_needed} splits would settle it)" if found.seeds_needed else ""
    return f"{line}, p = {found.p:.3f}: {said}{needed}"


if __name__ == "__main__":
    main()
