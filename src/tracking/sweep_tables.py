"""The sweep's tables: `settings.csv` (one row per setting, best first), `summary.csv` (one
row per job) and `summary.md` (both for a person, the winner marked, the verdict on its lead).

Settings are ranked by mean val/acc, the split the runs chose their checkpoints on; test/acc,
once `python -m src.evaluate sweep_dir=...` has run, is shown beside it and given its own
verdict, not used to choose (choosing on the test split would spend it).
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from src.config.sweep import short_keys
from src.tracking import sweep_stats
from src.tracking.hparams import shown
from src.tracking.sweep_stats import Setting, Verdict

RANK_BY = "val/acc"
METRICS = ("val/acc", "val/loss", "val/best_acc", "test/acc")
JOB_COLUMNS = ("run_dir", "status", *METRICS, "epochs", "wall_time_s", "torch_threads")


@dataclass
class Report:
    swept: list[str]  # every swept key, replicate keys included
    replicate_keys: list[str]  # those of them pooled
    settings: list[Setting]  # best first
    metrics: list[str]  # those any job has
    verdicts: list[Verdict]  # on RANK_BY, then test/acc once evaluated
    markdown: str = ""


def write(sweep_dir: Path, rows: list[dict], replicate_keys: list[str]) -> Report:
    swept = list(dict.fromkeys(key for row in rows for key in row.get("swept", {})))
    replicate_keys = [k for k in replicate_keys if k in swept]
    metrics = [m for m in METRICS if any(m in row for row in rows)]
    found = sweep_stats.settings(rows, swept, replicate_keys)
    ranked = sweep_stats.ranked(found, RANK_BY)
    verdicts = [
        sweep_stats.verdict(ranked[0], ranked[1], metric)
        for metric in (RANK_BY, "test/acc")
        if len(ranked) > 1 and not math.isnan(ranked[1].mean(metric))  # two settings to compare
    ]
    report = Report(swept, replicate_keys, ranked, metrics, verdicts)
    _write_csv(sweep_dir / "settings.csv", *_settings_table(report, raw=True))
    _write_csv(sweep_dir / "summary.csv", *_jobs_table(report, rows, raw=True))
    report.markdown = markdown(report, rows)
    (sweep_dir / "summary.md").write_text(report.markdown + "\n")
    return report


def markdown(report: Report, rows: list[dict]) -> str:
    fixed = " ".join(rows[0]["fixed"]) if rows else ""
    pooled = ", ".join(report.replicate_keys) or "nothing"
    lines = [
        f"{len(rows)} jobs; fixed: `{fixed or 'nothing'}`; pooled over: {pooled}",
        "",
        f"## Settings, best first by mean {RANK_BY} (mean ± std over {pooled})",
        "",
        *_markdown_table(*_settings_table(report, raw=False)),
        "",
        *(line for v in report.verdicts for line in (_verdict_line(v), "")),
        "## Jobs",
        "",
        *_markdown_table(*_jobs_table(report, rows, raw=False)),
    ]
    return "\n".join(lines)


def _settings_table(report: Report, raw: bool) -> tuple[list[str], list[list]]:
    keys = [k for k in report.swept if k not in report.replicate_keys]
    names = _names(keys, raw)
    if raw:
        header = ["rank", *names, "n", "failed"]
        header += [f"{m}_{stat}" for m in report.metrics for stat in ("mean", "std")]
    else:
        header = ["", *names, "n", *report.metrics]
    table = []
    for rank, setting in enumerate(report.settings, start=1):
        failed = len(setting.failed)
        won = rank == 1 and not math.isnan(setting.mean(RANK_BY))
        row = [rank if raw else ("**winner**" if won else rank)]
        row += [setting.values[k] if raw else shown(setting.values[k]) for k in keys]
        row += [len(setting.scores(RANK_BY))] + ([failed] if raw else [])
        for metric in report.metrics:
            mean, std = setting.mean(metric), setting.std(metric)
            row += [_raw(mean), _raw(std)] if raw else [_mean_std(mean, std)]
        table.append(row)
    return header, table


def _jobs_table(report: Report, rows: list[dict], raw: bool) -> tuple[list[str], list[list]]:
    names = _names(report.swept, raw)
    if raw:
        header = ["job", *names, *JOB_COLUMNS, "overrides", "error"]
    else:  # what says nothing for this sweep stays out of the person's table
        header = ["job", *names, *(c for c in JOB_COLUMNS if c != "torch_threads")]
        header = [h for h in header if h != "test/acc" or h in report.metrics]
        header += ["error"] if any(row["error"] for row in rows) else []
    winners = {id(job) for job in report.settings[0].jobs} if report.settings else set()
    table = []
    for row in rows:
        swept = [row.get("swept", {}).get(k, "") for k in report.swept]
        cells = {c: row.get(c, "") for c in ("job", *JOB_COLUMNS, "overrides", "error")}
        if raw:
            cells |= dict(zip(names, swept, strict=True))
        else:
            cells = {c: _cell(c, v) for c, v in cells.items()}
            cells |= dict(zip(names, map(shown, swept), strict=True))
            cells["job"] = f"{row['job']} ★" if id(row) in winners else row["job"]
            cells["run_dir"] = f"`{row['run_dir']}`"
        table.append([cells.get(h, "") for h in header])
    return header, table


def _verdict_line(v: Verdict) -> str:
    win, second = setting_name(v.winner), setting_name(v.runner_up)
    head = (
        f"**{v.metric}**: {win} leads {second} by {v.lead:+.4f} "
        f"({v.winner.mean(v.metric):.4f} vs {v.runner_up.mean(v.metric):.4f})"
    )
    if v.p is None:
        return (
            f"{head}: cannot be weighed against seed noise (test: {v.test}); run 3 or more seeds."
        )
    test = f"{v.test}, p = {v.p:.3g}"
    if v.beyond_noise:
        return f"{head}: **beyond seed noise** ({test} < {sweep_stats.ALPHA})."
    settle = (
        f"about {v.seeds_needed} seeds per setting would settle it (a lead this size found "
        f"{sweep_stats.POWER:.0%} of the time at p < {sweep_stats.ALPHA}, if the seed noise is "
        "as measured)"
        if v.seeds_needed
        else f"more than {sweep_stats.MAX_SEEDS} seeds would be needed: call it a tie"
    )
    return f"{head}: **within seed noise** ({test}); {settle}."


def setting_name(setting: Setting) -> str:
    names = _names(list(setting.values), raw=False)
    return (
        ",".join(f"{n}={shown(v)}" for n, v in zip(names, setting.values.values(), strict=True))
        or "all"
    )


def _names(keys: list[str], raw: bool) -> list[str]:
    """Full keys in the CSVs (scripts), their short forms for a person."""
    return keys if raw else list(short_keys(keys).values())


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _raw(value: float):
    return "" if math.isnan(value) else value


def _cell(column: str, value) -> str:
    if column == "wall_time_s" and isinstance(value, float):
        return f"{value:.1f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown_table(header: list[str], table: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return lines


def _write_csv(path: Path, header: list[str], table: list[list]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(table)
