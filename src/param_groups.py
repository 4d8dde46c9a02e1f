"""Regex rules on parameter names -> optimizer param groups, their validation and explanation.

Rules (config order): a group's patterns are tried with `re.search` on the names that
`model.named_parameters()` yields; the first group that matches a parameter owns it;
what no group matches belongs to `default`. Each group becomes one optimizer param
group carrying its `name` and `lr_mult`, with `lr = base_lr * lr_mult`.
"""

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from src.errors import GroupwiseError

DEFAULT = "default"
SPEC_KEYS = {"pattern", "lr_mult"}


@dataclass
class GroupSpec:
    name: str
    patterns: list[re.Pattern] = field(default_factory=list)
    lr_mult: float = 1.0


@dataclass
class ResolvedGroup:
    name: str
    patterns: list[str]
    lr_mult: float
    param_names: list[str]
    params: list[nn.Parameter]

    @property
    def elements(self) -> int:
        return sum(p.numel() for p in self.params)


def parse_specs(config: Mapping | None) -> list[GroupSpec]:
    """Check every group spec; report all problems of the config in one error."""
    problems, specs = [], []
    config = dict(config or {})
    default_spec = GroupSpec(DEFAULT)
    for name, spec in config.items():
        where = f"param_groups.{name}"
        if not isinstance(spec, Mapping):
            problems.append(
                f"{where}={spec!r}: a group is a mapping like {{pattern: '^fc3\\.', lr_mult: 10}}"
            )
            continue
        unknown = sorted(set(spec) - SPEC_KEYS)
        if unknown:
            problems.append(f"{where}: unknown key(s) {unknown}; a group takes {sorted(SPEC_KEYS)}")
        lr_mult = spec.get("lr_mult", 1.0)
        if isinstance(lr_mult, bool) or not isinstance(lr_mult, int | float):
            problems.append(f"{where}.lr_mult={lr_mult!r}: must be a number >= 0")
            lr_mult = 1.0
        elif lr_mult < 0:
            problems.append(
                f"{where}.lr_mult={lr_mult}: must be >= 0; use 1 for the base lr, 10 for ten times it"
            )
        raw = spec.get("pattern")
        if name == DEFAULT:
            if raw is not None:
                problems.append(
                    f"{where}.pattern={raw!r}: `default` takes what no other group matches and has no "
                    "pattern; give the pattern to a new group instead"
                )
            default_spec.lr_mult = float(lr_mult)
            continue
        raw_patterns = [raw] if isinstance(raw, str) else list(raw or [])
        if not raw_patterns:
            problems.append(f"{where}: no pattern; add e.g. {where}.pattern='^fc3\\.'")
        compiled = []
        for pattern in raw_patterns:
            try:
                compiled.append(re.compile(pattern))
            except (re.error, TypeError) as err:
                problems.append(
                    f"{where}.pattern={pattern!r}: invalid regex ({err}); fix or escape it"
                )
        specs.append(GroupSpec(str(name), compiled, float(lr_mult)))
    if problems:
        raise GroupwiseError(*problems)
    return [default_spec, *specs]


def resolve(model: nn.Module, specs: list[GroupSpec]) -> list[ResolvedGroup]:
    """Assign every parameter to the first group that matches its name, `default` otherwise.

    A tied (shared) parameter is owned once: by the group of the first of its names that
    `named_parameters()` reaches. Its other names still count as matches of a pattern.
    """
    default, named = specs[0], specs[1:]
    groups = {
        spec.name: ResolvedGroup(
            spec.name, [p.pattern for p in spec.patterns], spec.lr_mult, [], []
        )
        for spec in specs
    }
    pattern_hits = {(spec.name, p.pattern): 0 for spec in named for p in spec.patterns}
    matched_names = {spec.name: [] for spec in named}
    owner_of = {}  # id(param) -> (group, first name)
    all_names = []
    for param_name, param in model.named_parameters(remove_duplicate=False):
        all_names.append(param_name)
        owner = None
        for spec in named:
            hit = False
            for pattern in spec.patterns:
                if pattern.search(param_name):
                    pattern_hits[spec.name, pattern.pattern] += 1
                    hit = True
            if hit:
                matched_names[spec.name].append(param_name)
                owner = owner or spec.name
        if id(param) in owner_of:
            continue
        owner = owner or default.name
        owner_of[id(param)] = (owner, param_name)
        groups[owner].param_names.append(param_name)
        groups[owner].params.append(param)

    problems = []
    for (group_name, pattern), hits in pattern_hits.items():
        if hits == 0:
            close = difflib.get_close_matches(pattern.strip("^$\\."), all_names, n=3, cutoff=0.3)
            hint = f"; closest parameter names: {close}" if close else ""
            problems.append(
                f"param_groups.{group_name}.pattern={pattern!r} matches no parameter (a typo?){hint}"
            )
    params_by_name = dict(model.named_parameters(remove_duplicate=False))
    for spec in named:
        if groups[spec.name].params or not matched_names[spec.name]:
            continue
        taken = []
        for name in matched_names[spec.name][:3]:
            owner, first = owner_of[id(params_by_name[name])]
            taken.append(f"{name} by {owner}" + ("" if first == name else f" (tied to {first})"))
        problems.append(
            f"param_groups.{spec.name}: every parameter it matches is owned already "
            f"({', '.join(taken)}); move the group earlier or narrow the other patterns"
        )
    if problems:
        raise GroupwiseError(*problems)
    return [g for g in groups.values() if g.params]


def optimizer_groups(groups: list[ResolvedGroup], base_lr: float) -> list[dict]:
    """One optimizer param group per named group; `name` and `lr_mult` travel with it."""
    return [
        {"params": g.params, "name": g.name, "lr_mult": g.lr_mult, "lr": base_lr * g.lr_mult}
        for g in groups
    ]


def explain(groups: list[ResolvedGroup], base_lr: float) -> dict:
    """The resolution as plain data, for `param_groups.json`."""
    total = sum(g.elements for g in groups)
    return {
        "base_lr": base_lr,
        "groups": [
            {
                "name": g.name,
                "patterns": g.patterns,
                "lr_mult": g.lr_mult,
                "lr": base_lr * g.lr_mult,
                "tensors": len(g.params),
                "elements": g.elements,
                "share": g.elements / total if total else 0.0,
                "params": g.param_names,
            }
            for g in groups
        ],
    }


def format_table(groups: list[ResolvedGroup], base_lr: float) -> str:
    rows = [("group", "patterns", "lr_mult", "lr", "tensors", "elements")]
    for g in groups:
        rows.append(
            (
                g.name,
                ", ".join(g.patterns) or "(the rest)",
                f"{g.lr_mult:g}",
                f"{base_lr * g.lr_mult:.3g}",
                str(len(g.params)),
                f"{g.elements:,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )
