"""The seed's step 3, made safe and lean: put a checkpoint's matching tensors into a model.

A tensor is loaded when its key (after the key rules of `pretrained_keys`) exists in the model
*and* its shape matches; a new head of another size is skipped and reported instead of
crashing `load_state_dict`. Loading nothing at all is an error, never a silent no-op. Which
keys are the stem (adapted to the input channels), the position embeddings (resampled to the
patch grid) and an excluded role's is the model source's answer (`ParameterRoles`), not a
guess from the names.

`build_with_pretrained` builds the model on the meta device, where no tensor is allocated,
then gives it the checkpoint's (memory-mapped) tensors themselves with
`load_state_dict(assign=True)`: a large checkpoint is never held twice. Only what the
checkpoint lacks, such as a new head, is materialised and initialised, by its layer's own
`reset_parameters()` (PyTorch's default init for that layer, as `model.fc = nn.Linear(...)`
would give).
"""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from src.errors import GroupwiseError
from src.models.contract import ParameterRoles
from src.pretrained import exclusion, pos_embed
from src.pretrained.files import read_state_dict
from src.pretrained.hints import why_nothing_loaded
from src.pretrained.keys import KeyRules, check_rules, map_keys
from src.pretrained.report import LoadReport, fold_by_prefix, fold_shapes, format_report
from src.pretrained.sources import read_source
from src.pretrained.transformers_names import to_model_names

__all__ = [
    "LoadReport",
    "build_with_pretrained",
    "check_options",
    "format_report",
    "load_pretrained",
    "read_state_dict",
]

# The `pretrained` config keys that are not key rules, as keyword arguments of the functions below.
OPTIONS = ("use_ema", "adapt_input_channels", "resample_pos_embed", "strict")
BUILT_NORMALLY = "built normally, then loaded by copy"


def check_options(config: dict) -> dict:
    """The `pretrained` config as keyword arguments, its key rules checked and compiled (all
    problems at once) into `key_rules`; the options' types are the schema's (PretrainedConfig)."""
    rules = check_rules(config.get("rename", []), config.get("exclude", []), config.get("prefix"))
    return {"key_rules": rules, **{key: config[key] for key in OPTIONS if key in config}}


def build_with_pretrained(
    make_model: Callable[[], nn.Module],
    path: str | Path,
    roles_of: Callable[[nn.Module], ParameterRoles],
    **options,
) -> tuple[nn.Module, LoadReport]:
    """Build the model with `make_model()` and load the checkpoint at `path` into it, without
    ever allocating the tensors the checkpoint replaces. `roles_of`: the model source's roles
    of the model built (`source.roles`)."""
    try:
        with torch.device("meta"):
            model = make_model()
    except (RuntimeError, NotImplementedError) as err:  # a model that computes with its tensors
        model = make_model()
        report = load_pretrained(model, path, roles_of, **options)
        report.built = f"{BUILT_NORMALLY}: its constructor fails on the meta device ({_first_message_line(err)})"
        return model, report
    # The roles name parameters, which a rebuilt model (below) names the same.
    keep, report = _match(model, path, roles_of(model), **options)
    not_loaded = [k for k in model.state_dict() if k not in keep]
    obstacle = _meta_obstacle(model, not_loaded)
    if obstacle:
        model = make_model()
        model.load_state_dict(keep, strict=False)
        report.built = f"{BUILT_NORMALLY}: {obstacle}"
        return model, report
    # In module order (not a set's): the same seed initialises the same values every run.
    for owner in dict.fromkeys(_owner(model, key) for key in not_loaded):
        owner.to_empty(device="cpu", recurse=False)
        owner.reset_parameters()
    model.load_state_dict(_own_storages(keep, report), strict=False, assign=True)
    report.built = (
        f"built on the meta device: took the checkpoint's tensors, initialised {len(not_loaded)}"
    )
    return model, report


def load_pretrained(
    model: nn.Module, path: str | Path, roles_of: Callable[[nn.Module], ParameterRoles], **options
) -> LoadReport:
    """Load into a model already built: the matching tensors are copied in. `roles_of`: the
    model source's roles of the model (`source.roles`)."""
    keep, report = _match(model, path, roles_of(model), **options)
    model.load_state_dict(keep, strict=False)
    return report


