"""A checkpoint saved from a wrapped model, as a plain model's state_dict: the keys peft gave
(`base_model.model.`, `.base_layer.`, `.modules_to_save.default.`) back to the module's own,
and each LoRA update merged into its base weight as peft's merge does (W + alpha / r x B A),
so that `pretrained.path=<a LoRA run's checkpoint>` loads into any plain model."""

import re

import torch
import torch.nn.functional as F

from src.errors import GroupwiseError

LORA_A = re.compile(r"^(?:base_model\.model\.)?(.*)\.lora_A\.default\.weight$")


def is_wrapped_state(tensors: dict[str, torch.Tensor]) -> bool:
    return any(".base_layer." in key or ".lora_A." in key for key in tensors)


def plain_state(tensors: dict[str, torch.Tensor], alpha: float | None, where: str) -> dict:
    """`tensors` of a wrapped model as the plain model's; `alpha`: the adapter's (the
    checkpoint's config says it; None: not known, refused when there is an update to merge)."""
    if any(".lora_magnitude_vector." in key for key in tensors):
        raise GroupwiseError(
            f"{where}: a DoRA checkpoint; its updates merge only through peft: load the run's "
            "export/model.safetensors (merged) instead"
        )
    plain = {}
    for key, tensor in tensors.items():
        name = key.removeprefix("base_model.model.")
        if ".original_module." in f".{name}" or ".lora_" in name:
            continue
        plain[name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")] = tensor
    for key, a in tensors.items():
        match = LORA_A.match(key)
        if not match:
            continue
        if alpha is None:
            raise GroupwiseError(
                f"{where}: holds LoRA updates but no adapter config to scale them by; load the "
                "run's export/model.safetensors (merged) instead"
            )
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        weight = f"{match.group(1)}.weight"
        plain[weight] = plain[weight] + _delta(a.float(), b.float(), alpha / a.shape[0]).to(
            plain[weight].dtype
        )
    return plain


def _delta(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """B A as peft's Linear and Conv2d layers compute it (get_delta_weight), times the scale."""
    if a.dim() == 2:
        return scale * (b @ a)
    if a.dim() == 4 and a.shape[2:] == (1, 1):
        return scale * (b.squeeze(3).squeeze(2) @ a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3)
    if a.dim() == 4:
        return scale * F.conv2d(a.permute(1, 0, 2, 3), b).permute(1, 0, 2, 3)
    raise GroupwiseError(f"a LoRA update of {a.dim()}-D weights is merged only by peft")
