"""The study's table: mean ± std over seeds of val/acc after 5 epochs (how fast) and after the
last (where it ends), per start and shot count; the runs' val/acc curves are read back from
their event files.

Written as `fewshot_table.md` at the sweep root and printed at the end of
`python -m src.run -m experiment=fewshot_digits` (a Hydra callback configured there), or
remade from a finished sweep: `python -m experiments.fewshot_digits.table <sweep dir>`.
"""

import statistics
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.tracking.sweep_summary import gather_rows

EARLY_EPOCH = 5
STARTS = {
    "scratch": "from scratch",
    "pretrained": "pretrained, all weights (old head kept)",
    "fc3_x1": "pretrained body + fresh fc3 x1",
    "fc3_x3": "pretrained body + fresh fc3 x3",
    "fc3_x10": "pretrained body + fresh fc3 x10",
    "fc3_x30": "pretrained body + fresh fc3 x30",
    "fc3_x100": "pretrained body + fresh fc3 x100",
}


class FewshotTable(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)  # one sweep's: src.config.sweep refuses a used one
        write_table(sweep_dir, gather_rows(sweep_dir))


def write_table(sweep_dir: Path, rows: list[dict]) -> None:
    markdown = format_table(sweep_dir, rows)
    (sweep_dir / "fewshot_table.md").write_text(markdown + "\n")
    print(markdown, flush=True)


def format_table(sweep_dir: Path, rows: list[dict]) -> str:
    curves: dict[tuple[str, int], list[list[float]]] = {}
    for row in rows:
        overrides = dict(o.split("=", 1) for o in row["overrides"].split())
        if row["status"] == "completed":
            key = (overrides["fewshot"], int(overrides["dataset.shots_per_class"]))
            curves.setdefault(key, []).append(_val_acc_curve(row["path"]))
    shots = sorted({s for _, s in curves})
    last = max(len(curve) for runs in curves.values() for curve in runs)
    early = min(EARLY_EPOCH, last)
    header = [f"{s} shots, epoch {e}" for s in shots for e in (early, last)]
    lines = ["| start | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for start, label in STARTS.items():
        cells = []
        for s in shots:
            runs = curves.get((start, s), [])
            cells += [_mean_std([c[early - 1] for c in runs]), _mean_std([c[-1] for c in runs])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = {len(runs) for runs in curves.values()}
    lines.append(f"\nval/acc, mean ± std over {', '.join(map(str, sorted(n)))} seeds")
    return "\n".join(lines)


def _val_acc_curve(run_dir: Path) -> list[float]:
    curve = []
    # File by file (a resumed run has several): a whole dir is watched, and logged about.
    for event_file in sorted(run_dir.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        events.Reload()
        curve += [e.value for e in events.Scalars("val/acc")]
    return curve


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


if __name__ == "__main__":
    sweep_dir = Path(sys.argv[1])
    write_table(sweep_dir, gather_rows(sweep_dir))
