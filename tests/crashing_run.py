"""The CLI (`python -m src.run`), killed with SIGKILL at a chosen point, as a crash would:

    python -m tests.crashing_run step N [overrides]   # right after the N-th optimizer step
    python -m tests.crashing_run write N [overrides]  # halfway through writing the N-th checkpoint
    python -m tests.crashing_run sigint N [overrides]  # Ctrl-C (SIGINT) right after the N-th step
    python -m tests.crashing_run pause N [overrides]  # 60 s asleep after the N-th step (to signal)
    python -m tests.crashing_run full N [overrides]  # the N-th checkpoint finds the disk full

Counts are per process. Used by tests/test_resume.py and tests/test_interrupt.py.
"""

import errno
import io
import os
import runpy
import signal
import sys
import time

import torch


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after_step(n: int, end=die) -> None:
    step = torch.optim.SGD.step
    calls = 0

    def step_then_maybe_die(self, *args, **kwargs):
        nonlocal calls
        result = step(self, *args, **kwargs)
        calls += 1
        if calls == n:
            end()
        return result

    torch.optim.SGD.step = step_then_maybe_die


def kill_while_writing(n: int) -> None:
    save = torch.save
    calls = 0

    def save_or_die_halfway(obj, f, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls < n:
            return save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        die()

    torch.save = save_or_die_halfway


def disk_full_at(n: int) -> None:
    """The N-th checkpoint write fails halfway as a full disk fails it (ENOSPC)."""
    save = torch.save
    calls = 0

    def save_or_fill_the_disk(obj, f, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls < n:
            return save(obj, f, *args, **kwargs)
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    torch.save = save_or_fill_the_disk


if __name__ == "__main__":
    mode, n, *overrides = sys.argv[1:]
    {
        "step": kill_after_step,
        "write": kill_while_writing,
        "sigint": lambda n: kill_after_step(n, lambda: os.kill(os.getpid(), signal.SIGINT)),
        "pause": lambda n: kill_after_step(n, lambda: time.sleep(60)),
        "full": disk_full_at,
    }[mode](int(n))
    sys.argv = [sys.argv[0], *overrides]
    runpy.run_module("src.run", run_name="__main__")  # as `python -m src.run` runs it
