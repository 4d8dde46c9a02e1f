"""Regex rules on parameter names -> optimizer param groups, their validation and explanation.

Rules (config order): a group's patterns are tried with `re.search` on the names that
`model.named_parameters()` yields; the first group that matches a parameter owns it;
what no group matches belongs to `default`. Each group becomes one optimizer param
group (two when it mixes decayed and 1-D tensors) carrying its `name`, `lr_mult`,
`weight_decay_mult` and `trains_from_epoch`, with `lr = base_lr * lr_mult`: the
multipliers live in the optimizer, so schedulers, checkpoints and loggers all see them.

A group whose pattern captures a layer number and sets `layer_decay` is split into one
group per layer, `<group>.<index>`, at `lr_mult * layer_decay ** (max_index - index)`.

Freezing never changes the optimizer's groups: a frozen group is there from the start,
its parameters have `requires_grad=False` and its lr is held at 0 by the scheduler until
`trains_from_epoch` (`None`: never), so a checkpoint written before an unfreeze loads
into the optimizer of a run after it.
"""

import difflib
import inspect
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from torch import nn
from torch.optim import Optimizer

from src.errors import GroupwiseError

DEFAULT = "default"
RULE_KEYS = {
    "pattern",
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
    options: dict = field(default_factory=dict)  # further optimizer keys, e.g. momentum


@dataclass
class ResolvedGroup:
    """The parameters of one named group, or of one layer (`<group>.<index>`) of a
    layer-decay group: exactly what one name in the optimizer and in TensorBoard trains."""

    name: str
    spec_name: str  # the group in the config: `blocks` for `blocks.3`
    patterns: list[str]
    lr_mult: float
    weight_decay_mult: float
    trains_from_epoch: int | None
    options: dict
    param_names: list[str] = field(default_factory=list)
    params: list[nn.Parameter] = field(default_factory=list)

    @property
    def elements(self) -> int:
        return sum(p.numel() for p in self.params)


@dataclass
class Resolution:
    groups: list[ResolvedGroup]
    # (group, owner) -> names the group matched that `owner`, earlier in config order or
    # through a tied name, owns
    shadowed: dict[tuple[str, str], list[str]]
    tied: dict[str, str]  # a later name of a shared parameter -> the name that owns it


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
        if name == DEFAULT:
            if raw is not None:
                problems.append(
                    f"{where}.pattern={raw!r}: `default` takes what no other group matches and has no "
                    "pattern; give the pattern to a new group instead"
                )
            if parsed.layer_decay is not None:
                problems.append(
                    f"{where}.layer_decay={parsed.layer_decay:g}: `default` has no pattern to "
                    "capture a layer number; give layer_decay to a group with a pattern"
                )
            default_spec = parsed
            continue
        raw_patterns = [raw] if isinstance(raw, str) else list(raw or [])
        if not raw_patterns:
            problems.append(f"{where}: no pattern; add e.g. {where}.pattern='^fc3\\.'")
        for pattern in raw_patterns:
            try:
                compiled = re.compile(pattern)
            except (re.error, TypeError) as err:
                problems.append(
                    f"{where}.pattern={pattern!r}: invalid regex ({err}); fix or escape it"
                )
                continue
            parsed.patterns.append(compiled)
            if parsed.layer_decay is not None and compiled.groups != 1:
                problems.append(
                    f"{where}.pattern={pattern!r}: layer_decay needs the layer number captured by "
                    f"exactly one group, e.g. '^layer(\\d+)\\.'; it has {compiled.groups} "
                    "(write the others as (?:...))"
                )
        specs.append(parsed)
    if problems:
        raise GroupwiseError(*problems)
    return [default_spec, *specs]


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}.{key}={value!r}: must be a number >= 0")
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


