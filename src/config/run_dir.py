"""The run dir (or sweep dir) must be a directory this process can write, checked before Hydra
creates it: otherwise Hydra's own `mkdir` fails with a traceback before any groupwise code
runs. A Hydra callback, configured under `hydra.callbacks` in conf/config.yaml. Hydra turns
an exception raised in a callback into a warning and goes on, so the callback reports the
problem itself (src/errors.py) and exits, whatever HYDRA_FULL_ERROR says."""

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src import errors
from src.errors import GroupwiseError


class RunDirCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_writable(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_writable(Path(config.hydra.sweep.dir), "hydra.sweep.dir")


def _exit_unless_writable(directory: Path, key: str) -> None:
    try:
        check_writable(directory, key)
    except GroupwiseError as err:
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
