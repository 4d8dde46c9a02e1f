"""Hydra's own config errors as one clear line: an unknown config option (`model=nope`), a
typo'd key (`trainer.max_epoch=3`), an override its grammar cannot parse (`pattern=^fc3`).

Hydra prints these over several lines, with its config search path and a hint about
HYDRA_FULL_ERROR; they are the user's to fix, so groupwise reports them like its own errors.
"""

import difflib
import re
from collections.abc import Mapping

from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)

CONFIG_ERRORS = (ConfigCompositionException, OverrideParseException, SearchPathException)
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic"


def one_line(err: Exception) -> str:
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        return _unknown_option(err.missing_cfg_file, list(err.options))
    if isinstance(err, OverrideParseException):
        return _unparsable(err)
    cause = err.__cause__
    if getattr(cause, "full_key", None) and isinstance(
        getattr(cause, "parent_node", None), Mapping
    ):
        return _unknown_key(err, cause.full_key, list(cause.parent_node))
    return _joined(str(err))


def _unknown_option(missing: str, options: list[str]) -> str:
    group, _, option = missing.rpartition("/")
    close = difflib.get_close_matches(option, options, n=1)
    hint = f"did you mean {group}={close[0]}? " if close else ""
    return (
        f"{group}={option}: no such {group} config; {hint}choose one of {', '.join(options)}, "
        f"or add conf/{group}/{option}.yaml"
    )


def _unknown_key(err: Exception, full_key: str, siblings: list[str]) -> str:
    parent, _, key = full_key.rpartition(".")
    prefix = f"{parent}." if parent else ""
    close = difflib.get_close_matches(key, siblings, n=1)
    hint = f"did you mean {prefix}{close[0]}? " if close else ""
    append = re.search(r"use (\+\S+)", str(err))
    add = f"; to add a new key on purpose: {append.group(1)}" if append else ""
    return f"{full_key}: no such key; {hint}{parent or 'the config'} has {', '.join(siblings)}{add}"


def _unparsable(err: OverrideParseException) -> str:
    lines = str(err).splitlines()
    # Hydra's first line may only repeat the override; the parser's complaint is the next.
    complaints = [line for line in lines if line.strip() != "^" and not line.startswith("See ")]
    where = complaints[-1] if complaints else lines[0]
    caret = next((line for line in lines[1:] if line.strip() == "^"), None)
    if caret is not None and lines[0].endswith(err.override):
        position = caret.index("^") - (len(lines[0]) - len(err.override))
        if 0 <= position < len(err.override):
            where = f"at {err.override[position]!r} (character {position + 1})"
    return (
        f"cannot parse the override {err.override!r}: {where}; quote a value holding "
        f"^ ( ) [ ] {{ }} = , or spaces, e.g. 'param_groups.fc3.pattern=\"^fc3\\.\"' ({GRAMMAR})"
    )


def _joined(message: str) -> str:
    kept = []
    for line in message.splitlines():
        if line.startswith("Config search path"):
            break
        if line.strip():
            kept.append(line.strip())
    return "; ".join(kept)
