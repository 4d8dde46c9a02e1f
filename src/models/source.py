"""What a model source is: one object per `model` config that builds the model and answers every
question the rest of a run asks about it, so nothing else keys on `_target_` strings or on a
library's names.

A source answers, for the model it builds:
- `build`: the model, for the run's input channels and classes, with random weights;
- `preprocess`: how its inputs are prepared (size, resize, crop, interpolation, mean/std), as
  its pretrained weights were trained to see them; None when it has no such metadata;
- `roles`: its parameters' roles (head, embeddings, blocks with a layer id and the number of
  layers, the same finer where blocks group into stages, the final norm, tensors that take no
  weight decay, the stem, the position embeddings), for the param-group presets and pretrained
  loading (`exclude` by role, input-channel adaptation, position-embedding resampling);
- `architecture` and `export_files`: how an export rebuilds it without groupwise.

conf/model/*.yaml name a source class as `_target_` and give its arguments. Any other
`_target_` (a user's own `nn.Module`) is a `CustomSource`: it builds the module and says, in one
line, which questions it cannot answer (its stem and position embeddings are the answer any
model gets: the first convolution, the libraries' conventional names). A source class that
names metadata for `dataset.transform_from` (`timm:<name>`) sets `transform_prefix`; defining
the class registers it (src/models/__init__.py imports the built-in ones).
"""

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

from src.config.arguments import check_arguments, locate
from src.errors import GroupwiseError
from src.models.contract import ParameterRoles, Preprocess, generic_roles


class ModelSource:
    """A model config's source; subclasses are the libraries groupwise builds from."""

    library: ClassVar[str]  # export/model.json's architecture.source
    name: str | None = None  # the architecture the library builds by that name
    transform_prefix: ClassVar[str | None] = None  # dataset.transform_from=<prefix><name>
    registered: ClassVar[dict[str, type["ModelSource"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.transform_prefix is not None:
            ModelSource.registered[cls.transform_prefix] = cls

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        raise NotImplementedError

    def preprocess(self) -> Preprocess | None:
        """How the pretrained weights' inputs were prepared; None: no such metadata."""
        return None

    @classmethod
    def preprocess_named(cls, name: str) -> Preprocess:
        """The metadata `dataset.transform_from=<transform_prefix><name>` names."""
        raise NotImplementedError

    def roles(self, model: nn.Module) -> ParameterRoles:
        return generic_roles(model, type(self).__name__)

    def builder_arguments(self) -> dict:
        """The library builder's further arguments (a ViT's image size), as the export records
        them: so that the library alone rebuilds the model."""
        return {}

    def set_drop_path_rate(self, rate: float) -> None:
        """Stochastic depth at `rate` (`model.drop_path_rate`), under the library's own name
        for it; a source whose models have none refuses in one line."""
        raise GroupwiseError(
            f"{DROP_PATH_KEY}={rate:g}: {self.library}'s {self.name} has no stochastic depth; "
            f"remove {DROP_PATH_KEY}"
        )

    def architecture(self, in_channels: int, num_classes: int) -> dict:
        """export/model.json's `architecture`: what the library needs to rebuild the model."""
        return {
            "source": self.library,
            "name": self.name,
            "num_classes": num_classes,
            "in_channels": in_channels,
            "kwargs": self.builder_arguments(),
        }

    def export_files(self, model: nn.Module) -> dict[str, str]:
        """Further files an export needs to rebuild the model: file name -> text."""
        return {}


@dataclass
class CustomSource(ModelSource):
    """A user's own `nn.Module` by `_target_`: built with the config's keys, plus `in_channels`
    and `num_classes` where its signature takes them. It knows nothing else of the model."""

    target: str = ""
    builder: type | None = None
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        self.library = self.target  # an export names it by its import path

    def build(self, in_channels: int, num_classes: int) -> nn.Module:
        run_time = {"in_channels": in_channels, "num_classes": num_classes}
        accepted = _keyword_arguments(self.builder)
        taken = {k: v for k, v in run_time.items() if accepted is None or k in accepted}
        return self.builder(**self.kwargs, **taken)

    def roles(self, model: nn.Module) -> ParameterRoles:
        return generic_roles(model, self.target, missing="a custom model's roles are unknown")

    def builder_arguments(self) -> dict:
        return self.kwargs


# The stochastic-depth rate of any built-in source (`set_drop_path_rate`); a custom model takes
# the key as one of its own arguments.
DROP_PATH_KEY = "model.drop_path_rate"


def model_source(config: Mapping) -> ModelSource:
    """The source of a resolved `model` config: its `_target_` class with the other keys as
    arguments, checked against its signature first, and `drop_path_rate` set through the
    source's `set_drop_path_rate`; or a `CustomSource` for any other target. A saved run's
    config is read as today's first (src/migration.py)."""
    kwargs = dict(config)
    target = str(kwargs.pop("_target_", None))
    builder = locate(
        target,
        "model",
        "no such class or function; name a source from conf/model/ or your own nn.Module as "
        "package.module.Class",
    )
    if not (isinstance(builder, type) and issubclass(builder, ModelSource)):
        return CustomSource(target, builder, kwargs)
    drop_path_rate = kwargs.pop(DROP_PATH_KEY.partition(".")[2], None)
    check_arguments(builder, kwargs, "model")
    source = builder(**kwargs)
    if drop_path_rate is not None:
        if not (isinstance(drop_path_rate, int | float) and 0 <= drop_path_rate < 1):
            raise GroupwiseError(
                f"{DROP_PATH_KEY}={drop_path_rate}: must be a number >= 0 and < 1 (the deepest "
                "block's chance of being skipped; 0.1 in BEiT and MAE fine-tunes), or null"
            )
        source.set_drop_path_rate(drop_path_rate)
    return source


def preprocess_named(name: str) -> Preprocess:
    """`dataset.transform_from`'s metadata: `<prefix><name>` of a registered source (`timm:`,
    `hf:`), or without a prefix a torchvision model or weights name."""
    for prefix in sorted(ModelSource.registered, key=len, reverse=True):
        if name.startswith(prefix):
            return ModelSource.registered[prefix].preprocess_named(name.removeprefix(prefix))
    raise GroupwiseError(f"dataset.transform_from={name}: no model source reads it")


def _keyword_arguments(builder) -> set[str] | None:
    """The names `builder` takes; None when it takes any (**kwargs)."""
    parameters = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}
