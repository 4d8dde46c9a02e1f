"""The table at the end of a multirun: one row per job, failed jobs included.

A Hydra callback (configured under `hydra.callbacks` in conf/config.yaml). Each job writes
its row to `job.json` in its own dir when it ends, in whatever process or machine ran it
(joblib workers, SLURM nodes); at the end of the sweep the main process gathers the rows
into `summary.csv` and `summary.md` at the sweep root, prints the table, and draws
`sweep.png` (src/tracking/sweep_picture.py).

Hydra's sweepers re-raise a job's error once its batch is done, which would end the sweep
without a summary: a failed job therefore returns its error as a `FailedJob` (`src.run.main`
does), which the sweeper takes for a NaN result (optuna counts it as a failed trial) and this
callback records in the job's row; the command exits 1 at the end if any job failed.
"""

import csv
import json
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src import errors
from src.errors import GroupwiseError
from src.tracking import hparams, sweep_picture

JOB_FILE = "job.json"
COLUMNS = (
    "job",
    "overrides",
    "val/acc",
    "val/loss",
    "best_val_acc",
    "epochs",
    "wall_time_s",
    "torch_threads",
    "status",
    "error",
)


class FailedJob(float):
    """A failed job's result: NaN to the sweeper, with the error for the job's row."""

    error: str

    def __new__(cls, error: str):
        failed = super().__new__(cls, "nan")
        failed.error = error
        return failed

    def __reduce__(self):  # parallel launchers send results back pickled
        return FailedJob, (self.error,)

    @classmethod
    def of(cls, error: Exception) -> "FailedJob":
        if isinstance(error, GroupwiseError):
            return cls("; ".join(error.problems))
        return cls(f"{type(error).__name__}: {error}")


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Rows older than this sweep (a reused hydra.sweep.dir) are not part of it.
        self.sweep_started = time.time()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.job_started = time.monotonic()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or job_return.status == JobStatus.FAILED:
            return  # raised where `main` does not catch: the sweep ends, and Hydra reports it
        row = {
            "job": config.hydra.job.num,
            "overrides": " ".join(job_return.overrides),
            "wall_time_s": round(time.monotonic() - self.job_started, 2),
            "torch_threads": _torch_threads(),
            "status": "completed",
            "error": "",
        }
        if isinstance(job_return.return_value, FailedJob):
            row.update(status="failed", error=job_return.return_value.error)
        # The values the sweep varies, typed as TensorBoard shows them: the picture's x axes.
        swept = [k for k in config.hydra.job.env_set.GROUPWISE_SWEPT_KEYS.split(",") if k]
        row["swept"] = hparams.for_run(job_return.overrides, config, [], swept).values
        output_dir = Path(config.hydra.runtime.output_dir)
        (output_dir / JOB_FILE).write_text(json.dumps(row, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = gather_rows(sweep_dir, since=self.sweep_started)
        write_summary(sweep_dir, rows)
        print(format_markdown(rows), flush=True)
        print(sweep_picture.write(sweep_dir, rows), flush=True)
        failed = [row for row in rows if row["status"] == "failed"]
        if failed:
            errors.exit_with(
                f"{len(failed)} of {len(rows)} jobs failed; see {sweep_dir / 'summary.md'}",
                code=errors.JOBS_FAILED,
            )


def gather_rows(sweep_dir: Path, since: float = 0.0) -> list[dict]:
    """Every job's row with its final metrics (from the job's metrics.json), in job order."""
    rows = []
    for job_file in sweep_dir.rglob(JOB_FILE):
        if job_file.stat().st_mtime < since:
            continue
        row = dict.fromkeys(COLUMNS, "") | json.loads(job_file.read_text())
        row["run_dir"] = str(job_file.parent.relative_to(sweep_dir))
        metrics_file = job_file.parent / "metrics.json"
        if row["status"] == "completed" and metrics_file.exists():
            metrics = json.loads(metrics_file.read_text())
            row.update({key: metrics[key] for key in ("val/acc", "val/loss", "best_val_acc")})
            row["epochs"] = metrics["epochs"]
        rows.append(row)
    return sorted(rows, key=lambda row: row["job"])


def write_summary(sweep_dir: Path, rows: list[dict]) -> None:
    with (sweep_dir / "summary.csv").open("w", newline="") as f:
        # The csv also says where each run is, for scripts that read its files.
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "run_dir"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "summary.md").write_text(format_markdown(rows) + "\n")


def format_markdown(rows: list[dict]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [_format(column, row[column]) for column in COLUMNS]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _format(column: str, value) -> str:
    if column == "wall_time_s":
        return f"{value:.1f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _torch_threads() -> int:
    import torch  # the job has imported it already; the sweep's main process need not

    return torch.get_num_threads()
