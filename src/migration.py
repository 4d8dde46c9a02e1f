"""A config saved by an older groupwise (a run's checkpoint keeps the config it trained with),
read as today's: the one place that knows what changed since.

- former model targets: runs trained before sources were objects name the old builder
  functions (`src.models.lenet.LeNet`);
- options added since: a section lacks them, and the run trained as their schema defaults do;
- `dataset.augment: true/false`, its only values before it had policies: basic and none.

A saved `pretrained` section needs no reading: no command reuses or compares it (a resume
restores the weights from its checkpoint, and RESUME_MUST_MATCH leaves it out), so a run
whose `pretrained.exclude` was `['^fc3\\.']`, before the presets excluded `[head]`, resumes
and evaluates as it is.
"""

import dataclasses

from omegaconf import DictConfig, OmegaConf

from src.config import schema
from src.data.build import options_schema
from src.data.transforms import augment_policy

FORMER_TARGETS = {
    "src.models.lenet.LeNet": "src.models.lenet.LeNetSource",
    "src.models.torchvision_models.torchvision_model": "src.models.torchvision_models.TorchvisionSource",
    "src.models.timm_models.timm_model": "src.models.timm_models.TimmSource",
    "src.models.hf_models.hf_model": "src.models.hf_models.HFSource",
}


def as_today(saved, section_schema: type | None):
    """A saved config section (a plain dict; anything else is returned as it is) as today's:
    a former model `_target_` is its source class, an option its schema (`section_schema`, a
    dataclass of src/config/schema.py; None for an open section such as `model`) has that it
    lacks is the schema's default, and `augment: true/false` is `basic`/`none`."""
    if not isinstance(saved, dict):
        return saved
    today = dict(saved)
    if "_target_" in today:
        today["_target_"] = FORMER_TARGETS.get(today["_target_"], today["_target_"])
    if dataclasses.is_dataclass(section_schema):
        today = {**schema.defaults(section_schema), **today}
    if "augment" in today:
        today["augment"] = augment_policy(today["augment"])
    return today


def dataset_as_today(dataset: DictConfig) -> DictConfig:
    """A finished run's dataset config, as today's data code builds it: the options added since
    (augmentation policies, random erasing, batch mixing, the training view) at the defaults of
    the schema its builder takes (a torchvision dataset's padded crop, an image folder's
    resized crop and flip), which keep what it trained with."""
    saved = OmegaConf.to_container(dataset, resolve=True)
    return OmegaConf.create(as_today(saved, options_schema(saved.get("_target_"))))
