"""`adapter.targets` and `adapter.train_fully`: regexes (and roles) on module names, resolved
to the exact module names peft is given, so that a pattern matching nothing is an error here
and never a peft run that silently adapts nothing.

Only modules peft can wrap and whose forward calls them are targets: a Linear or Conv. A
Linear inside `nn.MultiheadAttention` is not: the attention reads its weight directly, so an
adapter there would never act. By default grouped (depthwise) convolutions are left out too:
peft adapts them only at a rank their groups divide; named by a pattern, peft says so.
"""

import difflib
import re
from dataclasses import dataclass

from torch import nn

from src.errors import GroupwiseError
from src.models.contract import TENSOR_ROLES, ParameterRoles

WRAPPABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
KINDS = ("lora", "dora")


@dataclass(frozen=True)
class AdapterSpec:
    """A checked `adapter` section: what peft is given, with exact module names."""

    kind: str  # lora or dora
    r: int
    alpha: float
    dropout: float
    targets: tuple[str, ...]  # module names peft wraps
    train_fully: tuple[str, ...]  # module names trained in full (peft's modules_to_save)
    path: str | None  # a peft adapter dir to start from

    def describe(self) -> str:
        return f"{self.kind} r={self.r} alpha={self.alpha:g} on {len(self.targets)} modules"


def adapter_spec(config: dict, model: nn.Module, roles: ParameterRoles) -> AdapterSpec | None:
    """The adapter a resolved `adapter` section asks for on `model` (None: adapter=none), or
    every problem with it, one line each."""
    if config.get("kind", "none") == "none":
        return None
    problems = []
    own = {name: m for name, m in model.named_modules() if list(m.parameters(recurse=False))}
    fully = _train_fully(config.get("train_fully") or [], own, roles, problems)
    inside_fully = tuple(f"{name}." for name in fully)
    candidates = {n: m for n, m in own.items() if n not in fully and not n.startswith(inside_fully)}
    targets = _targets(config.get("targets"), candidates, _attention_parts(model), problems)
    if not targets and not problems:
        problems.append(
            f"adapter={config['kind']}: the model has no module peft can wrap (a Linear or "
            "Conv) outside the modules trained fully; use adapter=none to fine-tune it in full"
        )
    if problems:
        raise GroupwiseError(*problems)
    return AdapterSpec(
        config["kind"],
        config["r"],
        float(config["alpha"]),
        float(config["dropout"]),
        tuple(targets),
        tuple(fully),
        config.get("path"),
    )


def _train_fully(entries: list[str], own: dict, roles: ParameterRoles, problems: list) -> list:
    """The modules an entry names: a role's (the modules holding its tensors), or a regex's."""
    names = []
    for entry in entries:
        key = f"adapter.train_fully={entry!r}"
        if entry in TENSOR_ROLES:
            try:
                params = roles.members(entry, key)
            except GroupwiseError as err:
                problems += err.problems
                continue
            found = sorted({p.rpartition(".")[0] for p in params})
        else:
            found = _matching(entry, own, key, problems)
        names += [n for n in found if n not in names]
    return names


def _targets(patterns, candidates: dict, attention: set, problems: list) -> list[str]:
    """Every wrappable module when no pattern is given; else those a pattern matches, each
    pattern matching at least one and every module it matches (that holds weights) wrappable."""
    if patterns is None:  # grouped (depthwise) convolutions too: peft takes them at some ranks only
        return [
            n
            for n, m in candidates.items()
            if isinstance(m, WRAPPABLE) and n not in attention and getattr(m, "groups", 1) == 1
        ]
    names = []
    for pattern in patterns:
        key = f"adapter.targets={pattern!r}"
        matched = _matching(pattern, candidates, key, problems)
        refused = [n for n in matched if not isinstance(candidates[n], WRAPPABLE) or n in attention]
        names += [n for n in matched if n not in refused and n not in names]
        if refused:
            first = refused[0]
            why = (
                "inside nn.MultiheadAttention, which reads its weight directly (an adapter "
                "there would never act)"
                if first in attention
                else f"a {type(candidates[first]).__name__} (peft's LoRA wraps Linear and Conv "
                "layers)"
            )
            problems.append(
                f"{key} matches {len(refused)} module(s) peft cannot adapt, e.g. {first}, {why}; "
                "narrow the pattern to Linear and Conv layers"
            )
    return names


def _matching(pattern: str, modules: dict, key: str, problems: list) -> list[str]:
    try:
        regex = re.compile(pattern)
    except re.error as err:
        problems.append(f"{key}: not a valid regex ({err}); fix the pattern")
        return []
    found = [name for name in modules if regex.search(name)]
    if not found:
        close = difflib.get_close_matches(pattern.strip("^$\\."), list(modules), n=3, cutoff=0.3)
        hint = f"; closest module names: {close}" if close else ""
        problems.append(f"{key} matches no module with weights (a typo?){hint}")
    return found


def _attention_parts(model: nn.Module) -> set[str]:
    return {
        f"{name}.{child}"
        for name, module in model.named_modules()
        if isinstance(module, nn.MultiheadAttention)
        for child, _ in module.named_children()
    }
