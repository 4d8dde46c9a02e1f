"""The optional libraries behind some model sources, imported only by runs that use them."""

import importlib
from types import ModuleType

from src.errors import GroupwiseError


def import_extra(module: str, extra: str, used_by: str) -> ModuleType:
    """`module`, or one clear line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise GroupwiseError(
            f"{used_by} needs {module}, which is not installed; install the '{extra}' extra: "
            f"pip install -e '.[{extra}]'"
        ) from None
