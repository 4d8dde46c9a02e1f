"""Training checkpoints: one dict per file, written so that a crash never leaves a broken one;
and the random number generators a run draws from, saved and restored with it."""

import os
import random
from pathlib import Path

import numpy as np
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
    # The rename itself lives in the directory: flush that too, or a power cut may undo it.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: Path) -> dict:
    # Our own checkpoints hold only tensors, numbers, strings and plain containers.
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_states() -> dict:
    """Every generator a training step may draw from: dropout and augmentations use torch's
    (and CUDA's), some transforms Python's `random` or NumPy's."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # As plain types and a tensor: a weights_only load refuses NumPy arrays.
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached_gaussian],
    }
    if torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "numpy" in states:
        kind, key, pos, has_gauss, cached_gaussian = states["numpy"]
        np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
