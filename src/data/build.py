"""The data step, for a run and for the commands that use a trained run (`src.evaluate`,
`src.predict`): a dataset section read as its builder's typed options, checked before anything
is built, then built into `Data`.

A builder whose first parameter is a schema dataclass (`digits(options: DigitsConfig, seed,
model_preprocess)`) takes the section as that dataclass; a section saved by an older groupwise
reads the options added since at their schema defaults, which keep what it trained with. Any
other `_target_` (a user's own function) is called with the section's keys and `seed`, as
Hydra's `instantiate` would call it.
"""

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import is_dataclass

from omegaconf import DictConfig, OmegaConf

from src.config.arguments import check_arguments, locate
from src.config.dataset_schema import (
    DigitsConfig,
    FileDatasetConfig,
    ImageFolderConfig,
    LoaderConfig,
    TorchvisionDatasetConfig,
)
from src.data import digits, file_datasets, image_folder, view
from src.data.loading import Data
from src.data.mixing import MIXING_KEYS
from src.errors import GroupwiseError
from src.models.source import ModelSource

# What each kind of options needs checked beyond its ranges, given the options and the seed;
# a kind inherits its parents' checks.
CHECKS: dict[type, Callable[[object, int], list[str]]] = {
    LoaderConfig: lambda options, seed: view.problems(options),
    FileDatasetConfig: lambda options, seed: file_datasets.problems(options),
    ImageFolderConfig: lambda options, seed: image_folder.problems(options),
    DigitsConfig: digits.problems,
}
# Torchvision's datasets: ten classes each.
TORCHVISION_CLASSES = 10


def dataset_options(section: Mapping) -> tuple[Callable, object]:
    """The section's builder, and what it takes: its typed options (a schema dataclass), or
    the section's keys as a dict for a builder without a typed first parameter."""
    keys = (
        OmegaConf.to_container(section, resolve=True)
        if isinstance(section, DictConfig)
        else dict(section)
    )
    target = keys.pop("_target_", None)
    builder = locate(target, "dataset", "no such function; name one from conf/dataset/")
    schema = _options_type(builder)
    if schema is None:
        return builder, {k: v for k, v in keys.items() if k not in MIXING_KEYS}
    typed = OmegaConf.merge(OmegaConf.structured(schema), {**keys, "_target_": target})
    return builder, OmegaConf.to_object(typed)


def problems(section: Mapping, seed: int) -> list[str]:
    """Every problem of the dataset's options that shows before any image is read."""
    try:
        builder, options = dataset_options(section)
    except GroupwiseError as err:
        return err.problems
    if isinstance(options, dict):
        try:
            check_arguments(builder, {**options, "seed": seed}, "dataset")
        except GroupwiseError as err:
            return err.problems
        return []
    return [
        problem
        for kind, check in CHECKS.items()
        if isinstance(options, kind)
        for problem in check(options, seed)
    ]


def num_classes(section: Mapping) -> int | None:
    """How many classes the data holds, where the options tell without reading an image;
    None where only the data can tell."""
    _, options = dataset_options(section)
    if isinstance(options, DigitsConfig):
        return len(options.classes)
    if isinstance(options, ImageFolderConfig):
        return image_folder.num_classes(options) or None
    if isinstance(options, TorchvisionDatasetConfig):
        return TORCHVISION_CLASSES
    return None


def build_data(section: Mapping, seed: int, source: ModelSource) -> Data:
    """The dataset's loaders, classes and input; a file dataset gets the model source's
    preprocessing, which its `transform_from=model` takes."""
    builder, options = dataset_options(section)
    if isinstance(options, dict):
        return builder(**options, seed=seed)
    if isinstance(options, FileDatasetConfig):
        return builder(options, seed, model_preprocess=source.preprocess())
    return builder(options, seed)


def options_schema(target: str | None) -> type | None:
    """The schema dataclass the builder `target` names takes; None: no such builder, or one
    that takes keywords."""
    try:
        return _options_type(locate(target, "dataset", "no such function"))
    except GroupwiseError:
        return None


def _options_type(builder: Callable) -> type | None:
    """The schema dataclass a builder's first parameter takes; None: it takes keywords."""
    parameters = list(inspect.signature(builder).parameters)
    if not parameters:
        return None
    try:
        hint = typing.get_type_hints(builder).get(parameters[0])
    except (NameError, TypeError):  # annotations that do not resolve: not a typed builder
        return None
    return hint if isinstance(hint, type) and is_dataclass(hint) else None
