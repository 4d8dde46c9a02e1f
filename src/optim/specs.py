"""Param-group configs -> checked group specs: every problem of a config reported at once.

A group is a name, one or more regexes (`pattern`), and multipliers of the base lr and
weight decay; it may freeze, unfreeze at an epoch, or split into layers (`layer_decay`).
Any further key is an optimizer key for that group only (`momentum`), checked against the
optimizer's signature.
"""

import difflib
import inspect
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from src.errors import GroupwiseError

DEFAULT = "default"
# What a group may select by instead of a pattern: the parameters the model source names.
ROLES = ("head", "embeddings", "blocks", "fine_blocks", "final_norm")
# The roles whose parameters carry their block number: `layer_decay` splits them per block.
BLOCK_ROLES = ("blocks", "fine_blocks")
RULE_KEYS = {
    "pattern",
    "role",
    "layer",
    "lr_mult",
    "weight_decay_mult",
    "freeze",
    "unfreeze_at_epoch",
    "layer_decay",
}
# Optimizer keys that the rules set: a group gives a multiplier of the base instead.
DERIVED_KEYS = {
    "lr": "lr_mult (lr = optimizer.lr * lr_mult, so every schedule keeps the ratio)",
    "weight_decay": "weight_decay_mult (weight_decay = optimizer.weight_decay * weight_decay_mult)",
    "params": "pattern",
    "name": "the group's key in param_groups",
}


@dataclass
class GroupSpec:
    name: str
    patterns: list[re.Pattern] = field(default_factory=list)
    lr_mult: float = 1.0
    weight_decay_mult: float = 1.0
    trains_from_epoch: int | None = 0  # None: frozen for the whole run
    layer_decay: float | None = None
    role: str | None = None  # selects by the model source's roles instead of patterns
    layer: int | None = None  # places the whole group at this layer of the model (-1: below 0)
    options: dict = field(default_factory=dict)  # further optimizer keys, e.g. momentum


def accepted_keys(optimizer_class: type) -> set[str]:
    """The keys an optimizer takes per param group: its constructor's keyword arguments."""
    return set(inspect.signature(optimizer_class).parameters) - {"params"}


def parse_specs(
    config: Mapping | None, optimizer_keys: Collection[str] = frozenset()
) -> list[GroupSpec]:
    """Check every group spec; report all problems of the config in one error.

    `optimizer_keys`: the further keys a group may set for its optimizer group (see
    `accepted_keys`); anything else is a typo.
    """
    problems, specs = [], []
    default_spec = GroupSpec(DEFAULT)
    for name, spec in dict(config or {}).items():
        where = f"param_groups.{name}"
        if not isinstance(spec, Mapping):
            problems.append(
                f"{where}={spec!r}: a group is a mapping like {{pattern: '^fc3\\.', lr_mult: 10}}"
            )
            continue
        parsed = GroupSpec(str(name))
        problems += _check_keys(where, spec, optimizer_keys, parsed.options)
        parsed.lr_mult = _number(spec, "lr_mult", 1.0, where, problems)
        parsed.weight_decay_mult = _number(spec, "weight_decay_mult", 1.0, where, problems)
        parsed.trains_from_epoch = _trains_from_epoch(spec, where, problems)
        if spec.get("layer_decay") is not None:
            parsed.layer_decay = _number(spec, "layer_decay", 1.0, where, problems)
            if parsed.layer_decay == 0 or parsed.layer_decay > 1:  # < 0: reported already
                problems.append(
                    f"{where}.layer_decay={parsed.layer_decay:g}: must lie in (0, 1]; 0.75 gives "
                    "each layer 0.75x the lr of the layer after it"
                )
        raw = spec.get("pattern")
        parsed.role = _role(spec, where, problems)
        parsed.layer = _layer(spec, parsed, where, problems)
        if name == DEFAULT:
            problems += _default_problems(parsed, raw, where)
            default_spec = parsed
            continue
        if parsed.role is not None and raw is not None:
            problems.append(
                f"{where}: both pattern and role; a group selects by one of them, drop the other"
            )
        elif parsed.role is None:
            captures = parsed.layer_decay is not None and parsed.layer is None
            parsed.patterns = _patterns(raw, where, captures, problems)
        specs.append(parsed)
    if problems:
        raise GroupwiseError(*problems)
    return [default_spec, *specs]


def _default_problems(parsed: GroupSpec, raw, where: str) -> list[str]:
    """`default` takes what no other group matches: it selects nothing itself."""
    problems = []
    if raw is not None:
        problems.append(
            f"{where}.pattern={raw!r}: `default` takes what no other group matches and has no "
            "pattern; give the pattern to a new group instead"
        )
    if parsed.role is not None:
        problems.append(
            f"{where}.role={parsed.role}: `default` takes what no other group matches; "
            "give the role to a new group instead"
        )
    if parsed.layer_decay is not None:
        problems.append(
            f"{where}.layer_decay={parsed.layer_decay:g}: `default` has no pattern to "
            "capture a layer number; give layer_decay to a group with a pattern"
        )
    return problems


