"""A trained model for use without groupwise: `export/model.safetensors` (the weights, under the
model's own parameter names) and `export/model.json` (how to rebuild the architecture, the
class names in label order, how an image becomes the model's input).

`architecture` is the model source's answer: which library builds the model (`source`) from
`name`, `num_classes`, `in_channels` and `kwargs`: `torchvision` (`torchvision.models.get_model`),
`timm` (`timm.create_model`), `transformers` (`AutoModelForImageClassification.from_config` of
the exported config.json) or `lenet` (the seed's LeNet, whose few lines the README's rebuild
snippet holds); further files the source needs (transformers' config.json) are written beside.
"""

import json
from pathlib import Path

import torch

from src.models.source import ModelSource

FORMAT = "groupwise-export/1"
DIRECTORY = "export"  # in the run dir
WEIGHTS_FILE = "model.safetensors"
DESCRIPTION_FILE = "model.json"


def write_export(
    directory: Path,
    state_dict: dict[str, torch.Tensor],
    source: ModelSource,
    model: torch.nn.Module,
    class_names: list[str],
    input_description: dict,
    origin: dict,
) -> None:
    """Write the weights, model.json and the source's own files. `input_description`: how an
    image becomes the model's input; `origin`: which checkpoint the weights are (recorded, not
    used). Input channels and classes are the built model's, as the data gave them."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    # safetensors stores each tensor on its own: contiguous, on the CPU, no shared storage.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT})
    description = {
        "format": FORMAT,
        "architecture": source.architecture(input_description["channels"], len(class_names)),
        "classes": class_names,
        "input": input_description,
        "weights": {"file": WEIGHTS_FILE, **origin},
    }
    (directory / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    for name, text in source.export_files(model).items():
        (directory / name).write_text(text)


def read_description(directory: Path) -> dict:
    return json.loads((directory / DESCRIPTION_FILE).read_text())
