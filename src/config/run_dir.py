"""The run dir (or sweep dir) must be named and be a directory this process can write,
checked before Hydra creates it: otherwise Hydra's own `mkdir` fails with a traceback before
any groupwise code runs, and an empty `hydra.run.dir=` would train into the current directory.
A Hydra callback, configured under `hydra.callbacks` in conf/config.yaml. Hydra turns an
exception raised in a callback into a warning and goes on, so the callback reports the
problem itself (src/errors.py) and exits, whatever HYDRA_FULL_ERROR says.

The callback also notes which directories the launch is about to create, so that a run
refused later (bad input found while building) removes them again: a refused run leaves
nothing behind (`remove_made_dirs`).
"""

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src import errors
from src.errors import GroupwiseError

# The run dir and those of its parents that did not exist when this launch started, deepest
# first. Module state: Hydra makes the callback, the entry point cleans up after a refusal.
_made: list[Path] = []


class RunDirCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_writable(config.hydra.sweep.dir, "hydra.sweep.dir")


def remove_made_dirs() -> None:
    """After a refusal: the dirs this launch made, each only if it is still empty."""
    for directory in _made:
        try:
            directory.rmdir()
        except OSError:  # not empty, or gone: kept as it is
            return


def _exit_unless_writable(directory: str | None, key: str) -> None:
    try:
        if directory is None or not str(directory).strip():
            raise GroupwiseError(
                f"{key} is empty: the run would write into the current directory; name a "
                f"directory, e.g. {key}=outputs/my_run, or leave {key} out for a new "
                "timestamped one"
            )
        path = Path(directory)
        _made[:] = [d for d in [path, *path.parents] if not d.exists()]
        check_writable(path, key)
    except GroupwiseError as err:
        remove_made_dirs()
        errors.exit_with(*err.problems)


def check_writable(directory: Path, key: str) -> None:
    """Create `directory` (as Hydra is about to) and check that files can be made in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writable = os.access(directory, os.W_OK | os.X_OK)
    except OSError as err:
        raise GroupwiseError(
            f"{key}={directory}: cannot be created ({err.strerror}); choose a directory you can "
            "write, e.g. outputs/runs/my_run"
        ) from None
    if not writable:
        raise GroupwiseError(
            f"{key}={directory}: not writable by this user; choose a directory you can write"
        )
