"""The seed's three fine-tuning steps, made safe: read a checkpoint, filter it, load it, report.

Step 2 reads with `weights_only=True`, so a checkpoint can never run code. Step 3 copies
a tensor only when its key exists in the model *and* its shape matches: a new head of
another size is skipped and reported instead of crashing `load_state_dict`.
"""

import pickle
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from src.errors import GroupwiseError

# Where training checkpoints keep their weights; a raw state_dict has none of these.
WEIGHT_KEYS = ("model", "state_dict", "module")


@dataclass
class LoadReport:
    path: str
    loaded: list[str] = field(default_factory=list)
    skipped_shape: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    loaded_elements: int = 0
    model_elements: int = 0

    def to_json(self) -> dict:
        share = self.loaded_elements / self.model_elements if self.model_elements else 0.0
        return {**asdict(self), "loaded_share": share}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Step 2: read tensors only. Anything else in the pickle is refused, never executed."""
    where = f"pretrained.path={path}"
    path = Path(path)
    if not path.exists():
        raise GroupwiseError(
            f"{where}: no such file; check the path, or set pretrained=none to train from scratch"
        )
    if not path.is_file():
        raise GroupwiseError(
            f"{where}: is a directory, not a checkpoint file; point it at a .pt file inside"
        )
    if path.stat().st_size == 0:
        raise GroupwiseError(f"{where}: the file is empty; re-save or re-download the checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as err:
        # weights_only's unpickler names the first global it refused to build.
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if refused:
            raise GroupwiseError(
                f"{where}: refused: the checkpoint's pickle asks to build {refused.group(1)}, "
                "not just tensors, and could run code; re-save it as a plain state_dict "
                "(torch.save(model.state_dict(), path)) from a source you trust"
            ) from None
        raise _corrupt(where, err) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise _corrupt(where, err) from None
    return _weights_of(checkpoint, where)


def _is_zip(path: Path) -> bool:
    # Only the zip format (torch >= 1.6 default) can be memory-mapped.
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    # weights_only errors open with boilerplate; the cause is on the unpickler's line.
    cause = [line for line in lines if line.startswith("WeightsUnpickler error")]
    return (cause or lines or [type(err).__name__])[0]


def _corrupt(where: str, err: Exception) -> GroupwiseError:
    return GroupwiseError(
        f"{where}: not a readable PyTorch checkpoint ({type(err).__name__}: {_first_line(err)}); "
        "the file may be truncated or of another format: re-save or re-download it"
    )


def _weights_of(checkpoint, where: str) -> dict[str, torch.Tensor]:
    """A raw state_dict, or the weights inside a training checkpoint dict."""
    if isinstance(checkpoint, dict):
        for key in WEIGHT_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
        tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise GroupwiseError(
        f"{where}: holds no tensors by name (a {type(checkpoint).__name__}); expected a state_dict "
        f"or a dict with the weights under one of {list(WEIGHT_KEYS)}"
    )


def filter_state_dict(
    checkpoint: dict[str, torch.Tensor],
    model: nn.Module,
    exclude: list[str] = (),
    path: str = "",
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Step 3's filter: keep tensors whose key is in the model and whose shape matches."""
    model_state = model.state_dict()
    report = LoadReport(path=str(path), model_elements=sum(p.numel() for p in model.parameters()))
    excluders = [re.compile(p) for p in exclude]
    keep = {}
    for key, tensor in checkpoint.items():
        if any(e.search(key) for e in excluders):
            report.excluded.append(key)
        elif key not in model_state:
            report.unexpected.append(key)
        elif tensor.shape != model_state[key].shape:
            report.skipped_shape[key] = {
                "checkpoint": list(tensor.shape),
                "model": list(model_state[key].shape),
            }
        else:
            keep[key] = tensor
            report.loaded.append(key)
    report.missing = [k for k in model_state if k not in checkpoint]
    parameter_names = {name for name, _ in model.named_parameters()}
    report.loaded_elements = sum(t.numel() for k, t in keep.items() if k in parameter_names)
    return keep, report


def load_pretrained(model: nn.Module, path: str | Path, exclude: list[str] = ()) -> LoadReport:
    """Read, filter and load; loading nothing at all is an error, never a silent no-op."""
    problems = []
    for pattern in exclude:
        try:
            re.compile(pattern)
        except re.error as err:
            problems.append(
                f"pretrained.exclude: {pattern!r} is not a valid regex ({err}); fix or escape it"
            )
    if problems:
        raise GroupwiseError(*problems)
    keep, report = filter_state_dict(read_state_dict(path), model, exclude, path)
    if not keep:
        raise GroupwiseError(
            f"pretrained.path={path}: shares no tensor (same key and shape) with the model; "
            f"checkpoint keys start {sorted(report.unexpected + report.excluded + list(report.skipped_shape))[:3]}, "
            f"model keys start {list(model.state_dict())[:3]}: is it for another model?"
        )
    model.load_state_dict(keep, strict=False)
    return report


def format_report(report: LoadReport) -> str:
    info = report.to_json()
    lines = [
        f"pretrained: {report.path}",
        f"  loaded         {len(report.loaded)} tensors, {report.loaded_elements:,} of "
        f"{report.model_elements:,} parameters ({info['loaded_share']:.1%})",
    ]
    for key, shapes in report.skipped_shape.items():
        lines.append(
            f"  skipped_shape  {key}: checkpoint {shapes['checkpoint']} vs model {shapes['model']}"
        )
    for label in ("excluded", "unexpected", "missing"):
        keys = getattr(report, label)
        if keys:
            lines.append(f"  {label:<14} {len(keys)}: {', '.join(keys)}")
    return "\n".join(lines)
