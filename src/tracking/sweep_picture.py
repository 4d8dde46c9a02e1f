"""`sweep.png` beside summary.md: per setting the mean and spread over seeds of the ranking
metric (and of test/acc once evaluated), each seed a faint point linked across settings, the
winner starred when there is one, the answer in words ("no clear winner: ...") and the
sweep's fixed settings in the title; for a sweep looked at in a terminal, a
notebook or a pull request rather than in TensorBoard.

matplotlib draws it: the plotting library people already read, an optional extra
(`pip install -e ".[plot]"`), imported only here, at the end of a multirun, so a run's
start-up does not grow. TensorBoard's image tab would need a browser, the thing this picture
is for doing without.
"""

import textwrap
from pathlib import Path

from src.tracking import sweep_answer
from src.tracking.hparams import shown
from src.tracking.sweep_answer import setting_name
from src.tracking.sweep_tables import Report

FILE = "sweep.png"
NEEDS_MATPLOTLIB = 'the sweep picture needs matplotlib: pip install -e ".[plot]"'


def write(sweep_dir: Path, rows: list[dict], report: Report) -> str:
    """Draws the picture of the sweep's `report` and says in one line where it is, or why
    there is none."""
    if not report.swept:
        return "no sweep picture: the sweep varies nothing"
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        from matplotlib import pyplot as plt
    except ImportError:
        return NEEDS_MATPLOTLIB
    panels = (report.rank_by, "test/acc")
    metrics = [m for m in panels if m in report.metrics] or [report.rank_by]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False, layout="constrained"
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        _panel(ax, metric, report)
    fixed = " ".join(rows[0]["fixed"]) if rows else ""
    pooled = ", ".join(report.replicate_keys) or "nothing"
    star = f", ★: the winner (mean {metrics[0]})" if report.winner else ""
    title = f"mean ± std over {pooled}, faint: each {pooled}{star}"
    answer = sweep_answer.answer_line(report.settings, report.verdicts, report.pruned).replace(
        "**", ""
    )
    width = 60 * len(metrics)
    lines = [
        *textwrap.wrap(answer, width),
        *textwrap.wrap(f"fixed: {fixed or 'nothing'}", width),
        *textwrap.wrap(title, width),
    ]
    fig.suptitle("\n".join(lines), fontsize=9)
    path = sweep_dir / FILE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"sweep picture: {path}"


def _panel(ax, metric: str, report: Report) -> None:
    x, labels, scale = _positions(report)
    replicates: dict[tuple, list] = {}
    for setting in report.settings:
        at = x[id(setting)]
        for replicate, score in setting.scores(metric).items():
            replicates.setdefault(replicate, []).append((at, score))
    for points in replicates.values():  # each seed, linked across settings
        points.sort()
        ax.plot(*zip(*points, strict=True), color="tab:blue", alpha=0.25, marker="o", lw=1)
    for setting in report.settings:
        mean, std = setting.mean(metric), setting.std(metric)
        at, won = x[id(setting)], setting is report.winner
        ax.errorbar(at, mean, yerr=0 if std != std else std, color="black", capsize=4, zorder=3)
        ax.plot(
            at, mean, marker="*" if won else "s", ms=16 if won else 6, zorder=4,
            color="tab:orange" if won else "black",
        )  # fmt: skip
    every = report.settings + report.unfinished
    pruned = [(x[id(s)], job[metric]) for s in every for job in s.pruned if metric in job]
    if pruned:  # each at its best.pt's figure, of the epochs it reached: no setting's mean
        ax.scatter(
            *zip(*pruned, strict=True), marker="v", color="tab:gray", zorder=2,
            label=f"pruned job ({len(pruned)}), at the epoch it reached",
        )  # fmt: skip
    failed = [x[id(s)] for s in every for _ in s.failed]
    if failed:  # no metric: along the panel's bottom edge, below every completed job
        ax.scatter(
            failed, [0.03] * len(failed), transform=ax.get_xaxis_transform(), marker="x",
            color="tab:red", clip_on=False, label=f"failed job ({len(failed)})",
        )  # fmt: skip
    if failed or pruned:
        ax.legend(loc="best")
    if scale == "log":
        ax.set_xscale("log")  # lr and multipliers are swept over decades
    slots = scale == "slots"  # names, long: slanted
    ax.set_xticks(
        sorted(set(x.values())),
        labels,
        rotation=20 if slots else 0,
        ha="right" if slots else "center",
    )
    ax.minorticks_off()
    ax.set_xlabel(", ".join(_varied(report)) or "setting")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)


def _positions(report: Report) -> tuple[dict[int, float], list[str], str]:
    """Each setting's x (by id), the tick labels in x order, and the scale: the values
    themselves for one numeric key ("log" or "linear"), one slot per setting otherwise."""
    keys = _varied(report)
    every = report.settings + report.unfinished
    values = [s.values[keys[0]] for s in every] if len(keys) == 1 else []
    numeric = values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if numeric:
        log = min(values) > 0 and max(values) / min(values) >= 100
        x = {id(s): float(v) for s, v in zip(every, values, strict=True)}
        return x, [shown(v) for v in sorted(set(values))], "log" if log else "linear"
    ordered = sorted(every, key=lambda s: [str(v) for v in s.values.values()])
    x = {id(s): float(i) for i, s in enumerate(ordered)}
    return x, [setting_name(s) for s in ordered], "slots"


def _varied(report: Report) -> list[str]:
    return [k for k in report.swept if k not in report.replicate_keys]
