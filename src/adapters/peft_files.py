"""Adapters in peft's own format (`adapter_config.json` + `adapter_model.safetensors`): one
saved by peft starts or continues a run (`adapter.path`), and a run's export holds its
adapter so, for peft's `PeftModel.from_pretrained` on the plain model."""

import json
import re
from pathlib import Path

from torch import nn

from src.adapters.targets import AdapterSpec
from src.errors import GroupwiseError

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"


def _saved_as(spec: AdapterSpec) -> dict:
    """The run's adapter as peft's adapter_config.json states it."""
    return {
        "r": spec.r,
        "lora_alpha": spec.alpha,
        "use_dora": spec.kind == "dora",
        "target_modules": sorted(spec.targets),
        "modules_to_save": sorted(spec.train_fully),
    }


def _peft_matches(targets, name: str) -> bool:
    """Whether peft's `target_modules` select module `name`: a string is a regex the whole name
    matches, a list names modules or their last parts (peft saves its list shortened so)."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith(f".{t}") for t in targets or [])


def problems(path: str, spec: AdapterSpec, module_names: list[str]) -> list[str]:
    """What keeps the adapter in `path` from loading into the run's adapter on a model of
    `module_names`: missing files, or a config that differs from the run's (another rank,
    other modules)."""
    where = Path(path).expanduser()
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (where / name).is_file()]
    if missing:
        return [
            f"adapter.path={path}: no {' or '.join(missing)} there; pass the directory peft's "
            "save_pretrained wrote (e.g. a run's export/adapter)"
        ]
    saved = json.loads((where / CONFIG_FILE).read_text())
    fully = sorted(saved.get("modules_to_save") or [])
    saved["modules_to_save"] = sorted(n for n in module_names if _peft_matches(fully, n))
    saved["target_modules"] = sorted(
        n
        for n in module_names
        if _peft_matches(saved.get("target_modules"), n)
        and not any(n == m or n.startswith(f"{m}.") for m in saved["modules_to_save"])
    )
    differences = [
        f"{key}: {_short(saved.get(key))} there, {_short(value)} in this run"
        for key, value in _saved_as(spec).items()
        if saved.get(key) != value
    ]
    if differences:
        return [
            f"adapter.path={path}: its {CONFIG_FILE} differs from the run's adapter in "
            f"{'; '.join(differences)}; set adapter.r, alpha, targets, train_fully to match it, "
            "or pass an adapter saved with this config"
        ]
    return []


def _short(value) -> str:
    if isinstance(value, list) and len(value) > 3:
        return f"[{', '.join(map(str, value[:3]))}, ... {len(value)} in all]"
    return str(value)


def load(model: nn.Module, path: str) -> None:
    """The adapter weights saved by peft in `path`, into the wrapped `model` (checked by
    `problems` first: same modules, same rank)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(Path(path).expanduser() / WEIGHTS_FILE))
    result = set_peft_model_state_dict(model, weights)
    unexpected = [k for k in result.unexpected_keys if "lora_" in k or "modules_to_save" in k]
    if unexpected:
        raise GroupwiseError(
            f"adapter.path={path}: {len(unexpected)} tensors fit no module of this model "
            f"({unexpected[0]}, ...); pass an adapter saved for this model"
        )


def save(model: nn.Module, directory: Path) -> None:
    """The wrapped `model`'s adapter (and the modules trained fully) in peft's own format."""
    model.save_pretrained(str(directory))
