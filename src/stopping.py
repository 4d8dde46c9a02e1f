"""How a command stops when asked to: Ctrl-C (SIGINT) and SIGTERM (a scheduler's preemption, a
`kill`) both raise KeyboardInterrupt where the command stands, so the one path that turns
Ctrl-C into a kept checkpoint and one line serves both; `Terminated` tells them apart for the
exit code (src/errors.py: 130, 143).

The first signal is the one that counts: later ones, while the command cleans up and prints
its line (a second Ctrl-C, a scheduler's repeated SIGTERM), are ignored, so they cannot break
the clean-up off with a traceback from wherever it stood (an atexit handler, a file's close).

A KeyboardInterrupt can be lost: torch's C code imports numpy and clears any error the import
raised, so a Ctrl-C landing there leaves a half-imported numpy and a command that goes on (and
later fails on it, or ends as if never stopped). Hence the heavy imports run `deferred()`, and
a Ctrl-C of the start-up is remembered: `on_signals` raises it again if it was swallowed.
"""

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

from src import errors

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be."""


def exit_code(stop: BaseException) -> int:
    return errors.TERMINATED if isinstance(stop, Terminated) else errors.INTERRUPTED


def name(stop: BaseException) -> str:
    return "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"


_start_up_interrupted = False


def interrupt_start_up(signum: int, frame) -> None:
    """SIGINT's handler while a command's modules are imported: Python's own, remembered."""
    global _start_up_interrupted
    _start_up_interrupted = True
    raise KeyboardInterrupt()


def _stop(signum: int, frame) -> None:
    for each in SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def on_signals() -> Iterator[None]:
    """Within the `with`: SIGINT and SIGTERM stop the command as above; before and after,
    the handlers as they were (the tests run commands inside pytest's own process)."""
    if _start_up_interrupted:  # and swallowed by a library's import, or it would not be here
        raise KeyboardInterrupt()
    before = {each: signal.getsignal(each) for each in SIGNALS}
    for each in SIGNALS:
        signal.signal(each, _stop)
    try:
        yield
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A signal within the `with` stops the command at its end: for what must be whole (the
    last files, short) or cannot be interrupted safely (torch's import: see above)."""
    arrived = []
    before = {each: signal.getsignal(each) for each in SIGNALS}
    for each in SIGNALS:
        signal.signal(each, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for each, handler in before.items():
            signal.signal(each, handler)
    if arrived:
        raise Terminated() if arrived[0] == signal.SIGTERM else KeyboardInterrupt()


WORKER_GRACE_S = 5  # a worker's time, after SIGTERM, to be shut down by its main process


def worker_leaves_signals_to_main(worker_id: int) -> None:
    """A DataLoader's `worker_init_fn`: a terminal's Ctrl-C and a scheduler's SIGTERM reach the
    whole process group, workers too; the main process stops the command, and its workers as
    it cleans up. A worker ended by the signal itself is a failure to torch, which says so with
    a traceback while the main process shuts its workers down. So a worker ignores Ctrl-C, and
    ends WORKER_GRACE_S after a SIGTERM: multiprocessing's own exit stops leftover workers with
    SIGTERM and waits for them, which an ignored SIGTERM would make wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _end_soon)


def _end_soon(signum: int, frame) -> None:
    signal.alarm(WORKER_GRACE_S)  # SIGALRM's default action ends the process


def exit_stopped(stop: BaseException, what: str) -> None:
    """Ends the command stopped by `stop` with one line: `what` it had done."""
    errors.exit_with(
        f"interrupted by {name(stop)} {what}", code=exit_code(stop), prefix=errors.STOPPED
    )


def start_up_hook(kind, value, traceback) -> None:
    """sys.excepthook of a command: a Ctrl-C while Python imports the command's modules (before
    `on_signals`) is one line too, also where Python wrapped it in another error (a dataclass
    being made re-raises it as a RuntimeError); anything else, Python's own traceback."""
    if not _caused_by_ctrl_c(value) or errors.full_error():
        sys.__excepthook__(kind, value, traceback)
        return
    print(
        f"{errors.STOPPED}interrupted by Ctrl-C during start-up: nothing was run",
        file=sys.stderr,
        flush=True,
    )
    if not issubclass(kind, KeyboardInterrupt):
        # Python ends by SIGINT itself after an uncaught KeyboardInterrupt (a shell shows 130);
        # the wrapping error would end with 1, so end as that would.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)


def _caused_by_ctrl_c(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False
