"""Hydra's own config errors as one clear line: an unknown config option (`model=nope`), a
typo'd key (`trainer.max_epoch=3`), an override its grammar cannot parse (`pattern=^fc3`).

Hydra prints these over several lines, with its config search path and a hint about
HYDRA_FULL_ERROR; they are the user's to fix, so groupwise reports them like its own errors.
"""

import difflib
import re
from collections.abc import Mapping
from dataclasses import is_dataclass

from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from omegaconf.errors import ValidationError

from src.config.checks import help_for

CONFIG_ERRORS = (ConfigCompositionException, OverrideParseException, SearchPathException)
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic"


def one_line(err: Exception) -> str:
    if isinstance(err, MissingConfigException) and err.options and err.missing_cfg_file:
        return _unknown_option(err.missing_cfg_file, list(err.options))
    if isinstance(err, OverrideParseException):
        return _unparsable(err)
    cause = err.__cause__
    if isinstance(cause, ValidationError) and cause.full_key:
        return _wrong_type(cause)
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
    typed = is_dataclass(getattr(err.__cause__, "object_type", None))
    # A typed section (see schema) has a fixed set of keys: nothing would read an added one.
    add = f"; to add a new key on purpose: {append.group(1)}" if append and not typed else ""
    has = f"has {', '.join(siblings)}" if siblings else "is empty"
    return f"{full_key}: no such key; {hint}{parent or 'the config'} {has}{add}"


# What OmegaConf says when a value does not fit the schema's type -> the type in words.
WRONG_TYPE = (
    (r"Value '(.*)' of type '\w+' could not be converted to Integer", "an integer"),
    (r"Value '(.*)' of type '\w+' could not be converted to Float", "a number"),
    (r"Value '(.*)' is not a valid bool", "true or false"),
    (r"Value '(.*)' of type '\w+' could not be converted to String", "a string"),
)
# ... and when it names only the type it was given.
WRONG_CONTAINER = (
    (r"Invalid value assigned: (\w+) is not a ListConfig", "a list, e.g. [a, b]"),
    (r"Invalid value assigned: (\w+) is not a subclass of", "a mapping of keys to values"),
)


def _wrong_type(cause: ValidationError) -> str:
    """`trainer.max_epochs=true`: the schema's type, in words, and the option's help."""
    help_text = help_for(cause.full_key, cause.object_type)
    hint = f"; {help_text}" if help_text else ""
    for pattern, wanted in WRONG_TYPE:
        found = re.match(pattern, cause.msg)
        if found:
            return f"{cause.full_key}={found.group(1)}: must be {wanted}{hint}"
    for pattern, wanted in WRONG_CONTAINER:
        found = re.match(pattern, cause.msg)
        if found:
            return f"{cause.full_key}: must be {wanted}, not a {found.group(1)}{hint}"
    return f"{cause.full_key}: {_joined(cause.msg)}{hint}"


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
