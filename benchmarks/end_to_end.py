"""The default job, whole process: the run against the same recipe written by hand.

    python -m benchmarks.end_to_end [--rounds 5] [--compare-with ../main]

`python -m src.run param_groups=fc3_boost` against `handwritten_fc3_boost.py` (plain PyTorch,
the same data, model, weights, groups, schedule, TensorBoard scalars and a final checkpoint).
Target: the run at <= 1.10x the script's time. Both start through `startup_probe.py`, which
reports each one's first optimizer step and lets it run to its end; rounds rotate the order
after a warm-up round (see startup.py). Printed: medians of wall-clock and CPU seconds from
spawn to the first step and to exit, and the run's ratios to the script.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.startup import PROBE, ROOT, Timing, time_rounds

RUN = "python -m src.run param_groups=fc3_boost"
HANDWRITTEN = "python -m benchmarks.handwritten_fc3_boost"
COLUMNS = {  # Timing field: heading
    "first_step": "first step",
    "exit": "exit",
    "first_step_cpu": "CPU to 1st",
    "cpu": "CPU",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare-with", type=Path, help="another checkout whose run to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        run_args = ["src.run", "param_groups=fc3_boost", f"hydra.run.dir={out}"]
        commands = {
            RUN: [*PROBE, *run_args],
            HANDWRITTEN: [*PROBE, "benchmarks.handwritten_fc3_boost", str(out)],
        }
        cwd = {}
        if args.compare_with:
            other = f"{RUN} in {args.compare_with}"
            # This checkout's probe, that checkout's `src` (the current dir is on sys.path).
            probe_file = ROOT / "benchmarks" / "startup_probe.py"
            probe = f"import runpy; runpy.run_path({str(probe_file)!r}, run_name='__main__')"
            commands[other] = [sys.executable, "-c", probe, *run_args]
            cwd[other] = args.compare_with.resolve()
        timings = time_rounds(commands, args.rounds, lambda: shutil.rmtree(out, True), cwd)
    print(f"median of {args.rounds} rounds (after a warm-up round), seconds from spawn")
    print(f"  {'':<45}" + "".join(f"{heading:>12}" for heading in COLUMNS.values()))
    for name, ts in timings.items():
        print(f"  {name:<45}" + "".join(f"{_median(ts, key):12.2f}" for key in COLUMNS))
    handwritten = timings[HANDWRITTEN]
    for name in (n for n in timings if n != HANDWRITTEN):
        _compare(name, timings[name], handwritten)


def _compare(name: str, run: list[Timing], handwritten: list[Timing]) -> None:
    print(f"{name} / hand-written:")
    for key, what in (("exit", "wall clock"), ("cpu", "CPU time")):
        ratios = [getattr(r, key) / getattr(h, key) for r, h in zip(run, handwritten, strict=True)]
        print(
            f"  whole process, {what}: "
            f"{_median(run, key) / _median(handwritten, key):.3f}x of the medians, "
            f"{statistics.median(ratios):.3f}x median of per-round ratios "
            f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
    for key, what in (("first_step", "wall clock"), ("first_step_cpu", "CPU time")):
        extra = [getattr(r, key) - getattr(h, key) for r, h in zip(run, handwritten, strict=True)]
        print(f"  extra before the first step, {what}: {statistics.median(extra):+.2f} s (median)")


def _median(timings: list[Timing], key: str) -> float:
    return statistics.median(getattr(t, key) for t in timings)


if __name__ == "__main__":
    main()
