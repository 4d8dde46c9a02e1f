"""The sweep's tables: `settings.csv` (one row per setting, best first), `summary.csv` (one
row per job) and `summary.md` (both for a person, the answer first: the winner, or "no clear
winner", and the verdict on the lead in words; src/tracking/sweep_answer.py words them).

Settings are ranked by the mean val/acc of each job's `checkpoints/best.pt` (`val/acc@best`),
the checkpoint `python -m src.evaluate sweep_dir=...` tests: ranked on one checkpoint and
tested on another, the test figure would not be the chosen setting's. test/acc, once
evaluated, is shown beside it and given its own verdict, not used to choose (choosing on the
test split would spend it). Only settings whose every job reached the end are ranked; those
that only failed, or that the pruner stopped on some seed, are listed apart with their counts.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from src.config.sweep import short_keys
from src.tracking import sweep_answer, sweep_stats
from src.tracking.hparams import shown
from src.tracking.sweep_stats import Setting, Verdict

RANK_BY = "val/acc@best"  # the val/acc of checkpoints/best.pt, the checkpoint tested
LAST = "val/acc"  # the last epoch's: what ranks jobs without a best.pt (trainer.monitor=null)
# What each ranking figure is, in the files.
RANKED_ON = {
    RANK_BY: "the val/acc of each job's checkpoints/best.pt (its best epoch by trainer.monitor), "
    "the checkpoint `python -m src.evaluate sweep_dir=...` tests",
    LAST: "the val/acc of each job's last epoch (checkpoints/last.pt): no job has a best.pt",
}
METRICS = (RANK_BY, LAST, "val/loss", "val/best_acc", "test/acc")
JOB_COLUMNS = (
    "run_dir", "status", *METRICS, "best_epoch", "epochs", "max_epochs", "wall_time_s",
    "torch_threads",
)  # fmt: skip


@dataclass
class Report:
    swept: list[str]  # every swept key, replicate keys included
    replicate_keys: list[str]  # those of them pooled
    settings: list[Setting]  # the finished ones, best first
    metrics: list[str]  # those any job has
    verdicts: list[Verdict]  # on rank_by, then test/acc once evaluated
    unfinished: list[Setting]  # failed on every seed, or pruned on some: never ranked
    rank_by: str = RANK_BY  # LAST when no job has a best.pt
    markdown: str = ""

    @property
    def pruned(self) -> int:
        """The settings pruned on some seed: left out of the answer."""
        return sum(1 for setting in self.unfinished if setting.pruned)

    @property
    def winner(self) -> Setting | None:
        """The best setting, when its lead over the runner-up is beyond seed noise; a tie, a
        lead within the noise or a noise not measured has none."""
        if self.verdicts and self.verdicts[0].beyond_noise and not self.verdicts[0].tie:
            return self.settings[0]
        return None


def write(sweep_dir: Path, rows: list[dict], replicate_keys: list[str]) -> Report:
    swept = list(dict.fromkeys(key for row in rows for key in row.get("swept", {})))
    replicate_keys = [k for k in replicate_keys if k in swept]
    metrics = [m for m in METRICS if any(m in row for row in rows)]
    rank_by = RANK_BY if RANK_BY in metrics else LAST
    found = sweep_stats.settings(rows, swept, replicate_keys)
    ranked = sweep_stats.ranked([s for s in found if s.finished], rank_by)
    verdicts = [
        sweep_stats.verdict(ranked[0], ranked[1], metric)
        for metric in (rank_by, "test/acc")
        if len(ranked) > 1 and not math.isnan(ranked[1].mean(metric))  # two settings to compare
    ]
    unfinished = [s for s in found if not s.finished]
    report = Report(swept, replicate_keys, ranked, metrics, verdicts, unfinished, rank_by)
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
        *sweep_answer.budget_line(rows),
        "",
        sweep_answer.answer_line(report.settings, report.verdicts, report.pruned),
        "",
        f"## Settings, best first by mean {report.rank_by} (mean ± std over {pooled})",
        "",
        f"{report.rank_by}: {RANKED_ON[report.rank_by]}.",
        "",
        *_markdown_table(*_settings_table(report, raw=False)),
        "",
        *sweep_answer.unfinished_lines(report.unfinished),
        *(line for v in report.verdicts for line in (sweep_answer.verdict_line(v), "")),
        "## Jobs",
        "",
        *_markdown_table(*_jobs_table(report, rows, raw=False)),
    ]
    return "\n".join(lines)


def _settings_table(report: Report, raw: bool) -> tuple[list[str], list[list]]:
    keys = [k for k in report.swept if k not in report.replicate_keys]
    names = _names(keys, raw)
    if raw:
        header = ["rank", *names, "n", "failed", "pruned"]
        header += [f"{m}_{stat}" for m in report.metrics for stat in ("mean", "std")]
    else:
        header = ["", *names, "n", *report.metrics]
    table = []
    ranks = [*range(1, len(report.settings) + 1), *(None for _ in report.unfinished)]
    for rank, setting in zip(ranks, report.settings + report.unfinished, strict=True):
        row = [_rank_cell(rank, setting, setting is report.winner, raw)]
        row += [setting.values[k] if raw else shown(setting.values[k]) for k in keys]
        row += [len(setting.jobs)] + ([len(setting.failed), len(setting.pruned)] if raw else [])
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
    winners = {id(job) for job in report.winner.jobs} if report.winner else set()
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


def _rank_cell(rank: int | None, setting: Setting, won: bool, raw: bool):
    """Ranked settings by their rank (the winner, if any, marked for a person); the others
    by why they are not ranked."""
    if rank is None:
        return "pruned" if setting.pruned else "failed"
    return "**winner**" if won and not raw else rank


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
