"""Where `pretrained.path` points, as the files that hold the weights.

Beside a single checkpoint file or a torchvision weights name (read by `files`), a path may be:
- a model directory as timm and Hugging Face write it (`save_pretrained`, timm's
  `save_for_hf`): `model.safetensors`, or the shards listed in `model.safetensors.index.json`,
  or `pytorch_model.bin` (and its index);
- a model in the Hugging Face hub cache that timm and transformers share
  (`HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`): `hf-hub:org/name`
  (timm's spelling, `@revision` optional), or plain `org/name` when no such path exists.
  The cache is only read, through huggingface_hub's offline API: nothing is downloaded.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from src.errors import GroupwiseError
from src.pretrained.files import Weights, read_weights

# What a model directory holds its weights in, in the order the libraries prefer them.
DIRECTORY_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
HUB_PREFIX = "hf-hub:"
# `org/name` as the hub spells a repository (no extension-like path, no leading dot or slash).
REPO_ID = re.compile(r"[\w][\w.-]*/[\w][\w.-]*")


@dataclass
class Located:
    files: list[Path]
    description: str  # where the files were found, for the report


def read_source(path: str | Path, use_ema: bool = False) -> Weights:
    """The tensors by name that `path` names: a file, a torchvision weights name, a model
    directory (shards merged) or a model in the Hugging Face hub cache."""
    located = locate(path)
    if located is None:
        return read_weights(path, use_ema)
    parts = [read_weights(file, use_ema) for file in located.files]
    tensors: dict[str, torch.Tensor] = {}
    unbuilt: dict[str, str] = {}
    for file, part in zip(located.files, parts, strict=True):
        tensors.update(part.tensors)
        unbuilt.update({f"{file.name}: {where}": cls for where, cls in part.unbuilt.items()})
    return Weights(tensors, f"{located.description}: {parts[0].description}", unbuilt)


def locate(path: str | Path) -> Located | None:
    """The files behind a directory or a hub-cache name; None for what `files` reads as is."""
    text = str(path)
    where = f"pretrained.path={text}"
    if not text.strip():  # Path('') would be the current directory
        raise GroupwiseError(
            "pretrained.path is empty; name a checkpoint file, or set pretrained=none to "
            "train from scratch"
        )
    if text.startswith(HUB_PREFIX):
        repo_id, _, revision = text.removeprefix(HUB_PREFIX).partition("@")
        folder = _hub_snapshot(repo_id, revision or None, where, required=True)
        return _in_directory(folder, where, f"Hugging Face hub cache {repo_id}")
    local = Path(text).expanduser()
    if local.is_dir():
        return _in_directory(local, where, "model directory")
    if not local.exists() and REPO_ID.fullmatch(text):
        folder = _hub_snapshot(text, None, where, required=False)
        if folder is not None:
            return _in_directory(folder, where, f"Hugging Face hub cache {text}")
    return None


def _in_directory(folder: Path, where: str, origin: str) -> Located:
    found = next((name for name in DIRECTORY_WEIGHTS if (folder / name).is_file()), None)
    if found is None:
        held = sorted(p.name for p in folder.iterdir())[:8]
        raise GroupwiseError(
            f"{where}: is a directory, not a checkpoint file, and holds none of "
            f"{', '.join(DIRECTORY_WEIGHTS)} (it holds {held or 'nothing'}); point it at a "
            "checkpoint file, or at a directory written by save_pretrained"
        )
    if not found.endswith(".index.json"):
        return Located([folder / found], f"{origin}, {found}")
    shards = _shards(folder / found, where)
    return Located(shards, f"{origin}, {len(shards)} shards listed in {found}")


def _shards(index: Path, where: str) -> list[Path]:
    """The files a sharded checkpoint's index maps its tensors to, each once, in order."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise GroupwiseError(
            f"{where}: {index.name} is not a shard index ({type(err).__name__}: {err}); "
            "re-save or re-download the model"
        ) from None
    missing = [name for name in names if not (index.parent / name).is_file()]
    if missing:
        raise GroupwiseError(
            f"{where}: {index.name} lists shards that are not there: {', '.join(missing)}; the "
            "download is incomplete: download the model again"
        )
    return [index.parent / name for name in names]


def _hub_snapshot(repo_id: str, revision: str | None, where: str, required: bool) -> Path | None:
    """The cached snapshot folder of a hub model, read offline; None when not cached and not
    `required` (a plain `org/name` may just be a missing file)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
    except ImportError:
        if not required:
            return None
        raise GroupwiseError(
            f"{where}: reading the Hugging Face hub cache needs huggingface_hub; install it "
            "with the timm or hf extra: pip install -e '.[timm]'"
        ) from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, FileNotFoundError) as err:
        if not required:
            return None
        from huggingface_hub import constants

        raise GroupwiseError(
            f"{where}: {repo_id} is not in the Hugging Face hub cache ({constants.HF_HUB_CACHE}) "
            f"({type(err).__name__}); nothing is downloaded at run time: fetch it once with "
            f"`hf download {repo_id}`, or point HF_HUB_CACHE at the cache that holds it"
        ) from None
