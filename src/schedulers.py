"""Learning-rate schedules that keep every group's ratio to the base lr, at every step.

Each schedule is a `LambdaLR` factor applied to each group's *own* initial lr, so a
group configured at 10x the base stays at exactly 10x whatever the schedule does
(unlike, say, `CosineAnnealingLR(eta_min=...)`, whose floor is one absolute lr for all).
Schedules are stepped once per optimizer step; their lengths are given in epochs.
"""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def constant(optimizer: Optimizer, steps_per_epoch: int, max_epochs: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: 1.0)


def step(
    optimizer: Optimizer, steps_per_epoch: int, max_epochs: int, step_size: int, gamma: float
) -> LambdaLR:
    """The seed's StepLR: multiply by `gamma` every `step_size` epochs."""
    return LambdaLR(optimizer, lambda s: gamma ** (s // steps_per_epoch // step_size))


def cosine(
    optimizer: Optimizer, steps_per_epoch: int, max_epochs: int, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Cosine from each group's lr down to `min_lr_ratio` times it over the whole run."""
    total = max(1, steps_per_epoch * max_epochs)

    def factor(s: int) -> float:
        progress = min(s, total) / total
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
