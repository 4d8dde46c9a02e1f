"""`option`: how every schema field declares its default, help and limits (src/config/checks.py
reads the limits, src/config/run_help.py the help)."""

from dataclasses import field
from typing import Any


def option(default: Any = None, help: str = "", **limits: Any) -> Any:
    """A field with its help text and its limits: `ge`, `gt`, `le`, `lt` (numbers, also each
    item of a list), `choices`, `min_items`, `unique`; `path=True`: a file or dir, taken as
    given on the command line (src/config/command.py). A list default is copied per config."""
    metadata = {"help": help, **limits}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)
