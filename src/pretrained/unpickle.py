"""A torch pickle's tensors and plain data, with other libraries' objects left unbuilt.

Training checkpoints hold more than weights: an `argparse.Namespace` of arguments, a `Path` or a
`DictConfig` among hyper-parameters, MMEngine's metric buffers, numpy scalars. torch's
`weights_only` unpickler refuses the whole file for any of them, though only the tensors are
wanted. Here every class or function the pickle names beyond torch's allowlist is stood in for
by an `Unbuilt` placeholder, handed to that same unpickler with
`torch.serialization.safe_globals([(placeholder, name), ...])`: torch's restricted unpickler
still does all the work (its opcodes, its checks on what may be called and built), nothing the
file names is imported or called, and a placeholder only keeps what it is given, as data.

Why torch's unpickler rather than `torch.load(pickle_module=...)` with a restricting
`find_class`: Python's own unpickler would then still BUILD whatever it is handed (setting
attributes on classes too), where torch's checks each opcode's target. Its limit: it fills
only plain dicts and lists, so a `dict` subclass among the extras still fails (the message
says how to extract the weights).

A name that only appears in a pickle to run code (`builtins.eval`, `subprocess.Popen`, ...) is
not stood in for: such a file is hostile, not a training checkpoint, and is refused.
"""

import pickletools
from pathlib import Path

import torch

# What only a pickle meant to run code asks for: modules whose globals a checkpoint has no use
# for (torch itself refuses `os`, `sys`, `posix` and `nt`), and the builtins that run or open
# things. Only for a clear refusal: left unbuilt, they would not run either. (`getattr` is not
# here: numpy pickles its scalar types with it.)
CODE_MODULES = {
    "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "importlib", "runpy", "pty",
    "ctypes", "pickle", "_pickle", "marshal", "code", "codeop", "webbrowser", "multiprocessing",
    "io", "_io", "pdb",
}  # fmt: skip
CODE_BUILTINS = {"eval", "exec", "compile", "open", "__import__", "breakpoint", "input", "exit"}
# torch.save's legacy format: pickles of its magic number, protocol version and system info,
# then the object itself (then storage keys and raw bytes, which name nothing).
LEGACY_PICKLES = 4


class Unbuilt:
    """What a checkpoint's pickle asked to build from a class or function `name`, not built:
    the arguments and state it came with, kept as data."""

    name = "?"

    def __new__(cls, *args):  # the unpickler's NEWOBJ: cls.__new__(cls, *args)
        placeholder = super().__new__(cls)
        placeholder.args, placeholder.state = args, None
        return placeholder

    def __init__(self, *args):  # REDUCE: cls(*args); __new__ kept them
        pass

    def __setstate__(self, state):  # BUILD
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.name}, not built>"


def globals_asked_for(path: Path, is_zip: bool) -> list[str]:
    """The classes and functions the pickle names, read without running it: for a zip
    checkpoint those beyond torch's allowlist (torch lists them); for the legacy format,
    which torch cannot list, all of them (torch's own stay torch's, see `load_leaving_unbuilt`)."""
    if is_zip:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    names = set()
    with path.open("rb") as f:
        for _ in range(LEGACY_PICKLES):
            for opcode, argument, _ in pickletools.genops(f):
                if opcode.name == "GLOBAL":  # torch.save's protocol 2 names globals this way
                    names.add(argument.replace(" ", "."))
    return sorted(names)


def code_runners(names: list[str]) -> list[str]:
    """The names only a pickle meant to run code asks for."""
    return [
        name
        for name in names
        if name.split(".")[0] in CODE_MODULES
        or (name.startswith("builtins.") and name.removeprefix("builtins.") in CODE_BUILTINS)
    ]


def load_leaving_unbuilt(path: Path, names: list[str], mmap: bool):
    """torch.load with weights_only=True, each name in `names` stood in for by a placeholder.
    torch resolves its allowlisted names before any added one: a legacy file's torch names,
    listed too, still rebuild tensors."""
    placeholders = [(type(f"Unbuilt({name})", (Unbuilt,), {"name": name}), name) for name in names]
    with torch.serialization.safe_globals(placeholders):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def unbuilt_entries(checkpoint, where: str = "") -> dict[str, str]:
    """Where in the checkpoint (`args`, `message_hub.log_scalars.train/loss`) an object was
    left unbuilt, and its class or function; inside one, nothing more is listed."""
    if isinstance(checkpoint, Unbuilt):
        return {where or "the whole file": checkpoint.name}
    if isinstance(checkpoint, dict):
        items = checkpoint.items()
    elif isinstance(checkpoint, list | tuple):
        items = enumerate(checkpoint)
    else:
        return {}
    found = {}
    for key, value in items:
        found.update(unbuilt_entries(value, f"{where}.{key}" if where else str(key)))
    return found
