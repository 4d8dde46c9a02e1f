"""Training checkpoints: the run state saved and restored, one dict per file, written so
that a crash never leaves a broken one; and the random number generators a run draws from.

The entries of a checkpoint are named here once; `Checkpointer` writes and reads them, and
so does anyone else reading a checkpoint (the runner's resume check, tests).
"""

import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from src.errors import GroupwiseError
from src.training.ema import WeightEma, ema_weights
from src.training.state import TrainingState

MODEL = "model"  # the model's state_dict, with the plain module's names
OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"
GRAD_SCALER = "grad_scaler"  # float16's loss scale; empty at other precisions
PROGRESS = "progress"  # the fields of TrainingState
RNG = "rng"  # rng_states(), and the train loader's generator under LOADER_RNG
LOADER_RNG = "loader"  # as it stood when the epoch in progress began
CONFIG = "config"  # the run's resolved config
EMA = "ema"  # WeightEma's state (the averaged model, `module.<name>`); empty without trainer.ema_decay


class Checkpointer:
    """Everything a run needs to continue exactly where it stopped, saved to `path` and
    restored from a checkpoint: weights, optimizer, schedule, grad scale, where training
    stands, RNG states and the config."""

    def __init__(
        self,
        path: Path,
        model: nn.Module,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        grad_scaler: torch.amp.GradScaler,
        config: dict,
        ema: WeightEma | None = None,
    ):
        self.path = path
        self.model = model  # the plain module: no `module.` or `_orig_mod.` prefixes
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.grad_scaler = grad_scaler
        self.config = config
        self.ema = ema
        self.saved: TrainingState | None = None  # where the checkpoint at `path` stands

    def save(self, state: TrainingState, loader_rng: torch.Tensor) -> None:
        save_checkpoint(
            {
                MODEL: self.model.state_dict(),
                OPTIMIZER: self.optimizer.state_dict(),
                SCHEDULER: self.scheduler.state_dict(),
                GRAD_SCALER: self.grad_scaler.state_dict(),
                PROGRESS: asdict(state),
                RNG: {**rng_states(), LOADER_RNG: loader_rng},
                CONFIG: self.config,
                EMA: {} if self.ema is None else self.ema.state_dict(),
            },
            self.path,
        )
        self.saved = TrainingState(**asdict(state))

    def restore(self, checkpoint: dict) -> tuple[TrainingState, dict]:
        """Load weights, optimizer, schedule, grad scale and EMA from a checkpoint `save` wrote;
        returns where training stood and the checkpoint's RNG states, for the loop to set
        once it has replayed the batches of the epoch already trained."""
        self.model.load_state_dict(checkpoint[MODEL])
        self.optimizer.load_state_dict(checkpoint[OPTIMIZER])
        self.scheduler.load_state_dict(checkpoint[SCHEDULER])
        # Empty when the run being resumed trained without float16's scaling.
        if checkpoint.get(GRAD_SCALER):
            self.grad_scaler.load_state_dict(checkpoint[GRAD_SCALER])
        # A run resumed with trainer.ema_decay newly set starts its EMA at the resumed weights.
        if self.ema is not None and checkpoint.get(EMA):
            self.ema.load_state_dict(checkpoint[EMA])
        self.saved = TrainingState(**checkpoint[PROGRESS])
        return TrainingState(**checkpoint[PROGRESS]), checkpoint[RNG]


def served_weights(checkpoint: dict) -> tuple[dict[str, torch.Tensor], str]:
    """The weights a run's export, evaluation and prediction use, and which they are: the
    EMA's (`ema`) when its trainer.monitor follows `val_ema/*`, else the model's (`model`)."""
    monitor = checkpoint[CONFIG]["trainer"].get("monitor") or ""
    if monitor.startswith("val_ema/"):
        return ema_weights(checkpoint[EMA]), EMA
    return checkpoint[MODEL], MODEL


def save_checkpoint(state: dict, path: Path) -> None:
    """Write to a temporary file, flush it to disk, then rename: the rename is atomic, so
    `path` always holds either the previous checkpoint or the new one, complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # disk full, read-only: the previous checkpoint is left as it was
        tmp.unlink(missing_ok=True)
        needed = sum(t.numel() * t.element_size() for t in _tensors(state))
        raise OSError(
            err.errno, f"{err.strerror}; about {needed:,} bytes to write", str(path)
        ) from err
    except BaseException:  # Ctrl-C too: no half-written file is left beside the checkpoint
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself lives in the directory: flush that too, or a power cut may undo it.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    return []


def load_checkpoint(path: Path) -> dict:
    # Our own checkpoints hold only tensors, numbers, strings and plain containers.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_checkpoint_or_explain(path: Path, asked_by: str, advice: str) -> dict:
    """`load_checkpoint`, with a damaged file as one clear line: `asked_by` is the option that
    named the file (`resume=true`), `advice` what to do about it."""
    try:
        return load_checkpoint(path)
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise GroupwiseError(
            f"{asked_by}: {path} is not a readable checkpoint ({type(err).__name__}); {advice}"
        ) from None


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