def resolve(model: nn.Module, specs: list[GroupSpec]) -> Resolution:
    """Assign every parameter to the first group that matches its name, `default` otherwise:
    one pass over the names, each pattern tried once per name.

    A tied (shared) parameter is owned once: by the group of the first of its names that
    `named_parameters()` reaches. Its other names still count as matches of a pattern.
    """
    default, named = specs[0], specs[1:]
    owned = {spec.name: [] for spec in specs}  # group -> [(name, param, regex match)]
    rules = [(spec.name, pattern) for spec in named for pattern in spec.patterns]
    searches = [pattern.search for _, pattern in rules]
    any_rule_matches = _any_of([pattern for _, pattern in rules])
    hits = [0] * len(rules)
    shadowed, tied = {}, {}
    owner_of = {}  # id(param) -> (group, the name it is owned under)
    all_names = []
    for param_name, param in model.named_parameters(remove_duplicate=False):
        all_names.append(param_name)
        matches = {}  # group -> the match of its first pattern that matched, in config order
        if any_rule_matches(param_name):
            for i, search in enumerate(searches):
                match = search(param_name)
                if match:
                    hits[i] += 1
                    matches.setdefault(rules[i][0], match)
        earlier = owner_of.get(id(param))
        if earlier:
            owner, tied[param_name] = earlier
        else:
            owner, match = next(iter(matches.items())) if matches else (default.name, None)
            owner_of[id(param)] = (owner, param_name)
            owned[owner].append((param_name, param, match))
        for group in matches:
            if group != owner:
                shadowed.setdefault((group, owner), []).append(param_name)

    problems = []
    for (group_name, pattern), count in zip(rules, hits, strict=True):
        if count == 0:
            close = difflib.get_close_matches(
                pattern.pattern.strip("^$\\."), all_names, n=3, cutoff=0.3
            )
            hint = f"; closest parameter names: {close}" if close else ""
            problems.append(
                f"param_groups.{group_name}.pattern={pattern.pattern!r} matches no parameter "
                f"(a typo?){hint}"
            )
    for spec in named:
        taken = [(n, o) for (g, o), names in shadowed.items() if g == spec.name for n in names]
        if owned[spec.name] or not taken:
            continue
        described = [
            f"{name} by {owner}" + (f" (tied to {tied[name]})" if name in tied else "")
            for name, owner in taken[:3]
        ]
        problems.append(
            f"param_groups.{spec.name}: every parameter it matches is owned already "
            f"({', '.join(described)}); move the group earlier or narrow the other patterns"
        )
    groups = []
    for spec in specs:
        if spec.layer_decay is None:
            groups.append(_group(spec.name, spec, spec.lr_mult, owned[spec.name]))
        else:
            groups += _layer_groups(spec, owned[spec.name], problems)
    groups = [g for g in groups if g.params]
    if groups and all(g.trains_from_epoch != 0 for g in groups):
        problems.append(
            f"param_groups: every group is frozen at the start ({', '.join(g.name for g in groups)}); "
            "nothing would train; leave at least one group trainable from epoch 0"
        )
    if problems:
        raise GroupwiseError(*problems)
    return Resolution(groups, shadowed, tied)


def _any_of(patterns: list[re.Pattern]) -> Callable[[str], object]:
    """One search that tells whether any pattern matches: most names match no rule, and
    then cost one regex call instead of one per pattern. Joining patterns renumbers their
    groups, so patterns that refer to a group by number keep the one-by-one search."""
    refers_to_groups = re.compile(r"\\[1-9]|\(\?\(|\(\?P=")
    if not patterns or any(refers_to_groups.search(p.pattern) for p in patterns):
        return lambda name: bool(patterns)
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns)).search
    except re.error:  # e.g. a flag like (?i) that is valid only at the start of a pattern
        return lambda name: True


def _group(name: str, spec: GroupSpec, lr_mult: float, owned: list) -> ResolvedGroup:
    return ResolvedGroup(
        name,
        spec.name,
        [p.pattern for p in spec.patterns],
        lr_mult,
        spec.weight_decay_mult,
        spec.trains_from_epoch,
        spec.options,
        [name for name, _, _ in owned],
        [param for _, param, _ in owned],
    )


