"""The one exception type for mistakes a user can fix, and the one reporter of problems to the
user: a `groupwise: error:` line on stderr per problem, never a traceback, and the exit code.

Every entry point and Hydra callback reports through here, so every error reads the same and
HYDRA_FULL_ERROR=1 (Hydra's switch) shows the traceback of any of them.
"""

import logging
import os
import sys
import traceback
from collections.abc import Iterable
from typing import NoReturn

# Exit codes, by cause (the README's "Exit codes" lists them for users and schedulers):
JOBS_FAILED = 1  # a sweep ran to its end, and some of its jobs failed
USER_MISTAKE = 2  # the config or the input files need fixing
WRITE_FAILED = 74  # a file could not be written (disk full, read-only): BSD's EX_IOERR
BUSY = 75  # another process writes the run dir; try again once it has ended: EX_TEMPFAIL
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
# SIGTERM (128 + SIGTERM): what a scheduler's preemption sends, and the code its requeue
# logic reads as "stopped by the scheduler"; the checkpoint is kept for resume=true.
TERMINATED = 143
ERROR = "groupwise: error: "
STOPPED = "groupwise: "  # an interruption asked for is no error
WARNING = "groupwise: warning: "
# How a DataLoader worker hands an error back: the worker's traceback, with the message last.
WORKER_ERROR = "Caught GroupwiseError in DataLoader worker"


class GroupwiseError(Exception):
    """A problem with the user's config or input files.

    The message says what was wrong, where (the config key and value) and what to do.
    Several problems found together are reported as one error, one per line.
    """

    code = USER_MISTAKE
    prefix = ERROR

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Interrupted(GroupwiseError):
    """Ctrl-C or SIGTERM: where the command stopped and how to continue, one line that is not
    labelled an error; exit 130 (Ctrl-C) or 143 (SIGTERM)."""

    prefix = STOPPED

    def __init__(self, problem: str, code: int = INTERRUPTED):
        super().__init__(problem)
        self.code = code


class WriteFailed(GroupwiseError):
    """A file that could not be written: the disk is full, or the place is read-only."""

    code = WRITE_FAILED


class Busy(GroupwiseError):
    """The run dir is another process's to write (src/run_lock.py)."""

    code = BUSY


def full_error() -> bool:
    """Whether the user asked for tracebacks (HYDRA_FULL_ERROR=1, as Hydra reads it)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def report(err: BaseException) -> None:
    """Prints `err` and goes on: the user's mistake as one line per problem; a bug, or any
    error under HYDRA_FULL_ERROR=1, with its traceback."""
    if not isinstance(err, GroupwiseError) or full_error():
        traceback.print_exception(err)
        return
    _print_lines(err.prefix, err.problems)


def exit_with(*problems: str, code: int = USER_MISTAKE, prefix: str = ERROR) -> NoReturn:
    """Ends the command: one `groupwise: error:` line per problem, then exit `code`. A command
    stopped (Ctrl-C, SIGTERM) writes its line into its log file too (a run's run.log), so a
    scheduler's preempted job leaves the reason in its own log, not only on a console that
    may be gone."""
    _print_lines(prefix, problems)
    if prefix == STOPPED:
        _log_to_files(prefix, problems)
    sys.exit(code)


def exit_if_user_mistake(err: BaseException) -> None:
    """Ends the command if `err` is the user's mistake (its lines, exit 2; or an interruption,
    a failed write, a busy run dir: their own codes), unless HYDRA_FULL_ERROR=1 asks for its
    traceback; otherwise returns, for the caller to raise."""
    if isinstance(err, GroupwiseError) and not full_error():
        exit_with(*err.problems, code=err.code, prefix=err.prefix)


def warn(message: str) -> None:
    """Something the user should know, that did not stop the command."""
    _print_lines(WARNING, [message])


def _print_lines(prefix: str, messages: Iterable[str]) -> None:
    for message in messages:
        print(f"{prefix}{_own_words(message)}", file=sys.stderr)


def _log_to_files(prefix: str, messages: Iterable[str]) -> None:
    """The lines, to the root logger's files only: the console has them already. A run's
    run.log is held until the run goes ahead (src/config/launch_record.py): a run stopped before
    that writes none."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            for message in messages:
                handler.handle(logging.makeLogRecord({"msg": f"{prefix}{message}"}))
            handler.flush()


def _own_words(problem: str) -> str:
    """A DataLoader worker's error arrives wrapped in the worker's traceback; the last line
    holds the message as raised."""
    if problem.startswith(WORKER_ERROR):
        return problem.strip().splitlines()[-1].removeprefix("src.errors.GroupwiseError: ")
    return problem
