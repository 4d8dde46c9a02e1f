"""Step 2 of the seed, for every common checkpoint: read the tensors, never run code.

A source is a file (a torch.save'd state_dict or training checkpoint as .pt/.pth/.pkl/.bin,
a Lightning .ckpt, a .safetensors file) or a torchvision weights name such as
`ResNet50_Weights.IMAGENET1K_V2`. Files are recognised by their first bytes, not their
extension (Hugging Face's .bin is a torch zip file, the seed saved to .pkl). Pickles are read
with `weights_only=True` and zip checkpoints are memory-mapped, so their tensors take no
memory until used and are never copied on the way into the model. A training checkpoint's
other libraries' objects (arguments, configs, metric buffers) are left unbuilt
(`unpickle.py`) and listed for the report.
"""

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import torch

from src.adapters import merge_keys
from src.errors import GroupwiseError
from src.pretrained import unpickle

# Where training checkpoints keep their weights (Lightning and most loops: state_dict; ours
# and DeiT's: model; some DDP saves: module). A raw state_dict has none of these.
WEIGHT_KEYS = ("state_dict", "model", "module")
# Where they keep an exponential moving average of them (timm: state_dict_ema; DeiT and
# torchvision's reference scripts: model_ema).
EMA_KEYS = ("state_dict_ema", "model_ema")
# `ResNet50_Weights.IMAGENET1K_V2`, `ViT_L_16_Weights.DEFAULT`: an enum class and member.
TORCHVISION_WEIGHTS = re.compile(r"[A-Za-z0-9_]+_Weights\.[A-Z0-9_]+")


@dataclass
class Weights:
    tensors: dict[str, torch.Tensor]
    description: str  # what was read, for the report: format and where the weights sat
    # Where in the file an object was left unbuilt -> its class (pickles only).
    unbuilt: dict[str, str] = field(default_factory=dict)


def read_weights(path: str | Path, use_ema: bool = False) -> Weights:
    """The tensors by name from a file or a torchvision weights name."""
    where = f"pretrained.path={path}"
    if isinstance(path, str) and TORCHVISION_WEIGHTS.fullmatch(path):
        checkpoint, fmt = _read_torchvision(path, where), "torchvision weights"
    else:
        path = _check_file(Path(path), where)
        checkpoint, fmt = _read_file(path, where)
    tensors, inside = _weights_of(checkpoint, use_ema, where)
    return Weights(tensors, f"{fmt}{inside}", unpickle.unbuilt_entries(checkpoint))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    return read_weights(path).tensors


def _check_file(path: Path, where: str) -> Path:
    if not path.exists():
        raise GroupwiseError(
            f"{where}: no such file (nor a torchvision weights name like "
            "ResNet50_Weights.IMAGENET1K_V2); check it, or set pretrained=none to train from scratch"
        )
    if not path.is_file():
        raise GroupwiseError(
            f"{where}: is a directory, not a checkpoint file; point it at a .pt, .ckpt or "
            ".safetensors file inside"
        )
    if path.stat().st_size == 0:
        raise GroupwiseError(f"{where}: the file is empty; re-save or re-download the checkpoint")
    return path


def _read_file(path: Path, where: str):
    if _is_zip(path):
        return _torch_load(path, where, mmap=True), "torch zip checkpoint (memory-mapped)"
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    if _head(path, 9)[8:9] == b"{" or path.suffix == ".safetensors":
        return _read_safetensors(path, where), "safetensors"
    # torch.save's format before torch 1.6: a pickle stream, which cannot be memory-mapped.
    return _torch_load(path, where, mmap=False), "legacy torch checkpoint"


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def _is_zip(path: Path) -> bool:
    return _head(path, 4) == b"PK\x03\x04"


