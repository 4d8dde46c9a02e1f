"""The one module that imports Hydra's private code, and why.

Hydra composes the config inside `hydra.main`, before the task function runs, and reports a
composition error (an unknown config option, a typo'd key, an override its grammar cannot
parse) through `hydra._internal.utils.run_and_report`: several lines, a hint about
HYDRA_FULL_ERROR, exit 1. No public hook sees that error: callbacks start after composition,
and the only documented switch (HYDRA_FULL_ERROR=1) changes how every error prints, in every
process the run starts. So, while the entry point runs, `run_and_report` is wrapped to report
these errors the way groupwise reports its own (src/errors.py): one line, exit 2. So is
any other error raised inside Hydra's code alone, before groupwise's runs: an override the
grammar accepts and composition then trips over (`trainer=[1]`, a TypeError deep in Hydra).

Hydra's `_run_hydra` and `_run_app` look `run_and_report` up in their module each time they
call it, which is what makes the wrapper take effect. tests/test_hydra_internals.py checks
that this still holds, and fails saying what changed when a Hydra release changes it (as it
does for what src/config/sweep.py relies on without importing it).

The basic sweeper's own expansion of a sweep into its jobs (`BasicSweeper.split_arguments`, a
static method) is used as it is, so that the jobs checked before a sweep starts
(src/sweep_jobs.py) are the jobs it runs, in its order, whatever sweep syntax gave them.
"""

import contextlib
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from hydra._internal import utils as hydra_internal_utils
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.types import Override

from src import errors
from src.config.hydra_errors import CONFIG_ERRORS, GRAMMAR, one_line

SRC = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def config_errors_as_one_line() -> Iterator[None]:
    """Within: Hydra's config errors are reported as groupwise's own: one line, exit 2."""
    hydra_report = hydra_internal_utils.run_and_report
    hydra_internal_utils.run_and_report = _reporting_config_errors(hydra_report)
    try:
        yield
    finally:
        hydra_internal_utils.run_and_report = hydra_report


def _reporting_config_errors(hydra_report: Callable) -> Callable:
    def run_and_report(func):
        def call():
            try:
                return func()
            except Exception as err:
                if errors.full_error():
                    raise  # Hydra's own report: the whole traceback
                if isinstance(err, CONFIG_ERRORS):
                    message = one_line(err)
                elif _raised_inside_hydra(err):
                    message = _hydra_choked(err)
                else:
                    raise
                errors.exit_with(message)

        return hydra_report(call)

    return run_and_report


def _raised_inside_hydra(err: Exception) -> bool:
    """Whether `err` came from Hydra's own code alone, never reaching groupwise's (the first
    frame is `call` above): an override its grammar accepts that its composition then
    trips over, such as a list given to a config group (`trainer=[1]`)."""
    frames = traceback.extract_tb(err.__traceback__)[1:]
    return not any(Path(frame.filename).resolve().is_relative_to(SRC) for frame in frames)


def _hydra_choked(err: Exception) -> str:
    overrides = " ".join(arg for arg in sys.argv[1:] if not arg.startswith("-"))
    return (
        f"Hydra could not compose the config from the overrides {overrides!r} "
        f"({type(err).__name__}: {err}); check each against {GRAMMAR} (a config group takes "
        "one option name, e.g. trainer=default)"
    )


def unknown_flags(args: list[str]) -> list[str]:
    """`--epochs 3`: flags Hydra's own argument parser does not know, which it would answer
    with its usage text; each a line pointing to key=value."""
    _, unknown = get_args_parser().parse_known_args(args)
    return [
        f"{flag}: no such flag; options are key=value overrides, e.g. trainer.max_epochs=3 "
        "(python -m src.run --help lists them)"
        for flag in unknown
        if flag.startswith("-")
    ]


def grid_jobs(overrides: list[Override]) -> list[list[str]]:
    """Each job's overrides, as the basic sweeper runs them: the cartesian product of the
    sweeps (`seed=0,1 optimizer.lr=0.1,1`: 4 jobs), in its order (Hydra's job numbers)."""
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
