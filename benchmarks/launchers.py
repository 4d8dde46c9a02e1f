"""4 sweep jobs on this machine: Hydra's basic launcher (one job after another, each with all of
torch's threads) against hydra/launcher=joblib (jobs side by side in worker processes, torch's
threads shared out among them). Wall time of the whole multirun command, measured alternately
in the same run; prints the ratio and checks both launchers trained the same numbers.

    python benchmarks/launchers.py            (needs: pip install -e ".[joblib]")
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def sweep(launcher: str, sweep_dir: Path, epochs: int) -> tuple[float, list[str]]:
    command = [
        sys.executable,
        "-m",
        "src.run",
        "-m",
        *LAUNCHERS[launcher],
        "seed=0,1,2,3",
        f"trainer.max_epochs={epochs}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    with (sweep_dir / "summary.csv").open() as f:
        return wall, [row["val/acc"] for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="per job (the default run: 20)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; 4 jobs of {args.epochs} epochs each; {args.repeats} repeats")
    walls: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    accs: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in LAUNCHERS:  # alternate, so both see the same background load
                wall, accs[name] = sweep(name, Path(tmp) / f"{name}{repeat}", args.epochs)
                walls[name].append(wall)
                print(f"  {name:7s} repeat {repeat}: {wall:6.1f} s", flush=True)
    for name, values in walls.items():
        print(f"{name:7s} median {statistics.median(values):6.1f} s  (all: {values})")
    ratio = statistics.median(walls["basic"]) / statistics.median(walls["joblib"])
    print(f"basic / joblib wall time: {ratio:.2f}x")
    print("same val/acc per job with both launchers:", accs["basic"] == accs["joblib"])


if __name__ == "__main__":
    main()