def _role(spec: Mapping, where: str, problems: list) -> str | None:
    role = spec.get("role")
    if role is not None and role not in ROLES:
        problems.append(
            f"{where}.role={role!r}: must be one of {', '.join(ROLES)} (the parameters the model "
            "source names so)"
        )
    return role


def _layer(spec: Mapping, parsed: GroupSpec, where: str, problems: list) -> int | None:
    """`layer: -1` puts the group one step below the model's first block, whatever its depth:
    its lr is lr_mult * layer_decay^(num_layers - 1 - layer), as block `layer` would get,
    counting the blocks of the config's `fine_blocks` group if it has one, else `blocks`."""
    layer = spec.get("layer")
    if layer is None:
        if parsed.layer_decay is not None and parsed.role not in (None, *BLOCK_ROLES):
            problems.append(
                f"{where}: layer_decay on role={parsed.role} needs its layer, e.g. "
                f"{where}.layer=-1 (one step below the first block)"
            )
        return None
    if isinstance(layer, bool) or not isinstance(layer, int):
        problems.append(f"{where}.layer={layer!r}: must be a whole number, e.g. -1")
        return None
    if parsed.layer_decay is None:
        problems.append(
            f"{where}.layer={layer}: places the group on the layer-decay scale; give it "
            f"layer_decay too (e.g. {where}.layer_decay=0.75)"
        )
    return layer


# The one pattern that says "every parameter" on purpose; any other that matches the empty
# string (`''`, `^`, `fc3|`) matches every name too, and is taken for a slip.
EVERY_PARAMETER = ".*"


def _patterns(raw, where: str, layer_decay: bool, problems: list) -> list[re.Pattern]:
    """A group's pattern or list of patterns, compiled; a layer-decay group's must capture
    the layer number in exactly one group."""
    compiled = []
    raw_patterns = [raw] if isinstance(raw, str) else list(raw or [])
    if not raw_patterns:
        problems.append(f"{where}: no pattern; add e.g. {where}.pattern='^fc3\\.'")
    for pattern in raw_patterns:
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as err:
            problems.append(f"{where}.pattern={pattern!r}: invalid regex ({err}); fix or escape it")
            continue
        if regex.search("") and pattern != EVERY_PARAMETER:
            problems.append(
                f"{where}.pattern={pattern!r}: matches every parameter name (it matches the "
                f"empty string); to mean every parameter, write {where}.pattern='.*'; else name "
                "what it should match, e.g. '^fc3\\.'"
            )
            continue
        compiled.append(regex)
        if layer_decay and regex.groups != 1:
            problems.append(
                f"{where}.pattern={pattern!r}: layer_decay needs the layer number captured by "
                f"exactly one group, e.g. '^layer(\\d+)\\.'; it has {regex.groups} "
                "(write the others as (?:...))"
            )
    return compiled


def _check_keys(where: str, spec: Mapping, optimizer_keys: Collection[str], options: dict):
    problems, unknown = [], []
    for key in spec:
        if key in RULE_KEYS:
            continue
        if key in DERIVED_KEYS:
            problems.append(f"{where}.{key}={spec[key]!r}: set {DERIVED_KEYS[key]} instead")
        elif key in optimizer_keys:
            options[key] = spec[key]
        else:
            unknown.append(key)
    if unknown:
        own = sorted(set(optimizer_keys) - set(DERIVED_KEYS))
        close = {k: difflib.get_close_matches(str(k), [*RULE_KEYS, *own], n=1) for k in unknown}
        hint = "".join(f"; {k}: did you mean {c[0]}?" for k, c in close.items() if c)
        takes = f"; a group takes {sorted(RULE_KEYS)}"
        if own:
            takes += f" and the optimizer's own keys {own}"
        problems.append(f"{where}: unknown key(s) {sorted(unknown, key=str)}{hint}{takes}")
    return problems


def _number(spec: Mapping, key: str, default: float, where: str, problems: list) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{where}.{key}={value!r}: must be a finite number >= 0")
        return default
    if value < 0:
        problems.append(
            f"{where}.{key}={value}: must be >= 0; use 1 for the base value, 10 for ten times it"
        )
    return float(value)


def _trains_from_epoch(spec: Mapping, where: str, problems: list) -> int | None:
    """0: trains from the start; N: frozen for the first N epochs; None: frozen throughout."""
    freeze, unfreeze = spec.get("freeze"), spec.get("unfreeze_at_epoch")
    if freeze is not None and not isinstance(freeze, bool):
        problems.append(f"{where}.freeze={freeze!r}: must be true or false")
    if unfreeze is None:
        frozen = freeze is True or spec.get("lr_mult", 1) == 0
        return None if frozen else 0
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, int) or unfreeze < 1:
        problems.append(
            f"{where}.unfreeze_at_epoch={unfreeze!r}: must be an epoch >= 1 (epochs count from 0); "
            "the group is frozen until that epoch starts"
        )
    elif freeze is False:
        problems.append(
            f"{where}.unfreeze_at_epoch={unfreeze}: the group has freeze=false; drop one of them"
        )
    elif spec.get("lr_mult", 1) == 0:
        problems.append(
            f"{where}.unfreeze_at_epoch={unfreeze}: lr_mult=0 would train it at lr 0 after that; "
            "give it an lr_mult > 0"
        )
    return unfreeze
