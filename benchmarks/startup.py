"""Time from the command to the first training step, against the floor of any PyTorch vision
script: `python -c "import torch, torchvision"`. Target: at most the floor + 1.5 s.

    python -m benchmarks.startup [--rounds 5]

Each round runs every command once, in rotating order, so other load falls on all alike.
A run's first training step is the moment its optimizer first steps: `startup_probe.py`
starts the real entry point with a global optimizer hook that reports the time and exits.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.generated_data import write_image_folder

ROOT = Path(__file__).resolve().parents[1]
PROBE = [sys.executable, "-m", "benchmarks.startup_probe"]
# One intra-op thread: on a shared machine the first step's two threads spin-wait for a busy
# core (measured: ResNet-18's first step 6 s with 2 threads, 0.3 s with 1, under load).
# Bytecode cached as Python does by default: a machine that sets PYTHONDONTWRITEBYTECODE (this
# project's CI VM does) recompiles src/ in every run, ~0.2 s that no user's install pays.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "OMP_NUM_THREADS": "1",
}


@dataclass
class Timing:
    """Seconds from spawning a command to its first optimizer step (None: it has none) and to
    its exit, and the CPU seconds it used (user + system) until then: on a loaded machine CPU
    time leaves out the waits for a core."""

    first_step: float | None
    exit: float
    first_step_cpu: float | None
    cpu: float


def time_rounds(
    commands: dict[str, list[str]],
    rounds: int,
    before_each: Callable[[], None],
    cwd: dict[str, Path] | None = None,
) -> dict[str, list[Timing]]:
    """Run every command once per round, in an order that rotates between rounds, after a
    warm-up round that fills the file cache and is not counted. `before_each` clears what
    the previous command left (its run dir); `cwd`: where a command runs, if not here."""
    names = list(commands)
    timings = {name: [] for name in names}
    for round_index in range(rounds + 1):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            before_each()
            cpu_before = _children_cpu()
            start = time.time()
            result = subprocess.run(
                commands[name],
                capture_output=True,
                text=True,
                cwd=(cwd or {}).get(name, ROOT),
                env=ENV,
            )
            end = time.time()
            cpu = _children_cpu() - cpu_before
            if result.returncode != 0:
                raise SystemExit(f"{name} failed:\n{result.stderr}")
            if round_index:
                first = _first_step(result.stdout)
                timings[name].append(
                    Timing(
                        first_step=first[0] - start if first else None,
                        exit=end - start,
                        first_step_cpu=first[1] if first else None,
                        cpu=cpu,
                    )
                )
    return timings


def _first_step(stdout: str) -> tuple[float, float] | None:
    """(unix time, CPU seconds) of `first_step <unix time> <CPU seconds>` (startup_probe.py)."""
    for line in stdout.splitlines():
        if line.startswith("first_step "):
            at, cpu = line.split()[1:]
            return float(at), float(cpu)
    return None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# The floor's "first step" is the end of its imports: the runs are timed to their first step,
# before the interpreter's exit (~2 s of it on this VM), so the floor must be too.
FLOOR = (
    "import time, torch, torchvision; "
    "print('first_step', time.time(), time.process_time(), flush=True)"
)


def commands(tmp: Path) -> dict[str, list[str]]:
    photos = write_image_folder(tmp / "photos", per_class=8)
    probe = [*PROBE, "--stop-at-first-step", "src.run"]
    common = [f"hydra.run.dir={tmp}/run"]
    return {
        "import torch, torchvision (floor)": [sys.executable, "-c", FLOOR],
        "python -m src.run (LeNet, digits)": [*probe, *common],
        "python -m src.run model=resnet18 dataset=image_folder": [
            *probe,
            "model=resnet18",
            "pretrained=none",
            "dataset=image_folder",
            f"dataset.root={photos}",
            "dataset.image_size=32",
            *common,
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(Path(tmp))
        timings = time_rounds(
            runs, args.rounds, lambda: shutil.rmtree(f"{tmp}/run", ignore_errors=True)
        )
    seconds = {name: statistics.median(t.first_step for t in ts) for name, ts in timings.items()}
    floor = seconds[next(iter(runs))]
    print(f"median of {args.rounds} rounds, seconds from the command to its first training step")
    for name, median in seconds.items():
        print(f"  {name:<55} {median:5.2f} s   floor {median - floor:+.2f} s")


if __name__ == "__main__":
    main()
