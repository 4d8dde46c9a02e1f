"""The small commands beside `src.run` (`src.evaluate`, `src.predict`): their `key=value`
arguments composed by Hydra onto conf/<command>.yaml and its schema, so they take Hydra's
override grammar and report mistakes as `src.run` does, through the reporter (src/errors.py).

They use Hydra's compose API rather than `hydra.main`: they read a run dir, they do not make one
(no run dir, no .hydra record, no log file of their own).
"""

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from src import errors, stopping
from src.config import checks, schema
from src.config.hydra_errors import CONFIG_ERRORS, one_line
from src.errors import GroupwiseError, WriteFailed

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_command(name: str, args: list[str]) -> DictConfig:
    """conf/<name>.yaml with `args` applied, every value checked against the schema."""
    schema.register()
    paths = {f.name for f in fields(schema.SCHEMAS[name]) if f.metadata.get("path")}
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(name, overrides=[quote_path(arg, paths) for arg in args])
    except CONFIG_ERRORS as err:
        raise GroupwiseError(one_line(err)) from None
    problems = checks.problems(cfg)
    if problems:
        raise GroupwiseError(*problems)
    return cfg


def quote_path(arg: str, paths: set[str]) -> str:
    """`run_dir=outputs/multirun/<time>/lr_mult=100,seed=1` as the run printed it: a path's
    value quoted for Hydra's override grammar, which would read its `=` and `,` as syntax.
    A value the user quoted already is left as it is."""
    key, equals, value = arg.partition("=")
    if key not in paths or not equals or value[:1] in ("'", '"') or value in ("", "null"):
        return arg
    # In a quoted value only a quote, and backslashes before a quote or the end, are escaped.
    escaped = re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\" + m[2] if m[2] else ""), value)
    return f"{key}='{escaped}'"


def run_command(
    name: str, doc: str, action: Callable[[DictConfig], object], args: list[str]
) -> None:
    """`python -m src.<name> key=value ...`: `--help` prints the usage; otherwise `action` gets
    the composed, checked config, and bad input is reported (src/errors.py): exit 2."""
    try:
        with console_may_close(), stopping.on_signals():
            if {"-h", "--help"} & set(args):
                print(usage(name, doc))
                return
            action(compose_command(name, args))
    except KeyboardInterrupt as stop:  # what was written is whole: reports are written at once
        stopping.exit_stopped(stop, f"in src.{name}: nothing left half-written; run it again")
    except GroupwiseError as err:
        errors.exit_if_user_mistake(err)
        raise  # HYDRA_FULL_ERROR=1: with its traceback


class _ClosablePipe:
    """stdout that outlives its reader (`| head -4`): once the pipe is closed, what is printed
    goes nowhere, and the command goes on to write its files, instead of a BrokenPipeError."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self._guarded(self.stream.write, text) or len(text)

    def flush(self) -> None:
        self._guarded(self.stream.flush)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)

    def _guarded(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            # The rest, and Python's own flush at exit, into /dev/null.
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            return None


@contextlib.contextmanager
def console_may_close() -> Iterator[None]:
    """stdout that outlives its reader, for the body of the `with` (the logging handlers
    configured inside it write to it too)."""
    stdout, sys.stdout = sys.stdout, _ClosablePipe(sys.stdout)
    try:
        yield
    finally:
        sys.stdout = stdout


@contextlib.contextmanager
def written(path: Path, advice: str) -> Iterator[None]:
    """Writes into `path` within the `with`: a full disk or a read-only place is one line
    (exit 74) naming the file and `advice`, not a traceback."""
    try:
        yield
    except OSError as err:
        raise WriteFailed(
            f"could not write {err.filename or path} ({err.strerror}); {advice}"
        ) from None


def usage(name: str, doc: str) -> str:
    """`--help`: the command's purpose and every option with its default and help."""
    options = fields(schema.SCHEMAS[name])
    width = max(len(f.name) for f in options)
    lines = [f"python -m src.{name} key=value ...", "", doc.strip(), "", "options:"]
    for f in options:
        default = "required" if f.default == "???" else f"default {_shown(f.default)}"
        lines.append(f"  {f.name:<{width}}  {f.metadata['help']} ({default})")
    return "\n".join(lines)


def _shown(value) -> str:
    return "null" if value is None else str(value)
