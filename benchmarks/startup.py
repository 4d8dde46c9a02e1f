"""Time from the command to the first training step, against the floor of any PyTorch vision
script: `python -c "import torch, torchvision"`. Target: at most the floor + 1.5 s.

    python benchmarks/startup.py [--rounds 5]

Each round runs every command once, in rotating order, so other load falls on all alike.
A run's first training step is the moment its optimizer first steps: `startup_probe.py`
starts the real entry point with a global optimizer hook that reports the time and exits.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = [sys.executable, str(ROOT / "benchmarks" / "startup_probe.py")]
# One intra-op thread: on a shared machine the first step's two threads spin-wait for a busy
# core (measured: ResNet-18's first step 6 s with 2 threads, 0.3 s with 1, under load).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def commands(tmp: Path) -> dict[str, list[str]]:
    sys.path.insert(0, str(ROOT))
    from tests.generated_data import write_image_folder

    photos = write_image_folder(tmp / "photos", per_class=8)
    common = [f"hydra.run.dir={tmp}/run"]
    return {
        "import torch, torchvision (floor)": [sys.executable, "-c", "import torch, torchvision"],
        "python -m src.run (LeNet, digits)": [*PROBE, *common],
        "python -m src.run model=resnet18 dataset=image_folder": [
            *PROBE,
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
        names = list(runs)
        seconds = {name: [] for name in names}
        for round_index in range(args.rounds + 1):  # round 0 warms the file cache
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                subprocess.run(["rm", "-rf", f"{tmp}/run"], check=True)
                start = time.time()
                result = subprocess.run(
                    runs[name], capture_output=True, text=True, cwd=ROOT, env=ENV
                )
                end = time.time()
                if result.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{result.stderr}")
                first_step = [
                    ln for ln in result.stdout.splitlines() if ln.startswith("first_step")
                ]
                if first_step:
                    end = float(first_step[0].split()[1])
                if round_index:
                    seconds[name].append(end - start)
    floor = statistics.median(seconds[names[0]])
    print(f"median of {args.rounds} rounds, seconds from the command to its first training step")
    for name in names:
        median = statistics.median(seconds[name])
        print(f"  {name:<55} {median:5.2f} s   floor {median - floor:+.2f} s")


if __name__ == "__main__":
    main()
