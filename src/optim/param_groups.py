"""Resolved groups -> the optimizer's param groups, each carrying its multipliers.

Each group becomes one optimizer param group (two when it mixes decayed and 1-D tensors)
carrying its `name`, `lr_mult`, `weight_decay_mult` and `trains_from_epoch`, with
`lr = base_lr * lr_mult`: the multipliers live in the optimizer, so schedulers,
checkpoints and loggers all see them. `ParamGroup` names those keys once.
"""

from typing import TypedDict

from torch import nn

from src.optim.resolve import ResolvedGroup
from src.optim.specs import DEFAULT


class ParamGroup(TypedDict):
    """An optimizer param group as groupwise builds it: torch's keys plus ours (and any
    optimizer key a group sets, e.g. `momentum`)."""

    params: list[nn.Parameter]
    param_names: list[str]  # the params' names, in order: what the reports list
    lr: float
    weight_decay: float
    name: str  # the configured group; its decay and no-decay halves share it
    config_group: str  # the group in the config: `blocks` for `blocks.3`
    patterns: list[str]
    lr_mult: float
    weight_decay_mult: float
    trains_from_epoch: int | None  # None: frozen for the whole run
    decays: bool  # False: the half of 1-D tensors and those the model source exempts


def decays(param: nn.Parameter, weight_decay_1d: bool, exempt_by_model: bool = False) -> bool:
    """Biases, normalization weights and other 1-D tensors get no weight decay by default:
    decaying them pulls scales and offsets towards 0 and only costs accuracy. Nor do the
    tensors the model source names (position embeddings, class tokens), as timm does."""
    return weight_decay_1d or (param.ndim > 1 and not exempt_by_model)


def optimizer_groups(
    groups: list[ResolvedGroup],
    base_lr: float,
    weight_decay: float = 0.0,
    weight_decay_1d: bool = False,
    no_weight_decay: frozenset[str] = frozenset(),
) -> list[ParamGroup]:
    """One optimizer param group per resolved group (two when it mixes tensors that decay
    with exempt ones), never one per tensor: torch re-checks every earlier group as each one
    is added. The split halves share the group's name, so logs show one lr per name.
    `no_weight_decay`: the parameter names the model source exempts."""
    result = []
    # `default` last: torch checks each added group against all earlier ones, and `default`,
    # the rest of the model, is usually the largest (10,000 tensors: 35 -> 11 ms).
    for g in sorted(groups, key=lambda g: g.spec_name == DEFAULT):
        decayed, exempt = [], []
        for name, param in zip(g.param_names, g.params, strict=True):
            decaying = decays(param, weight_decay_1d, name in no_weight_decay)
            (decayed if decaying else exempt).append((name, param))
        for members, wd_mult, decaying in (
            (decayed, g.weight_decay_mult, True),
            (exempt, 0.0, False),
        ):
            if members:
                result.append(
                    {
                        **g.options,
                        "params": [param for _, param in members],
                        "param_names": [name for name, _ in members],
                        "name": g.name,
                        "config_group": g.spec_name,
                        "patterns": g.patterns,
                        "lr": base_lr * g.lr_mult,
                        "lr_mult": g.lr_mult,
                        "weight_decay": weight_decay * wd_mult,
                        "weight_decay_mult": wd_mult,
                        "trains_from_epoch": g.trains_from_epoch,
                        "decays": decaying,
                    }
                )
    return result
