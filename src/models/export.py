"""A trained model for use without groupwise: `export/model.safetensors` (the weights, under the
model's own parameter names) and `export/model.json` (how to rebuild the architecture, the
class names in label order, how an image becomes the model's input).

`architecture.source` says which library builds the model from `name`, `num_classes`,
`in_channels` and `kwargs`: `torchvision` (`torchvision.models.get_model`), `timm`
(`timm.create_model`), `transformers` (`AutoModelForImageClassification.from_config` of the
exported config.json) or `lenet` (the seed's LeNet, whose few lines the README's rebuild
snippet holds). A new model source adds its
`_target_` to SOURCES and a branch to the snippet.
"""

import json
from pathlib import Path

import torch

from src.models import timm_models, torchvision_models

FORMAT = "groupwise-export/1"
DIRECTORY = "export"  # in the run dir
WEIGHTS_FILE = "model.safetensors"
DESCRIPTION_FILE = "model.json"
# The model config's `_target_` -> the `source` model.json names, and `name` when the target
# builds one architecture only.
SOURCES = {
    "src.models.lenet.LeNet": ("lenet", "LeNet"),
    "src.models.torchvision_models.torchvision_model": ("torchvision", None),
    "src.models.timm_models.timm_model": ("timm", None),
    "src.models.hf_models.hf_model": ("transformers", None),
}
# A transformers model is rebuilt from its config, written beside the weights.
TRANSFORMERS_CONFIG_FILE = "config.json"


def architecture(model_config: dict, in_channels: int, num_classes: int) -> dict:
    """How to build the model outside groupwise, from the run's resolved `model` config. A
    builder not in SOURCES is named by its import path: the weights are exported all the same."""
    kwargs = dict(model_config)
    target = kwargs.pop("_target_")
    source, name = SOURCES.get(target, (target, None))
    name = kwargs.pop("name", name)
    # The builders' own arguments (a ViT's image size), so that the library alone rebuilds it.
    if source == "timm":
        kwargs = timm_models.create_arguments(name, **kwargs)
    elif source == "torchvision":
        kwargs = torchvision_models.builder_arguments(name, **kwargs)
    elif source == "transformers":  # the exported config.json holds all of it
        kwargs = {}
    return {
        "source": source,
        "name": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "kwargs": kwargs,  # further arguments of the builder, e.g. a ViT's image_size
    }


def write_export(
    directory: Path,
    state_dict: dict[str, torch.Tensor],
    architecture: dict,
    class_names: list[str],
    input_description: dict,
    origin: dict,
    transformers_config=None,
) -> None:
    """Write both files; `origin` says which checkpoint the weights are (recorded, not used);
    a transformers model's `config` is written too (`save_pretrained`'s config.json)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    # safetensors stores each tensor on its own: contiguous, on the CPU, no shared storage.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    description = {
        "format": FORMAT,
        "architecture": architecture,
        "classes": class_names,
        "input": input_description,
        "weights": {"file": WEIGHTS_FILE, **origin},
    }
    (directory / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    if transformers_config is not None:
        transformers_config.to_json_file(str(directory / TRANSFORMERS_CONFIG_FILE))


def read_description(directory: Path) -> dict:
    return json.loads((directory / DESCRIPTION_FILE).read_text())
