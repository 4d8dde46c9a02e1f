"""The default run on cores that other processes keep busy (one `while True: pass` per CPU this
process may use, started here): automatic threads (trainer.threads=null, this run's default)
against torch's default (one thread per CPU it sees), and one thread for reference. Wall time of
the whole command, variants measured alternately in the same run; prints the ratio.

    python benchmarks/threads_under_load.py [--epochs 20] [--repeats 3]

On a machine whose CPUs this process may all use, automatic threads and torch's default are the
same number: the ratio is ~1 there, and the difference shows in a container or allocation given
fewer CPUs than the machine has (a cgroup quota, which torch's default does not see).
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def timed_run(overrides: list[str], run_dir: Path) -> float:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    command = [sys.executable, "-m", "src.run", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=environment, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    variants = {
        "automatic (trainer.threads=null)": [],
        f"torch's default ({torch.get_num_threads()} threads)": [
            f"trainer.threads={torch.get_num_threads()}"
        ],
        "trainer.threads=1": ["trainer.threads=1"],
    }
    print(
        f"{platform.processor() or platform.machine()}, {cpus} CPUs this process may use, "
        f"load average before {os.getloadavg()[0]:.2f}; {cpus} busy loop(s) started; "
        f"default run, {args.epochs} epochs; {args.repeats} repeats"
    )
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for repeat in range(args.repeats):
                for name, overrides in variants.items():
                    run_dir = Path(scratch) / f"{len(times[name])}-{repeat}-{hash(name)}"
                    times[name].append(
                        timed_run([f"trainer.max_epochs={args.epochs}", *overrides], run_dir)
                    )
                    print(f"  {name}: {times[name][-1]:.1f} s", flush=True)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    for name, seconds in times.items():
        listed = ", ".join(f"{s:.1f}" for s in seconds)
        print(f"{name:<36} {listed} s; median {statistics.median(seconds):.1f} s")
    automatic, default = (statistics.median(s) for s in list(times.values())[:2])
    print(f"torch's default / automatic wall time: {default / automatic:.2f}x")


if __name__ == "__main__":
    main()