# Long: one pass over the checkpoint's keys, each excluded, matched, adapted or skipped in turn,
# with the report written as it goes.
def _match(
    model: nn.Module,
    path: str | Path,
    roles: ParameterRoles,
    exclude: list[str] = (),
    rename: list[list[str]] = (),
    prefix: str | None = None,
    use_ema: bool = False,
    adapt_input_channels: bool = False,
    resample_pos_embed: bool = True,
    strict: bool = False,
    exclude_origin: str = "",
    key_rules: KeyRules | None = None,
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """The checkpoint's tensors that fit the model, by the model's names, and the report.
    `key_rules`: compiled by `check_options` (a run's), else from `exclude`, `rename`, `prefix`;
    `exclude_origin`: where `exclude` was set, when not on the command line; `roles`: the
    source's, which name the stem, the position embeddings and an excluded role's keys."""
    rules = key_rules or check_rules(list(rename), list(exclude), prefix)
    problems = exclusion.role_problems(rules, roles)
    if problems:
        raise GroupwiseError(*problems)
    excluding_role = exclusion.keys_by_role(model, roles, rules.exclude_roles)
    weights = read_source(path, use_ema)
    where = f"pretrained.path={path}"
    tensors, key_changes = map_keys(weights.tensors, rules.rename, rules.prefix, where)
    # After the user's rules, which name the checkpoint's keys: a library's own renaming.
    tensors, library_changes = to_model_names(model, tensors)
    model_state = model.state_dict()
    report = LoadReport(
        path=str(path),
        source=weights.description,
        key_changes=key_changes + library_changes,
        model_elements=sum(p.numel() for p in model.parameters()),
        unbuilt=weights.unbuilt,
        **_exclusion(rules, exclude_origin),
    )
    stem, position_embeddings = roles.stem or (), roles.position_embeddings or ()
    keep = {}
    for key, tensor in tensors.items():
        role = excluding_role.get(key)
        if role is not None:
            report.excluded.append(key)
            report.excluded_by_role[role].append(key)
            continue
        if any(e.search(key) for e in rules.exclude):
            report.excluded.append(key)
            continue
        if key not in model_state:
            report.unexpected.append(key)
            continue
        wanted = model_state[key]
        shapes = {"checkpoint": list(tensor.shape), "model": list(wanted.shape)}
        if key in stem and _adaptable(tensor, wanted):
            if not adapt_input_channels:
                report.advice.append(
                    f"{key} was trained on 3 input channels, the model takes {wanted.shape[1]}: "
                    "pretrained.adapt_input_channels=true would adapt it instead of skipping it"
                )
            else:
                tensor = _adapt_input_channels(tensor, wanted.shape[1])
                report.adapted[key] = shapes
        if key in position_embeddings and tensor.shape != wanted.shape and resample_pos_embed:
            prefix = pos_embed.prefix_tokens(tensor, wanted)
            if prefix is not None:
                tensor = pos_embed.resample(tensor, wanted.shape[1], prefix)
                report.resampled[key] = shapes
        if tensor.shape != wanted.shape:
            report.skipped_shape[key] = shapes
            continue
        if wanted.is_floating_point() and not tensor.is_floating_point():
            dtypes = (str(t.dtype).removeprefix("torch.") for t in (tensor, wanted))
            report.wrong_dtype[key] = dict(zip(("checkpoint", "model"), dtypes, strict=True))
            continue
        # assign=True keeps the checkpoint's dtype: cast to the model's, as a copy would.
        keep[key] = tensor.to(wanted.dtype)
        report.loaded.append(key)
    report.missing = [k for k in model_state if k not in tensors]
    parameter_names = {name for name, _ in model.named_parameters()}
    report.loaded_elements = sum(t.numel() for k, t in keep.items() if k in parameter_names)
    _check_outcome(report, keep, tensors, model_state, strict)
    return keep, report


def _exclusion(rules: KeyRules, origin: str) -> dict:
    """The report's record of the exclusions, and where they were set."""
    return {
        "exclude": rules.exclude_items,
        "exclude_origin": origin if rules.exclude_items else "",
        "excluded_by_role": {role: [] for role in rules.exclude_roles},
    }


def _check_outcome(report: LoadReport, keep, tensors, model_state, strict: bool) -> None:
    where = f"pretrained.path={report.path}"
    # Integers for floats are no weights (3 for 2.7, or 10^28): refused, whatever else loads.
    if report.wrong_dtype:
        raise GroupwiseError(
            f"{where}: {len(report.wrong_dtype)} tensor(s) hold integers or booleans where the "
            f"model's are floating point ({', '.join(fold_shapes(report.wrong_dtype))}); "
            "save the checkpoint's weights as floats, or exclude these keys with pretrained.exclude"
        )
    if not keep:
        raise GroupwiseError(
            f"{where}: shares no tensor (same key and shape) with the model; "
            f"{why_nothing_loaded(tensors, model_state)}"
        )
    if strict and (report.unexpected or report.missing or report.skipped_shape):
        problems = [
            f"{label} {len(keys)}: {', '.join(listed)}"
            for label, keys, listed in (
                ("unexpected", report.unexpected, fold_by_prefix(report.unexpected)),
                ("missing", report.missing, fold_by_prefix(report.missing)),
                ("skipped_shape", report.skipped_shape, fold_shapes(report.skipped_shape)),
            )
            if keys
        ]
        raise GroupwiseError(
            f"pretrained.strict=true: {where} does not fit the model exactly ({'; '.join(problems)}); "
            "exclude what the model should not take, or set pretrained.strict=false"
        )


def _adaptable(tensor: torch.Tensor, wanted: torch.Tensor) -> bool:
    """Pretrained on 3 input channels (RGB), wanted with another number: all else equal."""
    return (
        tensor.ndim == wanted.ndim >= 3
        and tensor.shape[1] == 3 != wanted.shape[1]
        and tensor.shape[:1] + tensor.shape[2:] == wanted.shape[:1] + wanted.shape[2:]
    )


def _adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Sum the RGB filters for 1 channel (a grey image is R = G = B); for more, repeat them
    and scale by 3/channels, which keeps the activations' scale (exactly, for an input whose
    channels are all alike, when channels is a multiple of 3)."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // 3)
    return weight.repeat(1, repeats, *[1] * (weight.ndim - 2))[:, :channels] * (3 / channels)