def _layer_groups(spec: GroupSpec, owned: list, problems: list) -> list[ResolvedGroup]:
    """One group per captured layer number, the last layer at the group's own lr_mult."""
    by_index = {}
    for name, param, match in owned:
        captured = match.group(1)
        if captured is None or not captured.isdigit():
            problems.append(
                f"param_groups.{spec.name}.pattern={match.re.pattern!r}: captured {captured!r} from "
                f"{name!r}, not a layer number; capture digits only, e.g. (\\d+)"
            )
            return []
        by_index.setdefault(int(captured), []).append((name, param, match))
    if not by_index:
        return []
    last = max(by_index)
    return [
        _group(f"{spec.name}.{i}", spec, spec.lr_mult * spec.layer_decay ** (last - i), by_index[i])
        for i in sorted(by_index)
    ]


def decays(param: nn.Parameter, weight_decay_1d: bool) -> bool:
    """Biases, normalization weights and other 1-D tensors get no weight decay by default:
    decaying them pulls scales and offsets towards 0 and only costs accuracy."""
    return weight_decay_1d or param.ndim > 1


def optimizer_groups(
    groups: list[ResolvedGroup],
    base_lr: float,
    weight_decay: float = 0.0,
    weight_decay_1d: bool = False,
) -> list[dict]:
    """One optimizer param group per resolved group (two when it mixes tensors that decay
    with 1-D ones), never one per tensor: torch re-checks every earlier group as each one
    is added. The split halves share the group's name, so logs show one lr per name."""
    result = []
    # `default` last: torch checks each added group against all earlier ones, and `default`,
    # the rest of the model, is usually the largest (10,000 tensors: 35 -> 11 ms).
    for g in sorted(groups, key=lambda g: g.spec_name == DEFAULT):
        decayed, exempt = [], []
        for param in g.params:
            (decayed if decays(param, weight_decay_1d) else exempt).append(param)
        for params, wd_mult in ((decayed, g.weight_decay_mult), (exempt, 0.0)):
            if params:
                result.append(
                    {
                        **g.options,
                        "params": params,
                        "name": g.name,
                        "lr": base_lr * g.lr_mult,
                        "lr_mult": g.lr_mult,
                        "weight_decay": weight_decay * wd_mult,
                        "weight_decay_mult": wd_mult,
                        "trains_from_epoch": g.trains_from_epoch,
                    }
                )
    return result


def trains_at(group: dict, epoch: int) -> bool:
    """Whether an optimizer param group made by `optimizer_groups` trains in `epoch` (from 0)."""
    start = group.get("trains_from_epoch", 0)
    return start is not None and epoch >= start


def set_trainable(model: nn.Module, optimizer: Optimizer, epoch: int) -> None:
    """Freeze and unfreeze groups for `epoch`; call it at the start of every epoch, after
    `model.train()`.

    A frozen parameter gets `requires_grad=False`: no gradient is computed for it, so the
    optimizer never steps it. A BatchNorm layer whose parameters are all frozen is put in
    eval mode: its running statistics stay those of the pretrained model, and it normalizes
    with them, as the frozen layers around it expect.
    """
    for group in optimizer.param_groups:
        trains = trains_at(group, epoch)
        for param in group["params"]:
            param.requires_grad_(trains)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def explain(
    resolution: Resolution, base_lr: float, weight_decay: float = 0.0, weight_decay_1d: bool = False
) -> dict:
    """The resolution as plain data, for `param_groups.json`."""
    total = sum(g.elements for g in resolution.groups)
    return {
        "base_lr": base_lr,
        "weight_decay": weight_decay,
        "weight_decay_1d": weight_decay_1d,
        "groups": [
            {
                "name": g.name,
                "config_group": g.spec_name,
                "patterns": g.patterns,
                "lr_mult": g.lr_mult,
                "lr": base_lr * g.lr_mult,
                "weight_decay": weight_decay * g.weight_decay_mult,
                "no_decay_tensors": sum(not decays(p, weight_decay_1d) for p in g.params),
                "trains_from_epoch": g.trains_from_epoch,
                **g.options,
                "tensors": len(g.params),
                "elements": g.elements,
                "share": g.elements / total if total else 0.0,
                "params": g.param_names,
                "params_folded": fold_names(g.param_names),
            }
            for g in resolution.groups
        ],
        "shadowed": [
            {"group": group, "owner": owner, "params": names}
            for (group, owner), names in resolution.shadowed.items()
        ],
        "tied": resolution.tied,
    }


