"""Weights averaged one ingredient at a time, and interpolated between two models.

A checkpoint is read memory-mapped: its tensors are pages of the file, read when the sum
touches them and let go when the next one is read, so a soup of N models holds about two
models in memory (the sum and the ingredient being added), never N.
"""

from pathlib import Path

import torch

from src.training.checkpoints import served_weights

Weights = dict[str, torch.Tensor]


def mapped_weights(checkpoint: Path) -> tuple[Weights, str]:
    """The weights a run serves (`served_weights`: the EMA's when its monitor follows it) and
    which they are, memory-mapped from `checkpoint`."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return served_weights(state)


class RunningSum:
    """The sum of the ingredients added so far. Floating tensors are summed (half precision
    ones in float32); the rest (batch norm's step counts) are the first ingredient's."""

    def __init__(self) -> None:
        self.total: Weights = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self.count = 0

    def add(self, weights: Weights) -> None:
        if not self.total:
            self.dtypes = {key: value.dtype for key, value in weights.items()}
            self.total = {key: _summable(value) for key, value in weights.items()}
        else:
            for key, value in weights.items():
                if value.is_floating_point():
                    self.total[key].add_(value)
        self.count += 1

    def average(self) -> Weights:
        return _divided(self.total, self.count, self.dtypes)

    def average_with(self, weights: Weights) -> Weights:
        """The average if `weights` were added too, the sum left as it is."""
        candidate = {
            key: total + weights[key] if total.is_floating_point() else total
            for key, total in self.total.items()
        }
        return _divided(candidate, self.count + 1, self.dtypes)


def _summable(value: torch.Tensor) -> torch.Tensor:
    """A copy of its own: the memory-mapped file is never written."""
    if value.is_floating_point() and value.dtype in (torch.float16, torch.bfloat16):
        return value.to(torch.float32)
    return value.clone()


def _divided(total: Weights, count: int, dtypes: dict[str, torch.dtype]) -> Weights:
    # Division by 1 is exact: a soup of one ingredient is that ingredient, bit for bit.
    return {
        key: (value / count).to(dtypes[key]) if value.is_floating_point() else value.clone()
        for key, value in total.items()
    }


def interpolate(pretrained: Weights, finetuned: Weights, alpha: float, keys: set[str]) -> Weights:
    """WiSE-FT: (1 - alpha) * pretrained + alpha * finetuned for `keys` (those the pretrained
    weights gave the run); every other tensor (the new head) as fine-tuned. `torch.lerp` is
    exact at both ends: alpha 0 is the pretrained weights, alpha 1 the fine-tuned ones."""
    return {
        key: torch.lerp(pretrained[key].to(value.dtype), value, alpha)
        if key in keys and value.is_floating_point()
        else value.clone()
        for key, value in finetuned.items()
    }
