"""The answer of a multirun at its root: `settings.csv` (one row per setting, seeds pooled),
`summary.csv` (one row per job, failed jobs included), `summary.md` (both, the winner and a
verdict on its lead) and `sweep.png`; refreshed by `python -m src.evaluate sweep_dir=...`.

A Hydra callback (configured under `hydra.callbacks` in conf/config.yaml). Each job writes
its row to `job.json` in its own dir when it ends, in whatever process or machine ran it
(joblib workers, SLURM nodes); at the end of the sweep the main process gathers the rows
into the files above (src/tracking/sweep_tables.py, sweep_picture.py) and prints the summary.

Hydra's sweepers re-raise a job's error once its batch is done, which would end the sweep
without a summary: a failed job therefore returns its error as a `FailedJob` (`src.run.main`
does), which the sweeper takes for a NaN result (optuna counts it as a failed trial) and this
callback records in the job's row; the command exits 1 at the end if any job failed.
"""

import json
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src import errors
from src.config import sweep
from src.config.study import PrunedJob
from src.errors import GroupwiseError
from src.tracking import hparams, sweep_picture, sweep_soups, sweep_tables

JOB_FILE = "job.json"
EVAL_FILE = "eval_test.json"  # src.evaluate's report on the test split, best checkpoint
# A job's final figures: metrics.json's names -> the summary's (TensorBoard's) names.
FINAL_METRICS = {"val/acc": "val/acc", "val/loss": "val/loss", "best_val_acc": "val/best_acc"}


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
    """`replicate_keys`: the swept keys whose jobs repeat one setting by chance alone (seeds),
    pooled into its mean and spread (conf/config.yaml: `[seed]`)."""

    def __init__(self, replicate_keys: list[str]):
        self.replicate_keys = list(replicate_keys)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.job_started = time.monotonic()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or job_return.status == JobStatus.FAILED:
            return  # raised where `main` does not catch: the sweep ends, and Hydra reports it
        # The values the sweep varies, typed as TensorBoard shows them: the tables' columns.
        swept = sweep.recorded_swept_keys(config.hydra.sweep.dir)
        row = {
            "job": config.hydra.job.num,
            "overrides": " ".join(job_return.overrides),
            "fixed": [o for o in job_return.overrides if _override_key(o) not in swept],
            "swept": hparams.for_run(job_return.overrides, config, [], swept).values,
            "replicate_keys": self.replicate_keys,
            # As Hydra wrote it (relative to where the sweep ran, when hydra.sweep.dir is).
            "run_dir": str(
                Path(config.hydra.sweep.dir) / Path(config.hydra.runtime.output_dir).name
            ),
            "wall_time_s": round(time.monotonic() - self.job_started, 2),
            "torch_threads": _torch_threads(),
            "max_epochs": config.trainer.max_epochs,  # the job's full budget
            "status": "completed",
            "error": "",
        }
        if isinstance(job_return.return_value, FailedJob):
            row.update(status="failed", error=job_return.return_value.error)
        elif isinstance(job_return.return_value, PrunedJob):
            row.update(status="pruned", pruned_at=job_return.return_value.pruned_at)
        output_dir = Path(config.hydra.runtime.output_dir)
        (output_dir / JOB_FILE).write_text(json.dumps(row, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = gather_rows(sweep_dir)
        print(write_all(sweep_dir, rows), flush=True)
        failed = [row for row in rows if row["status"] == "failed"]
        if failed:
            errors.exit_with(
                f"{len(failed)} of {len(rows)} jobs failed; see {sweep_dir / 'summary.md'}",
                code=errors.JOBS_FAILED,
            )


def gather_rows(sweep_dir: Path) -> list[dict]:
    """Every job's row with its final metrics (from the job's metrics.json) and, once
    evaluated, its test accuracy (eval_test.json), in job order. `path`: the job's dir. A
    sweep dir holds one sweep (src.config.sweep.SweepCheck refuses to launch into a used one),
    so every job.json under it is one of its jobs."""
    rows = []
    for job_file in sweep_dir.rglob(JOB_FILE):
        row = json.loads(job_file.read_text())
        row["path"] = job_file.parent
        row.setdefault("run_dir", str(job_file.parent))
        row.setdefault("fixed", [])
        metrics_file = job_file.parent / "metrics.json"
        if row["status"] in ("completed", "pruned") and metrics_file.exists():
            metrics = json.loads(metrics_file.read_text())
            row.update({ours: metrics[theirs] for theirs, ours in FINAL_METRICS.items()})
            row["epochs"] = metrics["epochs"]
            best = metrics.get("best") or {}
            if best.get("val/acc") is not None:  # the checkpoint evaluate tests: best.pt
                row.update({"val/acc@best": best["val/acc"], "best_epoch": best["epoch"]})
        eval_file = job_file.parent / EVAL_FILE
        if row["status"] == "completed" and eval_file.exists():
            row["test/acc"] = json.loads(eval_file.read_text())["accuracy"]
        rows.append(row)
    return sorted(rows, key=lambda row: row["job"])


def write_all(sweep_dir: Path, rows: list[dict]) -> str:
    """Writes settings.csv, summary.csv, summary.md and sweep.png; returns what to print:
    the summary, and where the picture is or why there is none."""
    replicate_keys = rows[0].get("replicate_keys", ["seed"]) if rows else ["seed"]
    report = sweep_tables.write(sweep_dir, rows, replicate_keys)
    soups = sweep_soups.markdown(sweep_dir)
    if soups:  # after the jobs' tables: a soup is chosen on val, as the winner is
        report.markdown = "\n".join([report.markdown, "", *soups]).rstrip()
        (sweep_dir / "summary.md").write_text(report.markdown + "\n")
    picture = sweep_picture.write(sweep_dir, rows, report)
    return f"{report.markdown}\n{picture}"


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _torch_threads() -> int:
    import torch  # the job has imported it already; the sweep's main process need not

    return torch.get_num_threads()
