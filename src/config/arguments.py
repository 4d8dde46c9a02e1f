"""A section's keys checked against the signature of what it configures, before the call: a
typo is the user's to fix (one line), and a TypeError raised inside the call is a bug (a
traceback), never mistaken for the other."""

import inspect
from collections.abc import Mapping

from src.errors import GroupwiseError


def check_arguments(target, kwargs: Mapping, section: str) -> None:
    """One line when `target(**kwargs)` would not bind: an unknown key, a required one not set."""
    signature = inspect.signature(target)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        takes = [
            name
            for name, p in signature.parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name != "self"
        ]
        raise GroupwiseError(
            f"{section} ({getattr(target, '__qualname__', target)}): {err}; it takes "
            f"{', '.join(takes)}; check the keys under {section}"
        ) from None
