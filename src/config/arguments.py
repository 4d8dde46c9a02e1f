"""A section's keys checked against the signature of what it configures, before the call (`build`): a
typo is the user's to fix (one line), and a TypeError raised inside the call is a bug (a
traceback), never mistaken for the other."""

import difflib
import importlib
import inspect
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from src.errors import GroupwiseError


def check_arguments(target, kwargs: Mapping, section: str) -> None:
    """One line per key that `target`'s signature does not take, and per required argument
    not given; all of them together."""
    parameters = inspect.signature(target).parameters
    named = [
        name
        for name, p in parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name != "self"
    ]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    what = getattr(target, "__qualname__", str(target))
    problems = []
    for key in [] if takes_any else [k for k in kwargs if k not in named]:
        close = difflib.get_close_matches(str(key), named, n=1)
        hint = f"did you mean {section}.{close[0]}? " if close else ""
        problems.append(
            f"{section}.{key}: {what} takes no such key; {hint}it takes {', '.join(named)}"
        )
    problems += [
        f"{section}.{name}: required by {what}, and not set; set {section}.{name}=..."
        for name in named
        if parameters[name].default is inspect.Parameter.empty and name not in kwargs
    ]
    if problems:
        raise GroupwiseError(*problems)


def locate(target: str, key: str, hint: str):
    """The class or function the dotted path `target` names, or one line at `key` with `hint`.
    (Hydra's get_object logs its own lines before raising: not one line.)"""
    module, _, name = str(target).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, ValueError, AttributeError):
        raise GroupwiseError(f"{key}._target_={target}: {hint}") from None


def build(section: DictConfig, key: str, target=None, **kwargs):
    """Call the section's `_target_` (or `target`, when the checks have located it already)
    with its keys plus the run-time arguments given here (objects such as the param groups or
    the model's preprocessing, passed as they are). Its keys are checked against the target's
    signature first (a typo: one line naming `key`); an error raised inside the call is the
    target's own: a GroupwiseError stays one line, anything else keeps its traceback."""
    arguments = OmegaConf.to_container(section, resolve=True)
    named = arguments.pop("_target_")
    target = target or locate(named, key, "no such class or function")
    check_arguments(target, {**arguments, **kwargs}, key)
    return target(**arguments, **kwargs)
