"""The schema's ranges and choices, checked in one pass over the composed config.

Hydra has checked every typed value's type while composing (see `schema`); what is left is
what a type cannot say: ranges (`trainer.max_epochs >= 1`), choices, finite numbers, list
items, required values never set (`???`), and keys added with `+` that no code reads.
Every problem is one line naming the key, the value and the rule, with the option's help.
"""

import difflib
import math
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

RULES = {
    "ge": (lambda value, limit: value >= limit, ">= {}"),
    "gt": (lambda value, limit: value > limit, "> {}"),
    "le": (lambda value, limit: value <= limit, "<= {}"),
    "lt": (lambda value, limit: value < limit, "< {}"),
}

# What OmegaConf reads as a boolean: words, and the numbers 0 and 1 (and null where allowed).
BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0", "null"}


@dataclass(frozen=True)
class Option:
    """One field of a schema as found at a key of the composed config."""

    key: str  # dotted, e.g. trainer.max_epochs
    value: Any
    limits: dict


def problems(cfg: DictConfig) -> list[str]:
    """Every range, choice and missing-value problem of every typed section of `cfg`."""
    found = []
    for node, where in _typed_sections(cfg):
        found += _unknown_keys(node, where)
        for name, limits in _limits(OmegaConf.get_type(node)).items():
            key = f"{where}{name}"
            try:
                value = node[name]
            except MissingMandatoryValue:
                found.append(f"{key}: required, and not set; set {key}=... ({limits.get('help')})")
                continue
            except InterpolationResolutionError as err:
                found.append(f"{key}: cannot be resolved ({err}); fix the interpolation")
                continue
            if isinstance(value, ListConfig):
                value = OmegaConf.to_container(value)
            found += _check(Option(key, value, limits))
    return found


def loose_booleans(cfg: DictConfig, overrides: list[str]) -> list[str]:
    """Command-line values of boolean options that OmegaConf took as true without a word
    (`trainer.channels_last=2`: any number but 0); what it reads as words stays accepted."""
    found = []
    for override in overrides:
        key, given, value = override.lstrip("+").partition("=")
        if override.startswith("~") or not given:
            continue
        section, _, name = key.rpartition(".")
        node = OmegaConf.select(cfg, section) if section else cfg
        cfg_type = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        if not is_dataclass(cfg_type):
            continue
        field = {f.name: f for f in fields(cfg_type)}.get(name)
        if field and field.type in (bool, bool | None) and value.lower() not in BOOLEAN_WORDS:
            found.append(f"{key}={value}: must be true or false; {field.metadata.get('help', '')}")
    return found


def help_for(full_key: str, cfg_type: type | None) -> str:
    """The help text of a schema field, for messages about it ('' when it has none)."""
    if cfg_type is None or not is_dataclass(cfg_type):
        return ""
    return _limits(cfg_type).get(full_key.rpartition(".")[2], {}).get("help", "")


def _typed_sections(cfg: DictConfig, where: str = ""):
    """(node, dotted prefix) for `cfg` and every node below it built from a schema."""
    if is_dataclass(OmegaConf.get_type(cfg)):
        yield cfg, where
    for key in cfg:
        # Walked as written: an interpolation is not resolved, a `???` not read (it would raise).
        if OmegaConf.is_missing(cfg, key) or OmegaConf.is_interpolation(cfg, key):
            continue
        child = cfg[key]  # a section as it is (None for a null one)
        if isinstance(child, DictConfig):
            yield from _typed_sections(child, f"{where}{key}.")


def _limits(cfg_type: type) -> dict[str, dict]:
    """Field name -> its metadata (help and limits), and whether null is allowed."""
    return {
        f.name: {**f.metadata, "nullable": "None" in str(f.type)}
        for f in fields(cfg_type)
        if not f.name.startswith("_")
    }


def _unknown_keys(node: DictConfig, where: str) -> list[str]:
    """Keys added with `+` to a typed section: nothing reads them, so they are typos."""
    known = {f.name for f in fields(OmegaConf.get_type(node))}
    found = []
    for key in node:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {where}{close[0]}? " if close else ""
        found.append(
            f"{where}{key}: no such key; {hint}{where.rstrip('.') or 'the config'} has "
            f"{', '.join(sorted(k for k in known if not k.startswith('_')))}"
        )
    return found


def _check(option: Option) -> list[str]:
    value, limits = option.value, option.limits
    items = value if isinstance(value, list) else [value]
    broken = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, float) and not math.isfinite(item):
            broken.append("a finite number")
        for rule, (holds, text) in RULES.items():
            if rule in limits and isinstance(item, int | float) and not holds(item, limits[rule]):
                broken.append(text.format(limits[rule]))
        if "choices" in limits and item not in limits["choices"]:
            broken.append(f"one of {', '.join(map(str, limits['choices']))}")
    what = "each item " if broken and isinstance(value, list) else ""
    if isinstance(value, list) and len(value) < limits.get("min_items", 0):
        what, broken = "", [*broken, f"a list of at least {limits['min_items']}"]
    if isinstance(value, list) and limits.get("unique") and len(set(value)) != len(value):
        broken.append("listed once each")
    if not broken:
        return []
    rule = " and ".join(dict.fromkeys(broken))
    null = ", or null" if limits["nullable"] else ""
    return [f"{option.key}={_show(value)}: {what}must be {rule}{null}; {limits.get('help', '')}"]


def _show(value) -> str:
    """As the user would type it: `[5,11]`, `0` for a float 0.0."""
    if isinstance(value, list):
        return "[" + ",".join(map(_show, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
