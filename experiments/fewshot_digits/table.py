"""The study's table: mean ± std of the final val/acc over seeds, per start and shot count.

Written as `fewshot_table.md` at the sweep root and printed at the end of
`python -m src.run -m experiment=fewshot_digits` (a Hydra callback configured there), or
remade from a finished sweep: `python -m experiments.fewshot_digits.table <sweep dir>`.
"""

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.sweep_summary import gather_rows

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
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.sweep_started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_table(sweep_dir, gather_rows(sweep_dir, since=self.sweep_started))


def write_table(sweep_dir: Path, rows: list[dict]) -> None:
    markdown = format_table(rows)
    (sweep_dir / "fewshot_table.md").write_text(markdown + "\n")
    print(markdown, flush=True)


def format_table(rows: list[dict]) -> str:
    accs: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        overrides = dict(o.split("=", 1) for o in row["overrides"].split())
        if row["status"] == "completed":
            key = (overrides["fewshot"], int(overrides["dataset.shots_per_class"]))
            accs.setdefault(key, []).append(float(row["val/acc"]))
    shots = sorted({s for _, s in accs})
    lines = [
        "| start | " + " | ".join(f"{s} shots/class: val/acc" for s in shots) + " |",
        "|---|" + "---|" * len(shots),
    ]
    for start, label in STARTS.items():
        cells = [_mean_std(accs.get((start, s), [])) for s in shots]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (n={len(values)})"


if __name__ == "__main__":
    sweep_dir = Path(sys.argv[1])
    write_table(sweep_dir, gather_rows(sweep_dir))
