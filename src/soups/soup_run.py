"""A soup written as a run like any other: checkpoints/best.pt and last.pt (the format
src/training/checkpoints.py writes, with the config), export/, metrics.json, soup.json (its
ingredients or alphas, and the command that made it) and TensorBoard figures, so that
`src.evaluate`, `src.predict` and the export work on it unchanged."""

import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from omegaconf import OmegaConf

from src.models import export
from src.soups.average import Weights
from src.soups.tasting import Taste, Tasting
from src.tracking.logger import RunLogger
from src.tracking.sweep_soups import SOUP_FILE
from src.training import checkpoints as ckpt
from src.training.run_export import write_json
from src.training.state import TrainingState


def write_soup_run(
    run_dir: Path, weights: Weights, taste: Taste, tasting: Tasting, record: dict
) -> None:
    """`record`: soup.json's entries (kind, ingredients or alphas); the command is added."""
    reference = tasting.run
    config = _served_as_model(reference.cfg)
    state = TrainingState(epoch=reference.epoch, global_step=reference.global_step)
    state.best_val_acc, state.best_score = taste.accuracy, taste.accuracy
    checkpoint = {
        ckpt.MODEL: weights,
        # A soup is not trained: nothing to resume, so no optimizer, schedule or RNG states.
        ckpt.OPTIMIZER: {},
        ckpt.SCHEDULER: {},
        ckpt.GRAD_SCALER: {},
        ckpt.PROGRESS: asdict(state),
        ckpt.RNG: {},
        ckpt.CONFIG: config,
        ckpt.EMA: {},
    }
    for name in ("best", "last"):
        ckpt.save_checkpoint(checkpoint, run_dir / "checkpoints" / f"{name}.pt")
    data = tasting.data
    write_export(
        run_dir / export.DIRECTORY,
        weights,
        reference.source,
        tasting.model,
        data.class_names,
        data.input,
        origin={"checkpoint": "checkpoints/best.pt", "epoch": reference.epoch, "weights": "soup"},
    )
    logger = RunLogger(run_dir)
    try:
        logger.scalars({"val/acc": taste.accuracy, "val/loss": taste.loss}, reference.global_step)
    finally:
        logger.close()
    command = shlex.join([Path(sys.executable).name, "-m", "src.soup", *sys.argv[1:]])
    soup = {**record, "val_acc": taste.accuracy, "val_loss": taste.loss, "command": command}
    write_json(run_dir / SOUP_FILE, soup)
    # Last, as a run writes it: its presence says the soup is whole.
    metrics = {
        "val/acc": taste.accuracy,
        "val/loss": taste.loss,
        "epochs": reference.epoch,
        "best_val_acc": taste.accuracy,
    }
    write_json(run_dir / "metrics.json", metrics)


def _served_as_model(cfg) -> dict:
    """The reference run's config, its monitor on the model's own figures: the soup's weights
    are the checkpoint's model entry, whichever weights (EMA or not) the ingredients served."""
    config = OmegaConf.to_container(cfg, resolve=True)
    monitor = config["trainer"].get("monitor") or ""
    if monitor.startswith("val_ema/"):
        config["trainer"]["monitor"] = "val/" + monitor.removeprefix("val_ema/")
    return config


def write_export(directory: Path, *args, **kwargs) -> None:
    """export.write_export, a failed write named by the file or, where the OS names none, the
    export dir."""
    try:
        export.write_export(directory, *args, **kwargs)
    except OSError as err:
        raise OSError(err.errno, err.strerror, err.filename or str(directory)) from err
