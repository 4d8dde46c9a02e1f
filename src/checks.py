"""Every problem of a run's config, found before anything is built or written, and what
was parsed on the way: the steps build from a `CheckedRun`, so nothing is checked twice.

The schema's own ranges and choices (`src.config.checks`), then what only the parts
themselves can tell: the optimizer's arguments (by building it on one dummy tensor), the param
group rules against that optimizer's keys, the dataset's options (splits, classes, shots, the
folder's layout: no image read), the pretrained key rules, the model source (its arguments,
its name), the device, and every group's patterns and roles matched against the model's
parameter names (the model built on the meta device: no weights, no memory). All problems are
reported together, one line each.
"""

import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from src.adapters import peft_files
from src.adapters.targets import AdapterSpec, adapter_spec
from src.adapters.wrap import TrainableView, view_roles, wrap
from src.config import checks as schema_checks
from src.config.arguments import check_arguments, locate
from src.data import build as data_build
from src.errors import GroupwiseError
from src.models.source import ModelSource, model_source
from src.optim.resolve import resolve
from src.optim.specs import GroupSpec, accepted_keys, parse_specs
from src.pretrained.exclusion import role_problems
from src.pretrained.load import check_options


@dataclass(frozen=True)
class CheckedRun:
    """What the check pass parsed, for the steps to build from."""

    source: ModelSource  # the model's source: builds it, names its roles, exports it
    group_specs: list[GroupSpec]
    optimizer_class: type
    pretrained_options: dict  # the `pretrained` key rules, as load's keyword arguments
    device: torch.device
    adapter: AdapterSpec | None = None  # None: adapter=none, every parameter trains


def check_run(cfg: DictConfig) -> CheckedRun:
    problems = schema_checks.problems(cfg)
    optimizer_class, optimizer_problems = _optimizer_problems(cfg.optimizer)
    problems += optimizer_problems
    specs = None
    if optimizer_class is not None:
        specs, found = _parsed(
            parse_specs, OmegaConf.to_container(cfg.param_groups), accepted_keys(optimizer_class)
        )
        problems += found
    # An option out of range is told once, by the schema's checks; what follows from it is not.
    if not _at(problems, "dataset"):
        problems += data_build.problems(cfg.dataset, cfg.seed)
    pretrained, found = _parsed(check_options, OmegaConf.to_container(cfg.pretrained, resolve=True))
    problems += found
    source, found = None, _required_model_keys(cfg.model)
    if not found:
        source, found = _parsed(model_source, OmegaConf.to_container(cfg.model, resolve=True))
    problems += found
    adapter = None
    if source is not None:
        classes = None if _at(problems, "dataset") else data_build.num_classes(cfg.dataset)
        adapter_config, found = (
            (None, []) if _at(problems, "adapter") else _parsed(_adapter_config, cfg)
        )
        adapter, more = _model_problems(source, specs, pretrained, classes, adapter_config)
        problems += found + more
    device, found = _parsed(resolve_device, cfg.trainer.device)
    problems += found + _monitor_problems(cfg.trainer)
    if problems:
        raise GroupwiseError(*problems)
    return CheckedRun(source, specs, optimizer_class, pretrained, device, adapter)


def resolve_device(name: str, key: str = "trainer.device") -> torch.device:
    """The device `name` (auto, cpu, cuda, cuda:N) names on this machine; `key` is the option
    that set it, for the messages."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GroupwiseError(f"{key}={name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GroupwiseError(
            f"{key}={name}: CUDA is not available on this machine; use {key}=cpu or auto"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GroupwiseError(
            f"{key}={name}: this machine has {torch.cuda.device_count()} GPU(s), "
            f"numbered from 0; use {key}=cuda or auto"
        )
    if device.type not in ("cpu", "cuda"):
        raise GroupwiseError(f"{key}={name}: use auto, cpu, cuda or cuda:N")
    return device


def optimizer_class(target: str) -> type:
    """The optimizer's class, before it is built: it tells which keys a param group may set."""
    return locate(target, "optimizer", "no such class; use e.g. torch.optim.AdamW")


