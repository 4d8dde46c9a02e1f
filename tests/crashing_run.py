"""The CLI (`python -m src.run`), killed with SIGKILL at a chosen point, as a crash would:

    python -m tests.crashing_run step N [overrides]   # right after the N-th optimizer step
    python -m tests.crashing_run write N [overrides]  # halfway through writing the N-th checkpoint
    python -m tests.crashing_run sigint N [overrides]  # Ctrl-C (SIGINT) right after the N-th step
    python -m tests.crashing_run pause N [overrides]  # 60 s asleep after the N-th step (to signal)
    python -m tests.crashing_run full N [overrides]  # the N-th checkpoint finds the disk full
    python -m tests.crashing_run full-file NAME [overrides]  # files named NAME* find it full
    python -m tests.crashing_run full-events 0 [overrides]  # TensorBoard's last write finds it full
    python -m tests.crashing_run full-events-write N [overrides]  # its N-th write (its own thread)
    python -m tests.crashing_run pause-at MODULE:NAME [overrides]  # 60 s asleep at its first call

Counts are per process. The command is `src.run`'s, or the module named first among the
overrides (`src.evaluate run_dir=...`). Used by tests/test_resume.py, tests/test_interrupt.py
and tests/test_after_training.py.
"""

import builtins
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


def from_nth_save(n: int, instead) -> None:
    """torch.save as usual until its N-th call; from then on `instead(save, obj, f, ...)`."""
    save = torch.save
    calls = 0

    def save_or_not(obj, f, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls < n:
            return save(obj, f, *args, **kwargs)
        return instead(save, obj, f, *args, **kwargs)

    torch.save = save_or_not


def kill_while_writing(n: int) -> None:
    def die_halfway(save, obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        die()

    from_nth_save(n, die_halfway)


def disk_full_at(n: int) -> None:
    """The N-th checkpoint write fails halfway as a full disk fails it (ENOSPC)."""

    def fill_the_disk(save, obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from_nth_save(n, fill_the_disk)


class _FullDisk(io.RawIOBase):
    """A file opened for writing on a full disk: its first write fails, as the OS fails it
    (ENOSPC, no file name: the code that writes must name it)."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def disk_full_writing(name: str) -> None:
    """Files whose names start with `name` (`metrics.json`: its temporary file too), opened for
    writing (`open`, `Path.write_text`), find the disk full."""
    real_open = io.open

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        writes = isinstance(file, str | os.PathLike) and set(mode) & set("wax")
        if writes and os.path.basename(file).startswith(name):
            return io.TextIOWrapper(_FullDisk()) if "b" not in mode else _FullDisk()
        return real_open(file, mode, *args, **kwargs)

    io.open = builtins.open = open_on_full_disk


def disk_full_closing_events() -> None:
    """TensorBoard's event file finds the disk full as it is closed (its last buffered write)."""
    from tensorboard.compat import tf

    def close_on_full_disk(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    tf.io.gfile.GFile.close = close_on_full_disk


def pause() -> None:
    """60 s asleep, after touching the file $PAUSED_MARKER names (if set): the test that
    signals the command knows it is here, without guessing when."""
    if "PAUSED_MARKER" in os.environ:
        open(os.environ["PAUSED_MARKER"], "w").close()
    time.sleep(60)


def pause_at(where: str) -> None:
    """The first call of `where` (`src.data.cache_store:shutil.rmtree`, a function or an
    attribute path below a module) `pause`s first: a test signals the command there."""
    import importlib

    module_name, _, path = where.partition(":")
    *owners, name = path.split(".")
    owner = importlib.import_module(module_name)
    for attribute in owners:
        owner = getattr(owner, attribute)
    real = getattr(owner, name)
    paused = False

    def pause_then_call(*args, **kwargs):
        nonlocal paused
        if not paused:
            paused = True
            pause()
        return real(*args, **kwargs)

    setattr(owner, name, pause_then_call)


def disk_full_at_event_write(n: int) -> None:
    """The N-th write to TensorBoard's event file finds the disk full: in its writer thread."""
    from tensorboard.compat import tf

    write = tf.io.gfile.GFile.write
    calls = 0

    def write_or_fill_the_disk(self, *args):
        nonlocal calls
        calls += 1
        if calls == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(self, *args)

    tf.io.gfile.GFile.write = write_or_fill_the_disk


if __name__ == "__main__":
    mode, n, *overrides = sys.argv[1:]
    {
        "step": kill_after_step,
        "write": kill_while_writing,
        "sigint": lambda n: kill_after_step(n, lambda: os.kill(os.getpid(), signal.SIGINT)),
        "pause": lambda n: kill_after_step(n, pause),
        "full": disk_full_at,
        "full-file": disk_full_writing,
        "full-events": lambda n: disk_full_closing_events(),
        "full-events-write": disk_full_at_event_write,
        "pause-at": pause_at,
    }[mode](n if mode in ("full-file", "pause-at") else int(n))
    module = overrides.pop(0) if overrides and overrides[0].startswith("src.") else "src.run"
    sys.argv = [sys.argv[0], *overrides]
    runpy.run_module(module, run_name="__main__")  # as `python -m <module>` runs it
