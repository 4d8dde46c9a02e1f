"""Why a checkpoint loaded nothing into the model, said so that it leads to the fix: the keys
most alike on both sides, and the `prefix` or `rename` that would map one onto the other.

Keys are alike when they end alike (`bert.encoder.layer.0.attention.self.query.weight` and
`encoder.layer.0.attention.self.query.weight`): the longer the dotted ending they share, the
more alike, and a pair of the same shape before one of another. What precedes the shared
ending on each side is the mapping a pair suggests; the one that would load the most tensors
is offered.
"""

import re
from collections import Counter

import torch

SHOWN = 3  # pairs of alike keys in the message


def why_nothing_loaded(checkpoint: dict[str, torch.Tensor], model: dict[str, torch.Tensor]) -> str:
    pairs = _alike(checkpoint, model)
    if not pairs:  # nothing ends alike: the largest tensors say most about what each side is
        return (
            f"no key ends like one of the other side's; the checkpoint's largest are "
            f"{_largest(checkpoint)}, the model's {_largest(model)}; is it for another model?"
        )
    shown = ", ".join(f"'{c}' (checkpoint) ~ '{m}' (model)" for c, m, _ in pairs[:SHOWN])
    return f"the keys most alike: {shown}{_mapping_hint(pairs, checkpoint, model)}"


def _alike(checkpoint: dict, model: dict) -> list[tuple[str, str, str]]:
    """(checkpoint key, model key, shared ending) for each checkpoint key that ends like some
    model key, most alike first."""
    endings: dict[str, list[str]] = {}
    for key in model:
        parts = key.split(".")
        for start in range(len(parts)):
            endings.setdefault(".".join(parts[start:]), []).append(key)
    scored = []
    for key, tensor in checkpoint.items():
        parts = key.split(".")
        ending = next(
            (e for start in range(len(parts)) if (e := ".".join(parts[start:])) in endings), None
        )
        if ending is None:
            continue
        candidates = endings[ending]
        match = next((m for m in candidates if model[m].shape == tensor.shape), candidates[0])
        same_shape = model[match].shape == tensor.shape
        score = (same_shape, ending.count(".") + 1, tensor.numel())
        scored.append((score, key, match, ending))
    scored.sort(key=lambda item: item[0], reverse=True)
    return [(key, match, ending) for _, key, match, ending in scored]


def _mapping_hint(pairs: list, checkpoint: dict, model: dict) -> str:
    """The prefix swap most pairs agree on, offered when it would load something."""
    swaps = Counter(
        (c.removesuffix(ending), m.removesuffix(ending)) for c, m, ending in pairs
    ).most_common(SHOWN)
    loads = {swap: _loads(swap, checkpoint, model) for swap, _ in swaps}
    (old, new), count = max(loads.items(), key=lambda item: item[1])
    if not count or old == new:
        return "; is it for another model?"
    would = f" (it would load {count} of the model's {len(model)} tensors)"
    if not new:
        return f"; every key it loads starts with {old!r}: try pretrained.prefix={old}{would}"
    return f"; try \"pretrained.rename=[['^{re.escape(old)}', '{new}']]\"{would}"


def _loads(swap: tuple[str, str], checkpoint: dict, model: dict) -> int:
    old, new = swap
    return sum(
        1
        for key, tensor in checkpoint.items()
        if key.startswith(old)
        and (mapped := new + key.removeprefix(old)) in model
        and model[mapped].shape == tensor.shape
    )


def _largest(tensors: dict[str, torch.Tensor]) -> list[str]:
    return sorted(tensors, key=lambda key: tensors[key].numel(), reverse=True)[:SHOWN]
