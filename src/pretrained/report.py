"""What a pretrained load did, said positively: how much of the model is now pretrained, and
every tensor that was not loaded, with the reason. One table for the console and TensorBoard,
the full lists in `pretrained_report.json`."""

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field

# Lists longer than this are folded by key prefix: `layer1.* (60)`.
MAX_LISTED = 8


@dataclass
class LoadReport:
    path: str
    source: str = ""  # the format read, and where in the checkpoint the weights were
    key_changes: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # Position embeddings resampled to the model's patch grid (src.pretrained.pos_embed).
    resampled: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    skipped_shape: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # Integer or boolean tensors for floating-point ones -> their dtypes: the load refuses them.
    wrong_dtype: dict[str, dict[str, str]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    loaded_elements: int = 0
    model_elements: int = 0
    built: str = ""  # how the model was built: on the meta device, or normally and why
    advice: list[str] = field(default_factory=list)
    # Entries of the file left unbuilt (other libraries' objects) -> the class they named.
    unbuilt: dict[str, str] = field(default_factory=dict)
    # Loaded tensors given a storage of their own -> why (shared with another key, a view).
    copied: dict[str, str] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)  # the roles and patterns, as configured
    exclude_origin: str = ""  # where they were set, when not on the command line
    # Each role `exclude` names -> the keys it kept out (the rest of `excluded`: by pattern).
    excluded_by_role: dict[str, list[str]] = field(default_factory=dict)

    @property
    def loaded_share(self) -> float:
        return self.loaded_elements / self.model_elements if self.model_elements else 0.0

    def to_json(self) -> dict:
        counts = {
            label: len(getattr(self, label))
            for label in (
                "loaded",
                "adapted",
                "resampled",
                "skipped_shape",
                "excluded",
                "unexpected",
                "missing",
            )
        }
        return {**asdict(self), "loaded_share": self.loaded_share, "counts": counts}


def fold_by_prefix(keys: list[str], limit: int = MAX_LISTED) -> list[str]:
    """Keys as they are when few; else grouped by prefix into at most `limit` entries,
    e.g. ['conv1.weight', 'bn1.* (5)', 'layer1.* (60)']."""
    if len(keys) <= limit:
        return list(keys)
    # The shallowest level that shows some structure: `fpn.* (16)` says less than
    # `fpn.inner_blocks.* (8), fpn.layer_blocks.* (8)`; eight blocks of two would say too much.
    folded = None
    for depth in range(1, max(len(k.split(".")) for k in keys)):
        groups = Counter(".".join(k.split(".")[:depth]) for k in keys)
        if len(groups) > limit:
            break
        alone = {".".join(k.split(".")[:depth]): k for k in keys}  # the key of a group of one
        folded = [alone[prefix] if n == 1 else f"{prefix}.* ({n})" for prefix, n in groups.items()]
        if len(groups) > 1:
            break
    return folded or [*keys[: limit - 1], f"... ({len(keys) - limit + 1} more)"]


def format_report(report: LoadReport) -> str:
    lines = [f"pretrained: {report.path} ({report.source})"]
    if report.unbuilt:
        lines.append(f"  not built      {_unbuilt(report.unbuilt)}")
    lines += [f"  keys           {change}" for change in report.key_changes]
    lines.append(
        f"  loaded         {len(report.loaded)} tensors, {report.loaded_elements:,} of "
        f"{report.model_elements:,} parameters ({_percent(report.loaded_share)})"
    )
    if report.copied:
        listed = [f"{k} ({why})" for k, why in report.copied.items()]
        lines.append(f"  own storage    {len(listed)}: {', '.join(_shorten(listed))}")
    for label, shapes in (
        ("adapted", report.adapted),
        ("resampled", report.resampled),
        ("skipped_shape", report.skipped_shape),
    ):
        if shapes:
            lines.append(f"  {label:<14} {len(shapes)}: {', '.join(fold_shapes(shapes))}")
    if report.excluded:
        lines.append(f"  excluded       {len(report.excluded)} {_excluded_by(report)}")
    for label in ("unexpected", "missing"):
        keys = getattr(report, label)
        if keys:
            lines.append(f"  {label:<14} {len(keys)}: {', '.join(fold_by_prefix(keys))}")
    if report.built:
        lines.append(f"  model          {report.built}")
    lines += [f"  advice         {line}" for line in report.advice]
    return "\n".join(lines)


def fold_shapes(shapes: dict[str, dict]) -> list[str]:
    """`key [checkpoint shape] -> [model shape]` (or dtypes: `key int64 -> float32`) each; folded, each group still shows why it
    did not load with its first key's shapes: `layer4.* (12, e.g. layer4.0.conv1.weight ...)`."""

    def why(key: str) -> str:
        return f"{key} {shapes[key]['checkpoint']} -> {shapes[key]['model']}"

    if len(shapes) <= MAX_LISTED:
        return [why(key) for key in shapes]
    folded = []
    for entry in fold_by_prefix(list(shapes)):
        prefix, star, count = entry.partition(".* (")
        if not star:  # a key alone
            folded.append(why(entry))
            continue
        first = next(key for key in shapes if key.startswith(f"{prefix}."))
        folded.append(f"{prefix}.* ({count.removesuffix(')')}, e.g. {why(first)})")
    return folded


def _excluded_by(report: LoadReport) -> str:
    """The excluded keys by the role or pattern that kept them out, and where those came from:
    one set by a config file, not typed by the user, is easy to miss."""
    by_item = {f"role {role}": keys for role, keys in report.excluded_by_role.items() if keys}
    patterns = [p for p in report.exclude if p not in report.excluded_by_role]
    by_role = {key for keys in report.excluded_by_role.values() for key in keys}
    for key in report.excluded:
        if key not in by_role:
            pattern = next((p for p in patterns if re.search(p, key)), "?")
            by_item.setdefault(f"'{pattern}'", []).append(key)
    origin = f", {report.exclude_origin}" if report.exclude_origin else ""
    return "; ".join(
        f"by {item}{origin}: {', '.join(fold_by_prefix(keys))}" for item, keys in by_item.items()
    )


def _unbuilt(unbuilt: dict[str, str]) -> str:
    """Other libraries' objects in the file, never imported nor run: where, and what."""
    listed = [f"{where} ({name})" for where, name in unbuilt.items()]
    if len(listed) > MAX_LISTED:
        classes = sorted(set(unbuilt.values()))
        listed = [*fold_by_prefix(list(unbuilt)), f"of {', '.join(_shorten(classes))}"]
    return (
        f"{len(unbuilt)} entries of other libraries' classes, neither imported nor run (not "
        f"weights): {', '.join(listed)}"
    )


def _shorten(items: list[str]) -> list[str]:
    return (
        items
        if len(items) <= MAX_LISTED
        else [*items[: MAX_LISTED - 1], f"... ({len(items) - MAX_LISTED + 1} more)"]
    )


def _percent(share: float) -> str:
    # Rounded down: 99.97% is not "100.0%", which would claim every parameter was loaded.
    return f"{math.floor(share * 1000) / 10:.1f}%"
