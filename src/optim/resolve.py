"""Group specs + a model -> the parameters of each group.

Rules (config order): a group's patterns are tried with `re.search` on the names that
`model.named_parameters()` yields; the first group that matches a parameter owns it; what
no group matches belongs to `default`. A group whose pattern captures a layer number and
sets `layer_decay` is split into one group per layer, `<group>.<index>`, at
`lr_mult * layer_decay ** (max_index - index)`.

A group may select by a role instead (`role: blocks`): the parameters the model source names
so (`ParameterRoles`). Blocks carry their block number, so `layer_decay` splits them as a
captured number would, counting to the model's number of layers; a group with `layer: -1`
sits one step below block 0 on the same scale, whatever the model's depth. The scale is the
config's: its `fine_blocks` (every block of a ConvNeXt) if a group selects them, else `blocks`.
"""

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from src.errors import GroupwiseError
from src.models.contract import ParameterRoles
from src.optim.specs import BLOCK_ROLES, GroupSpec


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


# Groups by pattern only need no model source.
NO_ROLES = ParameterRoles("(none)", missing="resolve was given no model source")


@dataclass(frozen=True)
class RoleMatch:
    """What a role matcher found: like a regex match, `group(1)` is the block number."""

    re: "RoleMatcher"
    block: int | None

    def group(self, index: int) -> str | None:
        return None if self.block is None else str(self.block)


@dataclass(frozen=True)
class RoleMatcher:
    """A group's `role`, matched like a pattern: a name matches when the source names it so."""

    role: str
    members: frozenset[str]
    blocks: dict = field(default_factory=dict)

    @property
    def pattern(self) -> str:
        return f"role={self.role}"

    def search(self, name: str) -> RoleMatch | None:
        return RoleMatch(self, self.blocks.get(name)) if name in self.members else None


# Long: one pass over the names, each pattern tried once per name (10,000 tensors in 40 ms),
# and the problem reports after it read the tables that pass builds.
def resolve(
    model: nn.Module, specs: list[GroupSpec], roles: ParameterRoles = NO_ROLES
) -> Resolution:
    """Assign every parameter to the first group that matches its name, `default` otherwise:
    one pass over the names, each pattern tried once per name. `roles`: the model source's
    answer, for groups that select by role.

    A tied (shared) parameter is owned once: by the group of the first of its names that
    `named_parameters()` reaches. Its other names still count as matches of a pattern.
    """
    default, named = specs[0], specs[1:]
    owned = {spec.name: [] for spec in specs}  # group -> [(name, param, regex match)]
    problems = []
    rules = [(spec.name, matcher) for spec in named for matcher in _matchers(spec, roles, problems)]
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

    for (group_name, pattern), count in zip(rules, hits, strict=True):
        if count == 0 and isinstance(pattern, RoleMatcher):
            problems.append(
                f"param_groups.{group_name}.role={pattern.role}: the model source {roles.source} "
                f"names no {pattern.role} parameters in this model; drop the group"
            )
        elif count == 0:
            close = difflib.get_close_matches(
                pattern.pattern.strip("^$\\."), all_names, n=3, cutoff=0.3
            )
            hint = f"; closest parameter names: {close}" if close else ""
            if "lora_" in pattern.pattern:  # adapter tensors exist on adapted modules only
                hint += (
                    "; only the modules adapter.targets selects have adapter tensors (none with "
                    "adapter=none): add the module to adapter.targets, or narrow the pattern"
                )
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
    scale = "fine_blocks" if any(s.role == "fine_blocks" for s in specs) else "blocks"
    for spec in specs:
        if spec.layer_decay is None:
            groups.append(_group(spec.name, spec, spec.lr_mult, owned[spec.name]))
        elif owned[spec.name]:  # one that owns nothing is reported above, once
            groups += _layer_groups(spec, owned[spec.name], roles, scale, problems)
    groups = [g for g in groups if g.params]
    if groups and all(g.trains_from_epoch != 0 for g in groups):
        problems.append(
            f"param_groups: every group is frozen at the start ({', '.join(g.name for g in groups)}); "
            "nothing would train; leave at least one group trainable from epoch 0"
        )
    if problems:
        raise GroupwiseError(*problems)
    return Resolution(groups, shadowed, tied)


def _matchers(spec: GroupSpec, roles: ParameterRoles, problems: list) -> list:
    """The group's compiled patterns, or the matcher of its role."""
    if spec.role is None:
        return spec.patterns
    where = f"param_groups.{spec.name}"
    try:
        members = roles.members(spec.role, where)
    except GroupwiseError as err:
        problems += err.problems
        return []
    blocks = dict(getattr(roles, spec.role)) if spec.role in BLOCK_ROLES else {}
    return [RoleMatcher(spec.role, members, blocks)]


def _any_of(patterns: list) -> Callable[[str], object]:
    """One search that tells whether any pattern matches: most names match no rule, and
    then cost one regex call instead of one per pattern. Joining patterns renumbers their
    groups, so patterns that refer to a group by number keep the one-by-one search."""
    refers_to_groups = re.compile(r"\\[1-9]|\(\?\(|\(\?P=")
    if any(isinstance(p, RoleMatcher) for p in patterns):
        return lambda name: True
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
        [p.pattern for p in spec.patterns] or [f"role={spec.role}"] * (spec.role is not None),
        lr_mult,
        spec.weight_decay_mult,
        spec.trains_from_epoch,
        spec.options,
        [name for name, _, _ in owned],
        [param for _, param, _ in owned],
    )


def _layer_groups(
    spec: GroupSpec, owned: list, roles: ParameterRoles, scale: str, problems: list
) -> list[ResolvedGroup]:
    """One group per captured layer number, the last layer at the group's own lr_mult; a
    group placed at one `layer`, or selecting the model's blocks, counts to the model's last
    block instead (of its `scale`: `blocks` or `fine_blocks`)."""
    if spec.layer is not None or spec.role in BLOCK_ROLES:
        num_layers = roles.layers_of(spec.role if spec.role in BLOCK_ROLES else scale)
        if num_layers is None:
            problems.append(
                f"param_groups.{spec.name}: the model source {roles.source} cannot say how many "
                f"layers the model has ({roles.missing}); use a pattern that captures the layer "
                "number, and lr_mult for the rest"
            )
            return []
        last = num_layers - 1
        if spec.layer is not None:
            return [
                _group(
                    spec.name, spec, spec.lr_mult * spec.layer_decay ** (last - spec.layer), owned
                )
            ]
        by_block = {}
        for name, param, match in owned:
            by_block.setdefault(match.block, []).append((name, param, match))
        return [
            _group(
                f"{spec.name}.{i}", spec, spec.lr_mult * spec.layer_decay ** (last - i), by_block[i]
            )
            for i in sorted(by_block)
        ]
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
