"""Checkpoint names -> the model's names: wrappers removed, a sub-tree taken, rules applied.

In this order: an AveragedModel's `n_averaged` counter goes; `module.` / `_orig_mod.`
wrappers (DataParallel, DDP, torch.compile) go when every key carries one; `prefix` keeps one
sub-tree and drops its prefix (`backbone.` of a detector); `rename` rules apply in order, each
to every key, with `re.sub`. `exclude` then matches the result, i.e. the names as the model
has them: an item that is exactly a role's name (`head`) by the model source's roles
(src/pretrained/exclusion.py), any other as a regex.
"""

import re
from dataclasses import dataclass

import torch

from src.errors import GroupwiseError
from src.models.contract import TENSOR_ROLES

# Wrappers that put the whole model under one attribute; only ever removed from every key.
WRAPPERS = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class KeyRules:
    """The `pretrained` key rules, checked and compiled once."""

    rename: list[tuple[re.Pattern, str]]
    exclude: list[re.Pattern]  # the items that are regexes
    prefix: str | None
    exclude_roles: tuple[str, ...] = ()  # the items that name a role (TENSOR_ROLES)

    @property
    def exclude_items(self) -> list[str]:
        """`exclude`'s items: the roles, then the regexes (the report lists them so)."""
        return [*self.exclude_roles, *(e.pattern for e in self.exclude)]


def check_rules(rename: list, exclude: list, prefix: str | None) -> KeyRules:
    """Every problem with the key rules at once; the compiled rules when there is none."""
    problems, rules, excluders, roles = [], [], [], []
    for i, rule in enumerate(rename):
        where = f"pretrained.rename[{i}]={rule!r}"
        if not (
            isinstance(rule, list | tuple)
            and len(rule) == 2
            and all(isinstance(s, str) for s in rule)
        ):
            problems.append(
                f"{where}: a rule is a [pattern, replacement] pair of strings, "
                "e.g. pretrained.rename=[['^backbone\\.', '']]"
            )
            continue
        try:
            pattern = re.compile(rule[0])
            pattern.sub(rule[1], "")  # a replacement naming a group the pattern lacks fails here
        except (re.error, IndexError) as err:
            problems.append(f"{where}: invalid regex or replacement ({err}); fix or escape it")
            continue
        rules.append((pattern, rule[1]))
    for pattern in exclude:
        if pattern in TENSOR_ROLES:
            roles.append(pattern)
            continue
        try:
            excluders.append(re.compile(pattern))
        except (re.error, TypeError) as err:
            problems.append(
                f"pretrained.exclude: {pattern!r} is not a valid regex ({err}); fix or escape it"
            )
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        problems.append(
            f"pretrained.prefix={prefix!r}: a key prefix such as 'backbone.', or null for the whole checkpoint"
        )
    if problems:
        raise GroupwiseError(*problems)
    return KeyRules(rules, excluders, prefix, tuple(roles))


def map_keys(
    tensors: dict[str, torch.Tensor],
    rules: list[tuple[re.Pattern, str]],
    prefix: str | None,
    where: str,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The checkpoint under the model's names, and a note per change made, for the report."""
    notes = []
    # torch's AveragedModel (the EMA of torchvision's reference scripts) saves the model under
    # `module.` beside its `n_averaged` counter, which is no weight of the model.
    if (
        len(tensors) > 1
        and "n_averaged" in tensors
        and all(k.startswith("module.") for k in tensors if k != "n_averaged")
    ):
        tensors = {k: v for k, v in tensors.items() if k != "n_averaged"}
        notes.append("AveragedModel's 'n_averaged' counter dropped")
    # Wrappers nest (`_orig_mod.module.`: compile of DDP): strip while every key has one.
    while tensors and (
        wrapper := next((w for w in WRAPPERS if all(k.startswith(w) for k in tensors)), None)
    ):
        tensors = {k.removeprefix(wrapper): v for k, v in tensors.items()}
        notes.append(f"wrapper '{wrapper}' removed from every key")
    if prefix is not None:
        inside = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
        if not inside:
            raise GroupwiseError(
                f"pretrained.prefix={prefix!r}: no key of {where} starts with it; its keys start "
                f"{sorted(tensors)[:3]}; set the prefix to one of theirs, or null"
            )
        notes.append(f"prefix '{prefix}': took {len(inside)} of {len(tensors)} tensors")
        tensors = inside
    for pattern, replacement in rules:
        renamed, changed = {}, 0
        for key, tensor in tensors.items():
            new = pattern.sub(replacement, key)
            changed += new != key
            if new in renamed:
                raise GroupwiseError(
                    f"pretrained.rename: ['{pattern.pattern}', '{replacement}'] gives two tensors "
                    f"the name {new!r}; make the rule more specific, or exclude one of them"
                )
            renamed[new] = tensor
        if not changed:
            raise GroupwiseError(
                f"pretrained.rename: ['{pattern.pattern}', '{replacement}'] renames no key (a "
                f"typo?); the keys start {sorted(tensors)[:3]}"
            )
        notes.append(f"rename ['{pattern.pattern}', '{replacement}']: {changed} keys")
        tensors = renamed
    return tensors, notes
