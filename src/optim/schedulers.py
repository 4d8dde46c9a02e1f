"""Learning-rate schedules that keep every group's ratio to the base lr, at every step.

Each schedule is one factor of the step, applied by `LambdaLR` to each group's *own*
initial lr, so a group configured at 10x the base stays at exactly 10x whatever the
schedule does (unlike, say, `CosineAnnealingLR(eta_min=...)`, whose floor is one absolute
lr for all, or `OneCycleLR(max_lr=...)`). Warmup applies to all groups alike. A group
that is frozen (see `freezing.trains_at`) is held at lr 0 until it trains, then takes
the schedule's factor of that step. Schedules are stepped once per optimizer step; their
lengths are given in epochs. Each option's range is in the schema (src/config/schema.py);
what depends on two options (warmup shorter than the run, milestones in order) is checked here.
"""

import math
from collections.abc import Callable, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from src.errors import GroupwiseError
from src.optim.freezing import trains_at
from src.optim.param_groups import ParamGroup


def constant(optimizer: Optimizer, steps_per_epoch: int, max_epochs: int) -> LambdaLR:
    return _schedule(optimizer, steps_per_epoch, lambda s: 1.0)


def step(
    optimizer: Optimizer, steps_per_epoch: int, max_epochs: int, step_size: int, gamma: float
) -> LambdaLR:
    """The seed's StepLR: multiply by `gamma` every `step_size` epochs."""
    return _schedule(
        optimizer, steps_per_epoch, lambda s: gamma ** (s // steps_per_epoch // step_size)
    )


def multistep(
    optimizer: Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    milestones: Sequence[int],
    gamma: float,
) -> LambdaLR:
    """Multiply by `gamma` at the start of each epoch listed in `milestones`."""
    milestones = list(milestones)
    _check(
        milestones == sorted(set(milestones)) and all(m >= 1 for m in milestones),
        f"scheduler.milestones={milestones}: must be increasing epochs >= 1, e.g. [30, 60]",
    )

    def factor(s: int) -> float:
        return gamma ** sum(s // steps_per_epoch >= m for m in milestones)

    return _schedule(optimizer, steps_per_epoch, factor)


def cosine(
    optimizer: Optimizer, steps_per_epoch: int, max_epochs: int, min_lr_ratio: float
) -> LambdaLR:
    """Cosine from each group's lr down to `min_lr_ratio` times it over the whole run."""
    total = max(1, steps_per_epoch * max_epochs)
    return _schedule(optimizer, steps_per_epoch, lambda s: _cosine(1, min_lr_ratio, s / total))


def warmup_cosine(
    optimizer: Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    warmup_epochs: float,
    min_lr_ratio: float,
) -> LambdaLR:
    """Linear warmup to each group's lr over `warmup_epochs`, then `cosine` over the rest."""
    _check(
        0 <= warmup_epochs < max_epochs,
        f"scheduler.warmup_epochs={warmup_epochs:g}: must lie in [0, trainer.max_epochs={max_epochs})",
    )
    total = max(1, steps_per_epoch * max_epochs)
    warmup = round(warmup_epochs * steps_per_epoch)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup  # the first step already trains
        return _cosine(1, min_lr_ratio, (s - warmup) / (total - warmup))

    return _schedule(optimizer, steps_per_epoch, factor)


def onecycle(
    optimizer: Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
) -> LambdaLR:
    """torch's OneCycleLR shape, with each group's lr as its peak: cosine up from
    1/`div_factor` of it over `pct_start` of the run, then down to a further
    1/`final_div_factor`. Momentum is not cycled."""
    total = max(1, steps_per_epoch * max_epochs)
    peak = pct_start * total
    start, end = 1 / div_factor, 1 / (div_factor * final_div_factor)

    def factor(s: int) -> float:
        if s < peak:
            return _cosine(start, 1, s / peak)
        return _cosine(1, end, (s - peak) / (total - peak))

    return _schedule(optimizer, steps_per_epoch, factor)


def _schedule(
    optimizer: Optimizer, steps_per_epoch: int, factor: Callable[[int], float]
) -> LambdaLR:
    """`factor` for every group, 0 while a group is frozen: the number of groups never changes."""

    def for_group(group: ParamGroup) -> Callable[[int], float]:
        return lambda s: factor(s) if trains_at(group, s // steps_per_epoch) else 0.0

    return LambdaLR(optimizer, [for_group(g) for g in optimizer.param_groups])


def _cosine(start: float, end: float, progress: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _check(ok: bool, problem: str) -> None:
    if not ok:
        raise GroupwiseError(problem)
