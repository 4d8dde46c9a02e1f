"""The param groups explained: as data for `param_groups.json`, as a table for people."""

import re

from src.optim.param_groups import ParamGroup
from src.optim.resolve import Resolution


def explain(
    resolution: Resolution,
    built: list[ParamGroup],
    base_lr: float,
    weight_decay: float = 0.0,
    weight_decay_1d: bool = False,
) -> dict:
    """The optimizer groups as built, as plain data for `param_groups.json`: one entry per
    name (a group's decayed and exempt halves together), in the order the config gave them;
    `resolution` adds what a group matched but another owns, and the tied names."""
    by_name = {}
    for group in built:
        by_name.setdefault(group["name"], []).append(group)
    total = sum(p.numel() for g in built for p in g["params"])
    return {
        "base_lr": base_lr,
        "weight_decay": weight_decay,
        "weight_decay_1d": weight_decay_1d,
        "groups": [
            _describe(by_name[g.name], g.param_names, weight_decay * g.weight_decay_mult, total)
            for g in resolution.groups
            if g.name in by_name
        ],
        "shadowed": [
            {"group": group, "owner": owner, "params": names}
            for (group, owner), names in resolution.shadowed.items()
        ],
        "tied": resolution.tied,
    }


def _describe(halves: list[ParamGroup], names: list[str], decay: float, total: int) -> dict:
    """One name's optimizer groups (its decayed half first, as built) as one entry; `names`:
    its parameters in the model's order; `decay`: its tensors' weight decay, where they decay."""
    first = halves[0]
    options = {k: v for k, v in first.items() if k not in ParamGroup.__annotations__}
    elements = sum(p.numel() for half in halves for p in half["params"])
    return {
        "name": first["name"],
        "config_group": first["config_group"],
        "patterns": first["patterns"],
        "lr_mult": first["lr_mult"],
        "lr": first["lr"],
        "weight_decay": decay,
        "no_decay_tensors": sum(len(h["params"]) for h in halves if not h["decays"]),
        "trains_from_epoch": first["trains_from_epoch"],
        **options,
        "tensors": sum(len(h["params"]) for h in halves),
        "elements": elements,
        "share": elements / total if total else 0.0,
        "params": names,
        "params_folded": fold_by_number(names),
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
            decay += ", 1-D: 0"  # and the tensors the model source exempts
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
        lines.append(", ".join(fold_by_number([g["name"] for g in groups])) + ":")
        lines += [f"  {name}" for name in fold_by_number([n for g in groups for n in g["params"]])]
    for entry in info["shadowed"]:
        lines.append(
            f"{entry['group']} also matches {', '.join(fold_by_number(entry['params']))}, "
            f"owned by {entry['owner']}"
        )
    for name, owner_name in info["tied"].items():
        lines.append(f"{name} is tied to {owner_name}: trained once, in its group")
    if "adapter" in info:  # what the adapter trains, beside the full model (src/adapters)
        lines.append(info["adapter"]["summary"])
    return "\n".join(lines)


def fold_by_number(names: list[str]) -> list[str]:
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
            text += _brace_numbers(numbers) + tail
        folded.append(text)
    return folded


def _brace_numbers(numbers: frozenset[str]) -> str:
    """`7`, `{0,1}`, `{0..3,5}`: the numbers one gap of a folded name stands for."""
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
