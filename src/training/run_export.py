"""A trained run's last files, once training has ended: its export/, written from its
checkpoints, then metrics.json, which marks the run finished; each whole or not at all."""

import json
import os
import shutil
from pathlib import Path

import torch

from src.adapters import peft_files
from src.adapters.wrap import holding, is_wrapped, merged
from src.data.loading import Data
from src.models import export
from src.models.source import ModelSource
from src.training import distributed
from src.training.checkpoints import PROGRESS, load_checkpoint, served_weights

ADAPTER_DIRECTORY = "adapter"  # in export/: peft's adapter_config.json, adapter_model.safetensors


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
    checkpoint and which weights they were. A run with an adapter exports it merged, so that
    anyone without peft loads the plain model, and the adapter alone in peft's format. Rank 0's
    to write: all ranks share the run dir."""
    if not distributed.is_main():
        return
    best = checkpoint_path.with_name("best.pt")
    name = "best" if monitor is not None and best.exists() else "last"
    checkpoint = load_checkpoint(checkpoint_path.with_name(f"{name}.pt"))
    weights, which = served_weights(checkpoint)  # the EMA's when the monitor follows it
    directory = checkpoint_path.parent.parent / export.DIRECTORY
    if is_wrapped(model):  # the adapter in peft's format, then merged into a plain model
        wrapped = holding(model, weights)
        peft_files.save(wrapped, directory / ADAPTER_DIRECTORY)
        model = merged(wrapped)
        weights = model.state_dict()
    export.write_export(
        directory,
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


def finish_run(
    checkpoint_path: Path,
    monitor: str | None,
    source: ModelSource,
    model: torch.nn.Module,
    data: Data,
    metrics: dict,
) -> None:
    """`export_run`, then metrics.json; a write that fails (a full disk: an OSError, raised)
    leaves no half an export and no metrics.json, so the run does not read as finished."""
    export_dir = checkpoint_path.parent.parent / export.DIRECTORY
    try:
        export_run(checkpoint_path, monitor, source, model, data)
    except OSError as err:  # the OS names no file when a write fails: the export dir is named
        shutil.rmtree(export_dir, ignore_errors=True)
        raise OSError(err.errno, err.strerror, err.filename or str(export_dir)) from err
    write_json(checkpoint_path.parent.parent / "metrics.json", metrics)


def write_json(path: Path, data: dict) -> None:
    """Whole or not at all (a temporary file renamed). Rank 0's: all ranks share the run dir."""
    if not distributed.is_main():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:  # the OS names no file when a write fails
        raise OSError(err.errno, err.strerror, err.filename or str(path)) from err
    finally:
        tmp.unlink(missing_ok=True)
