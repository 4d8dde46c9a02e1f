"""A run dir has one writer at a time: a run (a resume, a dry run) holds an exclusive lock on
its dir for its whole life; `src.evaluate` and `src.predict` hold one while they write into it,
a shared one while they only read it. A second writer is refused at once (exit 75), naming the
holder's pid and command.

The lock is `flock` on the directory itself, not on a file in it: the OS releases it when its
process ends, however it ends (a crash, SIGKILL), so no stale lock is ever left; and taking it
writes nothing, so a refused command leaves a finished run's files as they were.
"""

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from src.errors import Busy

PROC_LOCKS = Path("/proc/locks")  # Linux: every lock held, with its holder's pid


@contextlib.contextmanager
def held(run_dir: Path, busy: str, exclusive: bool = True) -> Iterator[None]:
    """The lock on `run_dir` within the `with`; refused with `busy` (its `{holder}`: the pid
    and command of the process that holds it)."""
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(busy.format(holder=holder(fd))) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def holder(fd: int) -> str:
    """`pid 1234: python -m src.run ...`, the process whose lock stands on `fd`'s directory;
    `another process` where the system does not say."""
    stat = os.fstat(fd)
    inode = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        lines = PROC_LOCKS.read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
            return f"pid {fields[4]}{_command(fields[4])}"
    return "another process"


def _command(pid: str) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [w.decode(errors="replace") for w in words if w]
    return f": {' '.join([Path(words[0]).name, *words[1:]])[:160]}" if words else ""
