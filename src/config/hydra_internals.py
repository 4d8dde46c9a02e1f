"""The one place groupwise reaches into Hydra's private code, and why.

Hydra composes the config inside `hydra.main`, before the task function runs, and reports a
composition error (an unknown config option, a typo'd key, an override its grammar cannot
parse) through `hydra._internal.utils.run_and_report`: several lines, a hint about
HYDRA_FULL_ERROR, exit 1. No public hook sees that error: callbacks start after composition,
and the only documented switch (HYDRA_FULL_ERROR=1) changes how every error prints, in every
process the run starts. So, while the entry point runs, `run_and_report` is wrapped to report
these errors the way groupwise reports its own: one `groupwise: error:` line, exit 2.

Hydra's `_run_hydra` and `_run_app` look `run_and_report` up in their module each time they
call it, which is what makes the wrapper take effect. tests/test_hydra_internals.py checks
that this still holds, and fails saying what changed when a Hydra release changes it.
"""

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from hydra._internal import utils as hydra_internal_utils

from src.config.hydra_errors import CONFIG_ERRORS, one_line


@contextlib.contextmanager
def config_errors_as_one_line() -> Iterator[None]:
    """Within: Hydra's config errors are one `groupwise: error:` line and exit 2."""
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
            except CONFIG_ERRORS as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise  # Hydra's own report: the whole traceback
                print(f"groupwise: error: {one_line(err)}", file=sys.stderr)
                sys.exit(2)

        return hydra_report(call)

    return run_and_report
