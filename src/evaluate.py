"""`python -m src.evaluate run_dir=<a finished run> [split=test|val] [checkpoint=best|last]`:
a checkpoint of the run evaluated on a split of its own data, rebuilt from its config.

Prints the figures and a per-class table; writes `<run_dir>/eval_<split>.json` (with another
checkpoint than best: `eval_<split>_<checkpoint>.json`; an existing file is never overwritten)
and puts the figures and the confusion matrix into the run's TensorBoard, at the checkpoint's
step; with `output=` the report goes there and nothing is written into the run dir (a
read-only one too). Everything is written before the figures are printed, so a closed pipe
(`| head`) loses only console lines. A run still training is refused (src/run_lock.py).

`sweep_dir=<a sweep's root>` instead: every finished job of the sweep (one already evaluated
keeps its eval_<split>.json) and its soups (`python -m src.soup`), then the sweep's settings.csv, summary.csv, summary.md and
sweep.png with the test split's figures added (the soups beside the best job in summary.md).
"""

import sys
from pathlib import Path

from omegaconf import DictConfig

from src import stopping
from src.config.command import run_command, written
from src.errors import GroupwiseError
from src.tracking import confusion_picture, sweep_soups, sweep_summary

DEFAULT_CHECKPOINT = "best"


def evaluate(cfg: DictConfig) -> dict:
    with stopping.deferred():  # torch: imported once the command runs, so `--help` is fast
        from src import trained_run

    with trained_run.in_use(cfg.run_dir, writes=not cfg.output):
        return _evaluate(cfg, trained_run.open_run(cfg.run_dir, cfg.checkpoint))


def _evaluate(cfg: DictConfig, run) -> dict:
    import torch

    from src.training.evaluation import classification_report, format_report, outputs
    from src.training.run_export import write_json

    suffix = "" if cfg.checkpoint == DEFAULT_CHECKPOINT else f"_{cfg.checkpoint}"
    path = (
        Path(cfg.output).expanduser()
        if cfg.output
        else run.run_dir / f"eval_{cfg.split}{suffix}.json"
    )
    if path.exists():
        raise GroupwiseError(
            f"output={path}: already exists (nothing was overwritten); pass another "
            "output=<file>.json, or move that one away"
        )
    data = run.data(cfg.batch_size)
    loader = {"val": data.val_loader, "test": data.test_loader}[cfg.split]
    if loader is None:
        raise GroupwiseError(
            f"split={cfg.split}: the run's dataset has no {cfg.split} split (an image folder "
            "has one with a test/ folder beside train/ and val/; the digits with "
            "dataset.test_fraction > 0 at training); use split=val, or add it"
        )
    device = run.device(cfg.device)
    print(run.device_line(device, cfg.threads))
    model = run.model(data.in_channels, data.num_classes, device)
    logits, labels = [], []
    for batch_logits, batch_labels in outputs(
        model, loader, device, run.autocast(device), data.eval_on_device
    ):
        logits.append(batch_logits)
        labels.append(batch_labels)
    report = {
        "run_dir": str(run.run_dir),
        "split": cfg.split,
        "checkpoint": cfg.checkpoint,
        "epoch": run.epoch,
        **classification_report(torch.cat(logits), torch.cat(labels), data.class_names),
    }
    with written(path, "pass output=<file>.json where there is room"):
        # Whole or not at all: half a report would refuse the rerun ("already exists").
        write_json(path, report)
    with written(run.run_dir, f"the report {path} is written; only TensorBoard lacks it"):
        # output= elsewhere: nothing goes into the run dir (it may be read-only, or shared).
        hint = "" if cfg.output else _to_tensorboard(run, report, f"eval{suffix}/{cfg.split}")
    print(f"{cfg.split} split of {run.run_dir}, checkpoint {cfg.checkpoint} (epoch {run.epoch})")
    print(format_report(report))
    print(f"written: {path}")
    if hint:
        print(hint)
    return report


def _to_tensorboard(run, report: dict, prefix: str) -> str:
    """Beside the run's training curves (`run`: a TrainedRun): the figures, and the matrix as a
    picture; returns what to install for the picture, when it could not be drawn."""
    from src.tracking.logger import RunLogger

    logger = RunLogger(run.run_dir)
    try:
        figures = {f"{prefix}/{key}": report[key] for key in ("accuracy", "loss")}
        logger.scalars(figures, run.global_step)
        if not confusion_picture.available():
            return confusion_picture.INSTALL_HINT
        title = f"{report['split']}: accuracy {report['accuracy']:.4f} (epoch {run.epoch})"
        picture = confusion_picture.draw(report["confusion_matrix"], report["classes"], title)
        logger.image(f"{prefix}/confusion_matrix", picture, run.global_step)
        return ""
    finally:
        logger.close()


def evaluate_sweep(cfg: DictConfig) -> list[dict]:
    """Every finished job of the sweep at `cfg.sweep_dir`, then its summary files refreshed;
    the jobs that could not be evaluated are listed with the reason, and the others go on."""
    sweep_dir = Path(cfg.sweep_dir).expanduser()
    rows = sweep_summary.gather_rows(sweep_dir) if sweep_dir.is_dir() else []
    if not rows:
        raise GroupwiseError(
            f"sweep_dir={cfg.sweep_dir}: not a sweep's root (no job dirs with "
            f"{sweep_summary.JOB_FILE}); pass the dir a multirun printed, e.g. "
            "outputs/multirun/<date>_<time>, or run_dir= for one run"
        )
    skipped = [
        f"{row['run_dir']}: "
        + (
            f"pruned at epoch {row.get('pruned_at')}: not part of the sweep's answer"
            if row["status"] == "pruned"
            else f"the job failed ({row['error']})"
        )
        for row in rows
        if row["status"] != "completed"
    ]
    finished = [(row["run_dir"], row["path"]) for row in rows if row["status"] == "completed"]
    # python -m src.soup's soups, beside the jobs
    finished += [(soup_dir, soup_dir) for soup_dir in sweep_soups.soup_dirs(sweep_dir)]
    reports = []
    for name, path in finished:
        job = cfg.copy()
        job.run_dir, job.sweep_dir, job.output = str(path), None, None
        try:
            reports.append(evaluate(job))
        except GroupwiseError as err:
            skipped.append(f"{name}: {'; '.join(err.problems)}")
    if (cfg.split, cfg.checkpoint) == ("test", DEFAULT_CHECKPOINT):
        print(sweep_summary.write_all(sweep_dir, sweep_summary.gather_rows(sweep_dir)))
    else:  # the sweep's files hold one figure per job: the test split of the best checkpoint
        print(f"the sweep's summary shows split=test checkpoint={DEFAULT_CHECKPOINT} only")
    print(f"evaluated {len(reports)} of {len(rows)} jobs" + (": skipped" if skipped else ""))
    for line in skipped:
        print(f"  {line}")
    return reports


def _run_or_sweep(cfg: DictConfig) -> object:
    if (cfg.run_dir is None) == (cfg.sweep_dir is None):
        raise GroupwiseError(
            "run_dir=<a finished run> or sweep_dir=<a sweep's root>: give one of them"
            + (", not both" if cfg.run_dir is not None else "")
        )
    return evaluate(cfg) if cfg.run_dir is not None else evaluate_sweep(cfg)


def main(args: list[str]) -> None:
    run_command("evaluate", __doc__, _run_or_sweep, args)


if __name__ == "__main__":
    main(sys.argv[1:])
