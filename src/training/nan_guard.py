"""The NaN guard: training stops at the first non-finite loss, before it reaches a
checkpoint, and says which lrs the groups trained with at that step."""

import math
from pathlib import Path

import torch
from torch.optim import Optimizer

from src.errors import GroupwiseError
from src.training import distributed


class NanGuard:
    """Each step's loss stays on the device: `track` costs no host-device sync. `check` looks
    at all the losses since the last look in one transfer, and is called where the host
    waits anyway (logged steps, checkpoints, epoch ends), so the loop keeps no sync of its own.
    """

    def __init__(self, optimizer: Optimizer, checkpoint_path: Path):
        self.optimizer = optimizer
        self.checkpoint_path = checkpoint_path  # named in the error: the last good one, kept
        # (step, loss, lr of each optimizer group) of the steps since the last check.
        self._unchecked: list[tuple[int, torch.Tensor, list[float]]] = []

    def track(self, loss: torch.Tensor, step: int) -> None:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._unchecked.append((step, loss.detach(), lrs))

    def check(self, epoch: int) -> None:
        """Raise if a loss since the last check was nan or inf; `epoch` counts from 0."""
        unchecked, self._unchecked = self._unchecked, []
        finite = (
            torch.stack([loss for _, loss, _ in unchecked]).isfinite().tolist() if unchecked else []
        )
        bad = [step for (step, _, _), ok in zip(unchecked, finite, strict=True) if not ok]
        # Every rank stops, at the first step any rank found.
        first = distributed.min_over_ranks(min(bad, default=math.inf))
        if first == math.inf:
            return
        step = int(first)
        lrs = {s: lrs for s, _, lrs in unchecked}[step]  # every rank checks the same steps
        # A named group may span two optimizer groups (decay / no decay) that share its lr.
        names = [group["name"] for group in self.optimizer.param_groups]
        lr_text = ", ".join(
            f"{name}={lr:.3g}" for name, lr in dict(zip(names, lrs, strict=True)).items()
        )
        kept = (
            f"the last good checkpoint, {self.checkpoint_path}, was kept"
            if self.checkpoint_path.exists()
            else f"no checkpoint had been written yet (what the run made is in "
            f"{self.checkpoint_path.parent.parent})"
        )
        raise GroupwiseError(
            f"train/loss is not finite (nan or inf) at step {step} (epoch {epoch + 1}); lr per "
            f"group: {lr_text}; a too-large lr is the usual cause: lower optimizer.lr or a "
            f"group's lr_mult and start a new run; {kept}"
        )
