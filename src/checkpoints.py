"""Training checkpoints: one dict per file, written so that a crash never leaves a broken one."""

import os
from pathlib import Path

import torch


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file, flush it to disk, then rename: the rename is atomic, so
    `path` always holds either the previous checkpoint or the new one, complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    # Our own checkpoints hold only tensors, numbers, strings and plain containers.
    return torch.load(path, map_location="cpu", weights_only=True)