def _torch_load(path: Path, where: str, mmap: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:  # the weights-only unpickler stopped
        refusal = err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise _corrupt(where, err) from None
    # A training checkpoint's other objects: listed without running anything, then left unbuilt.
    try:
        names = unpickle.globals_asked_for(path, _is_zip(path))
    except Exception:  # too damaged to list: the unpickler's own complaint says more
        names = []
    if not names:
        raise _corrupt(where, refusal)
    if code := unpickle.code_runners(names):
        raise GroupwiseError(
            f"{where}: refused: the checkpoint's pickle asks to build {', '.join(code)}, not "
            "just tensors, and could run code; nothing of it ran. Re-save only its weights "
            "(torch.save(model.state_dict(), path)) from a source you trust"
        )
    try:
        return unpickle.load_leaving_unbuilt(path, names, mmap)
    except Exception as err:
        raise GroupwiseError(
            f"{where}: not a readable PyTorch checkpoint ({_load_error_cause(err)}), or one whose "
            "objects torch's weights-only unpickler cannot leave unbuilt; re-save or re-download "
            "it, or extract its weights as the README's Pretrained > Safety section shows"
        ) from None


def _read_safetensors(path: Path, where: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)  # memory-mapped by safetensors itself
    except (SafetensorError, OSError, ValueError) as err:
        raise GroupwiseError(
            f"{where}: not a readable safetensors file ({_load_error_cause(err)}); the file may "
            "be truncated: re-save or re-download it"
        ) from None


def _read_torchvision(name: str, where: str) -> dict[str, torch.Tensor]:
    """torchvision's own download and cache (torch.hub's dir, `$TORCH_HOME/hub/checkpoints`):
    downloaded once, checked against the hash in its file name, then read with weights_only."""
    from torchvision.models import get_weight

    try:
        weights = get_weight(name)
    except (ValueError, KeyError):
        raise GroupwiseError(
            f"{where}: not a torchvision weights name; write it as <Enum>.<MEMBER> as torchvision "
            "lists them, e.g. ResNet50_Weights.IMAGENET1K_V2 or ViT_B_16_Weights.DEFAULT"
        ) from None
    try:
        return weights.get_state_dict(
            progress=True, check_hash=True, map_location="cpu", weights_only=True
        )
    except pickle.UnpicklingError as err:
        raise _refused_or_corrupt(_hub_cache_file(weights.url), where, err) from None
    except OSError as err:  # URLError, a full disk, a hash mismatch (RuntimeError below)
        raise GroupwiseError(
            f"{where}: could not download {weights.url} ({err}); check the network, or download "
            "it into torch.hub's cache (`$TORCH_HOME/hub/checkpoints/`) by hand"
        ) from None
    except Exception as err:
        raise _corrupt(where, err) from None


def _hub_cache_file(url: str) -> Path:
    """Where torch.hub's `load_state_dict_from_url` keeps the file downloaded from `url`."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def _refused_or_corrupt(path: Path, where: str, err: Exception) -> GroupwiseError:
    """Refused when the pickle names classes or functions beyond tensors and plain data
    (torch lists them without running anything), else damaged."""
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # too damaged to list: the unpickler's own complaint says more
        unsafe = []
    if not unsafe:
        return _corrupt(where, err)
    return GroupwiseError(
        f"{where}: refused: the checkpoint's pickle asks to build {', '.join(sorted(unsafe))}, "
        "not just tensors, and could run code; re-save only its weights "
        "(torch.save(model.state_dict(), path)) from a source you trust"
    )


def _load_error_cause(err: Exception) -> str:
    """The line of a torch.load error that says what went wrong: weights-only errors open with
    boilerplate and name the cause after `WeightsUnpickler error:`, on its line or the next;
    others on their first line."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text[text.index(marker) :].removeprefix(marker).strip() or text
        text = f"{marker} {text}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines or [type(err).__name__])[0]


def _corrupt(where: str, err: Exception) -> GroupwiseError:
    return GroupwiseError(
        f"{where}: not a readable PyTorch checkpoint "
        f"({type(err).__name__}: {_load_error_cause(err)}); the file may be truncated or of "
        "another format: re-save or re-download it"
    )


def _weights_of(checkpoint, use_ema: bool, where: str) -> tuple[dict[str, torch.Tensor], str]:
    """A raw state_dict, or the weights inside a training checkpoint dict."""
    inside = ""
    if isinstance(checkpoint, dict):
        candidates = EMA_KEYS if use_ema else WEIGHT_KEYS
        found = [k for k in candidates if isinstance(checkpoint.get(k), dict)]
        if use_ema and not found:
            raise GroupwiseError(
                f"pretrained.use_ema=true: {where} has no EMA weights under {list(EMA_KEYS)}; "
                f"its entries are {_top_level(checkpoint)}; set pretrained.use_ema=false"
            )
        adapter = _adapter_config(checkpoint)
        if found:
            checkpoint, inside = checkpoint[found[0]], f", weights under '{found[0]}'"
        tensors = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
        if tensors and merge_keys.is_wrapped_state(tensors):  # a run with an adapter saved it
            tensors = merge_keys.plain_state(tensors, adapter.get("alpha"), where)
            inside += ", an adapter's updates merged into the base weights"
        if tensors:
            return tensors, inside
    # A whole pickled model (torch.save(model)), left unbuilt: its weights are in its state.
    entries = checkpoint.items() if isinstance(checkpoint, dict) else [("the file", checkpoint)]
    whole = [f"{k} is a whole {v.name}" for k, v in entries if isinstance(v, unpickle.Unbuilt)]
    what = "; ".join(whole) or f"a {type(checkpoint).__name__}"
    raise GroupwiseError(
        f"{where}: holds no tensors by name ({what}); expected a state_dict or a dict with the "
        f"weights under one of {list(WEIGHT_KEYS)}"
        + ("; load the object where its code is trusted and save its state_dict()" if whole else "")
    )


def _adapter_config(checkpoint: dict) -> dict:
    """A groupwise checkpoint's `adapter` section ({} for any other checkpoint)."""
    config = checkpoint.get("config")
    adapter = config.get("adapter") if isinstance(config, dict) else None
    return adapter if isinstance(adapter, dict) else {}


def _top_level(checkpoint: dict) -> list[str]:
    keys = [str(k) for k in checkpoint]
    return [*keys[:8], "..."] if len(keys) > 8 else keys
