"""4 sweep jobs on this machine: Hydra's basic launcher (one job after another, each with all of
torch's threads) against hydra/launcher=joblib (jobs side by side in worker processes, torch's
threads shared out among them). Wall time of the whole multirun command, measured alternately
in the same run; prints the ratios and checks the launchers trained the same numbers.
"basic, 1 thread" (OMP_NUM_THREADS=1) tells apart what running jobs side by side buys from
what one thread per job buys.

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
# name: (overrides, environment)
LAUNCHERS = {
    "basic": ([], {}),
    "basic, 1 thread": ([], {"OMP_NUM_THREADS": "1"}),
    "joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], {}),
}


def sweep(launcher: str, sweep_dir: Path, epochs: int) -> tuple[float, list[str]]:
    overrides, env = LAUNCHERS[launcher]
    command = [
        sys.executable,
        "-m",
        "src.run",
        "-m",
        *overrides,
        "seed=0,1,2,3",
        f"trainer.max_epochs={epochs}",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=os.environ | env)
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
            for i, name in enumerate(LAUNCHERS):  # in turn, so all see the same background load
                wall, accs[name] = sweep(name, Path(tmp) / f"{repeat}-{i}", args.epochs)
                walls[name].append(wall)
                print(f"  {name:15s} repeat {repeat}: {wall:6.1f} s", flush=True)
    joblib = statistics.median(walls["joblib"])
    for name, values in walls.items():
        median = statistics.median(values)
        print(
            f"{name:15s} median {median:6.1f} s, {median / joblib:.2f}x joblib's  "
            f"(all: {', '.join(f'{v:.1f}' for v in values)})"
        )
    print("val/acc per job:", accs["basic"])
    print("the same with every launcher:", len({tuple(a) for a in accs.values()}) == 1)


if __name__ == "__main__":
    main()