def _own_storages(keep: dict[str, torch.Tensor], report: LoadReport) -> dict[str, torch.Tensor]:
    """Each tensor in a storage of its own, as a model built normally has them. Assigned as
    they are, two keys saved as one tensor would become one storage (two layers trained as
    one, and linked in every checkpoint after), and a view into a larger buffer would keep all
    of it alive and saved in `last.pt`. Only those are copied: the others stay memory-mapped."""
    first_user: dict[int, str] = {}
    for key, tensor in keep.items():
        storage = tensor.untyped_storage()
        if not tensor.numel():
            continue
        first = first_user.setdefault(storage.data_ptr(), key)
        if storage.nbytes() > tensor.numel() * tensor.element_size():
            report.copied[key] = f"a view into a {storage.nbytes():,}-byte buffer"
        elif first != key:
            report.copied[key] = f"shared its storage with {first}"
        else:
            continue
        keep[key] = tensor.clone()
    return keep


def _first_message_line(err: Exception) -> str:
    """A constructor's complaint in one line, for the load report."""
    return next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)


def _owner(model: nn.Module, key: str) -> nn.Module:
    return model.get_submodule(key.rpartition(".")[0])


def _meta_obstacle(model: nn.Module, not_loaded: list[str]) -> str | None:
    """Why the meta-built model cannot be completed faithfully, if it cannot."""
    tied = len(list(model.named_parameters(remove_duplicate=False))) != len(
        list(model.named_parameters())
    )
    if tied:
        return "it shares (ties) parameters between layers, which assign=True would untie"
    # Non-persistent buffers (a model's buffers that its state_dict leaves out): computed in
    # the constructor and absent from every checkpoint, so lost on meta. A state_dict that
    # renames its keys makes its buffers count too: built normally, the safe side.
    saved = model.state_dict(keep_vars=True)
    unsaved = [key for key, _ in model.named_buffers(remove_duplicate=False) if key not in saved]
    if unsaved:
        owner = unsaved[0].rpartition(".")[0]
        names = [key.rpartition(".")[2] for key in unsaved if key.rpartition(".")[0] == owner]
        return f"{owner or 'the model'} has non-persistent buffers {names}"
    for key in not_loaded:
        owner = _owner(model, key)
        if not hasattr(owner, "reset_parameters"):
            return (
                f"{key}, not in the checkpoint, belongs to a {type(owner).__name__}, which has no "
                "reset_parameters() to initialise it"
            )
    return None
