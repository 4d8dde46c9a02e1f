"""A trained run's export/, written from its checkpoints once training has ended."""

from pathlib import Path

import torch

from src.data.loading import Data
from src.models import export
from src.models.source import ModelSource
from src.training import distributed
from src.training.checkpoints import PROGRESS, load_checkpoint, served_weights


def export_run(
    checkpoint_path: Path,
    monitor: str | None,
    source: ModelSource,
    model: torch.nn.Module,
    data: Data,
) -> None:
    """A run's export/ beside its checkpoints/: the weights of best.pt (by trainer.monitor;
    last.pt without one, or when a resumed run's dir lacks it; the EMA's when the monitor follows
    val_ema/*), and what rebuilding and feeding the model takes; model.json says which
    checkpoint and which weights they were. Rank 0's to write: all ranks share the run dir."""
    if not distributed.is_main():
        return
    best = checkpoint_path.with_name("best.pt")
    name = "best" if monitor is not None and best.exists() else "last"
    checkpoint = load_checkpoint(checkpoint_path.with_name(f"{name}.pt"))
    weights, which = served_weights(checkpoint)  # the EMA's when the monitor follows it
    export.write_export(
        checkpoint_path.parent.parent / export.DIRECTORY,
        weights,
        source,
        model,
        data.class_names,
        data.input,
        origin={
            "checkpoint": f"checkpoints/{name}.pt",
            "epoch": checkpoint[PROGRESS]["epoch"],
            "weights": which,  # model, or ema: the checkpoint's EMA of the weights
        },
    )
