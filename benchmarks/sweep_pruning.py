"""A grid of 8 head multipliers x 3 seeds on the digits transfer (the default run: LeNet
pretrained on digits 0-4, fine-tuned on 5-9), run in full (Hydra's basic sweeper: every job its
whole budget) and pruned (hydra/sweeper=pruning: each job stopped where it trails the jobs of
its own seed), both with two joblib workers. Prints per sweep the epochs and seconds spent and
the answer of its summary.md (a winner, or "no clear winner"), and whether the two agree.

The grid is listed in a mixed order, neither best-first (which would flatter pruning: every
later job trails) nor worst-first (each new job leads, nothing is pruned).

    python -m benchmarks.sweep_pruning [--epochs 10] [--out DIR]   (pip install -e ".[optuna,joblib]")
    python -m benchmarks.sweep_pruning --smoke                      (the test's: 8 epochs, 8 shots)
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MULTS = "1,100,0.1,10,0.03,30,0.3,3"  # 8 settings, mixed order
SEEDS = "0,1,2"
SWEEPERS = {
    "full": ["hydra/sweeper=basic"],
    "pruned": ["hydra/sweeper=pruning", "hydra.sweeper.n_jobs=2"],
}


def run_sweep(name: str, sweep_dir: Path, epochs: int, smoke: bool) -> dict:
    command = [
        sys.executable, "-m", "src.run", "-m", *SWEEPERS[name],
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "param_groups=fc3_boost",
        f"param_groups.fc3.lr_mult={MULTS}", f"seed={SEEDS}", f"trainer.max_epochs={epochs}",
        f"hydra.sweep.dir={sweep_dir}",
        *(["dataset.shots_per_class=8", "dataset.batch_size=8"] if smoke else []),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    with (sweep_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    answer = next(
        line
        for line in (sweep_dir / "summary.md").read_text().splitlines()
        if line.startswith(("**winner", "**no clear winner"))
    )
    return {
        "jobs": len(rows),
        "pruned": sum(row["status"] == "pruned" for row in rows),
        "epochs": sum(int(row["epochs"]) for row in rows),
        "full_epochs": len(rows) * epochs,
        "seconds": round(seconds, 1),
        "answer": answer,
        # `**winner[ among ...]: lr_mult=100**, ...`: the setting named
        "winner": answer.split("**")[1].rsplit(": ", 1)[1]
        if answer.startswith("**winner")
        else "no clear winner",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="8 epochs of 8 shots a digit")
    parser.add_argument("--out", type=Path, default=None, help="where results.json goes")
    args = parser.parse_args()
    epochs = 8 if args.smoke else args.epochs
    print(f"{os.cpu_count()} cores; lr_mult={MULTS} x seed={SEEDS}; {epochs} epochs a job")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SWEEPERS:
            results[name] = run_sweep(name, Path(tmp) / name, epochs, args.smoke)
    print("| sweep | jobs | pruned | epochs | of the full grid | seconds | answer |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        share = r["epochs"] / r["full_epochs"]
        print(
            f"| {name} | {r['jobs']} | {r['pruned']} | {r['epochs']} | {share:.0%} | "
            f"{r['seconds']} | {r['winner']} |"
        )
    same = results["full"]["winner"] == results["pruned"]["winner"]
    print(f"the same answer: {'yes' if same else 'no'}")
    print(f"pruned / full: epochs {results['pruned']['epochs'] / results['full']['epochs']:.2f}, "
          f"seconds {results['pruned']['seconds'] / results['full']['seconds']:.2f}")  # fmt: skip
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {"epochs": epochs, "smoke": args.smoke, "results": results, "same_answer": same}
        (args.out / "results.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