def _optimizer_problems(optimizer: DictConfig) -> tuple[type | None, list[str]]:
    """The optimizer's class, and what is wrong with its arguments: the base lr and weight
    decay must be finite numbers >= 0 (every group's are multiples of them), and a base lr of 0
    freezes every group, as every group at lr_mult=0 would (refused alike); the rest is
    checked by the optimizer's own constructor, on one dummy tensor."""
    try:
        cls = optimizer_class(optimizer.get("_target_"))
    except GroupwiseError as err:
        return None, err.problems
    arguments = OmegaConf.to_container(optimizer, resolve=True)
    arguments.pop("_target_")
    problems = [
        f"optimizer.{key}={arguments[key]!r}: must be a finite number >= 0 (the base value every "
        "group's multiplier scales)"
        for key in ("lr", "weight_decay")
        if key in arguments and not _finite_non_negative(arguments[key])
    ]
    if not problems and arguments.get("lr") == 0:
        problems.append(
            "optimizer.lr=0: every group's lr is a multiple of it, so nothing would train; "
            "set a base lr > 0 (freeze a group with param_groups.<name>.lr_mult=0)"
        )
    problems += _parsed(check_arguments, cls, {"params": [], **arguments}, "optimizer")[1]
    if problems:
        return cls, problems
    try:
        cls([torch.zeros(1, requires_grad=True)], **arguments)
    except (TypeError, ValueError, IndexError) as err:  # AdamW(betas=[0.9]): IndexError
        problems.append(
            f"optimizer ({optimizer._target_}): {err}; check the values under optimizer"
        )
    return cls, problems


def _model_problems(
    source: ModelSource,
    specs: list[GroupSpec] | None,
    pretrained: dict | None,
    classes: int | None,
    adapter: dict | None = None,
) -> tuple[AdapterSpec | None, list[str]]:
    """The adapter the config asks for, and what the model's module and parameter names and
    roles refuse: a group pattern that matches nothing, a group shadowed by an earlier one, a
    role the source cannot name (a group's, or one that `pretrained.exclude` names), an adapter
    target that matches nothing or no module peft can wrap. The model is built on the meta
    device, and wrapped there when the run has an adapter, so the groups are matched against
    the names they will see; input channels and classes do not change a name, so where only
    the data can tell its classes any number stands in."""
    in_channels, num_classes, problems, spec = 3, classes or 2, [], None
    try:
        try:
            with torch.device("meta"):
                model = source.build(in_channels, num_classes)
        except (RuntimeError, NotImplementedError):  # a constructor that computes with tensors
            model = source.build(in_channels, num_classes)
        roles = source.roles(model)
        if pretrained is not None:
            problems += role_problems(pretrained["key_rules"], roles)
        if adapter is not None:
            spec = adapter_spec(adapter, model, roles)
        if spec is not None:
            modules = [name for name, _ in model.named_modules()]
            problems += peft_files.problems(spec.path, spec, modules) if spec.path else []
            model = TrainableView(wrap(model, spec))  # the names the groups will see
            roles = view_roles(roles, model)
        if specs is not None:
            resolve(model, specs, roles)
    except GroupwiseError as err:
        problems += err.problems
    return spec, problems


def _adapter_config(cfg: DictConfig) -> dict | None:
    """The `adapter` section, when it asks for one (None: adapter=none); peft is needed then."""
    config = OmegaConf.to_container(cfg.adapter, resolve=True) if cfg.get("adapter") else None
    if config is None or config["kind"] == "none":
        return None
    try:
        import peft  # noqa: F401
    except ImportError:
        raise GroupwiseError(
            f"adapter={config['kind']}: needs peft, which is not installed; "
            "pip install -e '.[peft]'"
        ) from None
    return config


def _monitor_problems(trainer: DictConfig) -> list[str]:
    """val_ema/* is scored only when there is an EMA."""
    if str(trainer.monitor).startswith("val_ema/") and trainer.ema_decay is None:
        return [
            f"trainer.monitor={trainer.monitor}: no weight EMA is kept; set trainer.ema_decay "
            "(e.g. 0.9998), or monitor val/acc"
        ]
    return []


def _required_model_keys(model: DictConfig) -> list[str]:
    """The model section is its builder's arguments, untyped: a `???` there (model=timm's
    name) is found here, not by the schema's checks."""
    return [
        f"model.{key}: required, and not set; set model.{key}=... (see conf/model/)"
        for key in model
        if OmegaConf.is_missing(model, key)
    ]


def _finite_non_negative(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _at(problems: list[str], section: str) -> bool:
    """Whether a problem names a key of `section`."""
    return any(problem.startswith(f"{section}.") for problem in problems)


def _parsed(check, *args) -> tuple[object, list[str]]:
    """What `check(*args)` returns, and the problems it found instead."""
    try:
        return check(*args), []
    except GroupwiseError as err:
        return None, err.problems
