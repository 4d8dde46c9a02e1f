"""A Hugging Face transformers model's checkpoint names -> its parameter names.

transformers 5 renames some models' parameters and renames checkpoint keys to match while
loading (a ViT's `vit.encoder.layer.0.attention.attention.query.weight` on disk, as
`save_pretrained` still writes it, is `vit.layers.0.attention.q_proj.weight` in the model);
and a checkpoint of the bare backbone (`Dinov2Model`: `embeddings.*`) lacks the task model's
`dinov2.` prefix. groupwise applies the library's own renaming rules
(`get_model_conversion_mapping`, as `from_pretrained` does) and adds the base model's prefix,
so the filter then matches names as the model has them. Other models pass through untouched.

Those rules live in transformers' loading internals (`transformers.conversion_mapping`,
`transformers.core_model_loading`): pyproject.toml bounds the version, and
tests/test_private_apis.py fails naming what changed when a release moves them.
"""

import importlib.metadata

import torch
from torch import nn

from src.errors import warn


def to_model_names(
    model: nn.Module, tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The checkpoint under the names of a transformers `model`, and a note per change."""
    if not type(model).__module__.startswith("transformers."):
        return tensors, []
    notes = []
    renamed, count, unconverted = _library_renaming(model, tensors)
    if count:
        notes.append(f"transformers' names for {type(model).__name__}: {count} keys renamed")
    if unconverted:
        notes.append(
            f"{len(unconverted)} keys need transformers' tensor conversion, not applied: "
            f"{', '.join(unconverted[:3])}"
        )
    prefixed, count = _base_model_prefix(model, renamed)
    if count:
        notes.append(f"base model prefix '{model.base_model_prefix}.' added to {count} keys")
    return prefixed, notes


def _library_renaming(model: nn.Module, tensors: dict[str, torch.Tensor]):
    version = importlib.metadata.version("transformers")
    if int(version.split(".")[0]) < 5:  # before 5, checkpoints carry the model's own names
        return tensors, 0, []
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import (
            WeightConverter,
            WeightRenaming,
            rename_source_key,
        )
    except ImportError as err:
        warn(
            f"transformers {version}: its renaming of checkpoint keys cannot be applied ({err}); "
            f"the keys it renames for {type(model).__name__} keep their names on disk, so "
            "those weights load only where the model still has those names (the load report "
            "lists what was skipped); groupwise needs updating for this transformers version "
            "(tests/test_private_apis.py names what changed)"
        )
        return tensors, 0, []
    transforms = get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    renamed, count, unconverted = {}, 0, []
    for key, tensor in tensors.items():
        new, converter = rename_source_key(key, renamings, converters)
        if converter is not None:  # split or merged tensors: more than a new name
            unconverted.append(key)
            new = key
        count += new != key
        renamed[new] = tensor
    return renamed, count, unconverted


def _base_model_prefix(model: nn.Module, tensors: dict[str, torch.Tensor]):
    """A backbone's checkpoint in a task model: `embeddings.x` -> `dinov2.embeddings.x`."""
    prefix = getattr(model, "base_model_prefix", "")
    names = set(model.state_dict())
    if not prefix or any(key in names for key in tensors if key.startswith(f"{prefix}.")):
        return tensors, 0
    moved = {
        key: f"{prefix}.{key}" if key not in names and f"{prefix}.{key}" in names else key
        for key in tensors
    }
    return {moved[key]: tensor for key, tensor in tensors.items()}, sum(
        k != v for k, v in moved.items()
    )
