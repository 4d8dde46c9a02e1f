"""The one exception type for mistakes a user can fix, and the one reporter of problems to the
user: a `groupwise: error:` line on stderr per problem, never a traceback, and the exit code.

Every entry point and Hydra callback reports through here, so every error reads the same and
HYDRA_FULL_ERROR=1 (Hydra's switch) shows the traceback of any of them.
"""

import os
import sys
import traceback
from collections.abc import Iterable
from typing import NoReturn

USER_MISTAKE = 2  # exit code: the config or the input files need fixing
JOBS_FAILED = 1  # exit code: a sweep ran to its end, and some of its jobs failed
INTERRUPTED = 130  # exit code: Ctrl-C (128 + SIGINT, as shells report it)
ERROR = "groupwise: error: "
WARNING = "groupwise: warning: "
# How a DataLoader worker hands an error back: the worker's traceback, with the message last.
WORKER_ERROR = "Caught GroupwiseError in DataLoader worker"


class GroupwiseError(Exception):
    """A problem with the user's config or input files.

    The message says what was wrong, where (the config key and value) and what to do.
    Several problems found together are reported as one error, one per line.
    """

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Interrupted(GroupwiseError):
    """Ctrl-C: where the run stopped and how to continue it, one line, exit 130."""

    code = INTERRUPTED


def full_error() -> bool:
    """Whether the user asked for tracebacks (HYDRA_FULL_ERROR=1, as Hydra reads it)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def report(err: BaseException) -> None:
    """Prints `err` and goes on: the user's mistake as one line per problem; a bug, or any
    error under HYDRA_FULL_ERROR=1, with its traceback."""
    if not isinstance(err, GroupwiseError) or full_error():
        traceback.print_exception(err)
        return
    _print_lines(ERROR, err.problems)


def exit_with(*problems: str, code: int = USER_MISTAKE) -> NoReturn:
    """Ends the command: one `groupwise: error:` line per problem, then exit `code`."""
    _print_lines(ERROR, problems)
    sys.exit(code)


def exit_if_user_mistake(err: BaseException) -> None:
    """Ends the command if `err` is the user's mistake (its lines, exit 2), unless
    HYDRA_FULL_ERROR=1 asks for its traceback; otherwise returns, for the caller to raise."""
    if isinstance(err, GroupwiseError) and not full_error():
        exit_with(*err.problems, code=getattr(err, "code", USER_MISTAKE))


def warn(message: str) -> None:
    """Something the user should know, that did not stop the command."""
    _print_lines(WARNING, [message])


def _print_lines(prefix: str, messages: Iterable[str]) -> None:
    for message in messages:
        print(f"{prefix}{_own_words(message)}", file=sys.stderr)


def _own_words(problem: str) -> str:
    """A DataLoader worker's error arrives wrapped in the worker's traceback; the last line
    holds the message as raised."""
    if problem.startswith(WORKER_ERROR):
        return problem.strip().splitlines()[-1].removeprefix("src.errors.GroupwiseError: ")
    return problem
