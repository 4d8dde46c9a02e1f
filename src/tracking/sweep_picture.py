"""`sweep.png` beside summary.md: the final metric against each swept key, one panel per key,
one point per job, failed jobs marked; for a sweep looked at in a terminal, a notebook or a
pull request rather than in TensorBoard.

matplotlib draws it: the plotting library people already read, an optional extra
(`pip install -e ".[plot]"`), imported only here, at the end of a multirun, so a run's
start-up does not grow. TensorBoard's image tab would need a browser, the thing this picture
is for doing without.
"""

import math
from pathlib import Path

FILE = "sweep.png"
METRIC = "val/acc"
NEEDS_MATPLOTLIB = 'the sweep picture needs matplotlib: pip install -e ".[plot]"'


def write(sweep_dir: Path, rows: list[dict]) -> str:
    """Draws the picture of `rows` (the summary's, each with its job's `swept` values) and
    says in one line where it is, or why there is none."""
    keys = list(dict.fromkeys(key for row in rows for key in row.get("swept", {})))
    if not keys:
        return "no sweep picture: the sweep varies nothing"
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        from matplotlib import pyplot as plt
    except ImportError:
        return NEEDS_MATPLOTLIB
    fig, axes = plt.subplots(
        1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False, layout="constrained"
    )
    for ax, key in zip(axes[0], keys, strict=True):
        _panel(ax, key, rows)
    fig.suptitle(f"final {METRIC} of each job; red x: a failed job")
    path = sweep_dir / FILE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"sweep picture: {path}"


def _panel(ax, key: str, rows: list[dict]) -> None:
    values = [row["swept"].get(key) for row in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        positions = values
        if min(values) > 0 and max(values) / min(values) >= 100:
            ax.set_xscale("log")  # lr and multipliers are swept over decades
        if len(set(values)) <= 10:
            ax.set_xticks(sorted(set(values)), [f"{v:g}" for v in sorted(set(values))])
    else:  # group choices, lists: one slot per value, in the order first met
        labels = list(dict.fromkeys(str(v) for v in values))
        positions = [labels.index(str(v)) for v in values]
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    done = [(x, row[METRIC]) for x, row in zip(positions, rows, strict=True) if _ok(row)]
    failed = [x for x, row in zip(positions, rows, strict=True) if not _ok(row)]
    if done:
        ax.scatter(*zip(*done, strict=True), color="tab:blue")
    if failed:  # no metric: along the panel's bottom edge, below every completed job
        ax.scatter(
            failed,
            [0.03] * len(failed),
            transform=ax.get_xaxis_transform(),
            marker="x",
            color="tab:red",
            clip_on=False,
        )
    _fit_x(ax, positions)  # failed jobs' marks do not widen the axis by themselves
    ax.set_xlabel(key)
    ax.set_ylabel(METRIC)
    ax.grid(alpha=0.3)


def _fit_x(ax, positions: list[float]) -> None:
    lo, hi = min(positions), max(positions)
    if ax.get_xscale() == "log":
        ax.set_xlim(lo / 1.5, hi * 1.5)
    else:
        pad = (hi - lo) * 0.08 or 0.5
        ax.set_xlim(lo - pad, hi + pad)


def _ok(row: dict) -> bool:
    value = row[METRIC]
    return row["status"] == "completed" and isinstance(value, float) and math.isfinite(value)