def format_explain(info: dict) -> str:
    """`explain`'s content for people: the table of groups, then each group's parameters
    folded by their numbers, then what a group matched but another one owns."""
    rows = [
        (
            "group",
            "patterns",
            "lr_mult",
            "lr",
            "tensors",
            "elements",
            "share",
            "weight_decay",
            "trains",
        )
    ]
    for g in info["groups"]:
        decay = f"{g['weight_decay']:.3g}" if g["tensors"] > g["no_decay_tensors"] else "-"
        if g["no_decay_tensors"]:
            decay += ", 1-D: 0"
        start = g["trains_from_epoch"]
        rows.append(
            (
                g["name"],
                ", ".join(g["patterns"]) or "(the rest)",
                f"{g['lr_mult']:.4g}",
                f"{g['lr']:.3g}",
                str(g["tensors"]),
                f"{g['elements']:,}",
                f"{g['share']:.1%}",
                decay,
                "yes" if start == 0 else "frozen" if start is None else f"from epoch {start}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    by_config_group = {}  # the layers of a layer-decay group are listed together
    for g in info["groups"]:
        by_config_group.setdefault(g["config_group"], []).append(g)
    for groups in by_config_group.values():
        lines.append(", ".join(fold_names([g["name"] for g in groups])) + ":")
        lines += [f"  {name}" for name in fold_names([n for g in groups for n in g["params"]])]
    for entry in info["shadowed"]:
        lines.append(
            f"{entry['group']} also matches {', '.join(fold_names(entry['params']))}, "
            f"owned by {entry['owner']}"
        )
    for name, owner_name in info["tied"].items():
        lines.append(f"{name} is tied to {owner_name}: trained once, in its group")
    return "\n".join(lines)


def fold_names(names: list[str]) -> list[str]:
    """Fold names that differ only in their numbers: `layer4.0.conv1.weight` and
    `layer4.1.conv1.weight` -> `layer4.{0,1}.conv1.weight`, so a ResNet-50 fits a screen.

    Numbers are folded innermost first (blocks before stages); `{0..23}` is a run.
    """
    entries = []  # (literal parts, one set of numbers per gap between them)
    for name in names:
        parts = re.split(r"(\d+)", name)
        entries.append((tuple(parts[0::2]), tuple(frozenset([n]) for n in parts[1::2])))
    most_slots = max((len(slots) for _, slots in entries), default=0)
    for j in reversed(range(most_slots)):
        merged = {}  # everything but the numbers at slot j -> the entry, in first-seen order
        for literal, slots in entries:
            if j >= len(slots):
                merged[literal, slots] = (literal, slots)
                continue
            key = (literal, slots[:j], slots[j + 1 :])
            if key in merged:
                numbers = merged[key][1][j] | slots[j]
                slots = (*slots[:j], numbers, *slots[j + 1 :])
            merged[key] = (literal, slots)
        entries = list(merged.values())
    folded = []
    for literal, slots in entries:
        text = literal[0]
        for numbers, tail in zip(slots, literal[1:], strict=True):
            text += _fold_numbers(numbers) + tail
        folded.append(text)
    return folded


def _fold_numbers(numbers: frozenset[str]) -> str:
    if len(numbers) == 1:
        return next(iter(numbers))
    values = sorted(numbers, key=int)
    runs, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or int(values[i]) != int(values[i - 1]) + 1:
            run = values[start:i]
            runs += [f"{run[0]}..{run[-1]}"] if len(run) >= 3 else run
            start = i
    return "{" + ",".join(runs) + "}"
