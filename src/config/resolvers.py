"""The resolvers conf/ uses beside Hydra's own, registered when `src.run` is imported (the
entry point, the tests and every sweep worker import it before a config is resolved).

- `${project_dir:}`: the project's root, so configs name files shipped with the project
  wherever the command is run from.
- `${launch_time:%Y-%m-%d_%H-%M-%S}`: when this launch started, for naming run and sweep dirs.
  Hydra's `${now:...}` reads each process's own clock; under torchrun the ranks' clocks
  differ by seconds across nodes, and each rank would name a dir of its own. This one is
  Hydra's `now` (cached per config, so a sweep's jobs share their sweep's value), except that
  under torchrun every rank reads rank 0's clock (`use_launch_time`).
- `${swept_keys:}`, `${sweep_job_name:...}`: what a sweep varies, and a job's name after it
  (src/config/sweep.py).
"""

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from src.config import sweep

_shared_launch_time: datetime | None = None  # rank 0's, under torchrun


def register() -> None:
    OmegaConf.register_new_resolver(
        "project_dir", lambda: str(Path(__file__).resolve().parents[2]), replace=True
    )
    OmegaConf.register_new_resolver(
        "launch_time",
        lambda pattern: launch_time().strftime(pattern),
        use_cache=True,
        replace=True,
    )
    # Cached by its arguments' text: computed where the sweep is launched, from the sweep
    # syntax there, and copied with the cache into every job's config.
    OmegaConf.register_new_resolver(
        "swept_keys",
        lambda overrides, params: ",".join(sweep.swept_keys(list(overrides), params)),
        use_cache=True,
        replace=True,
    )
    OmegaConf.register_new_resolver(
        "sweep_job_name",
        lambda swept, overrides, num, sweeper: sweep.job_name(
            [key for key in swept.split(",") if key], list(overrides), num, sweeper
        ),
        replace=True,
    )


def use_launch_time(time: datetime) -> None:
    """From now on, `${launch_time:...}` reads `time` instead of this process's clock."""
    global _shared_launch_time
    _shared_launch_time = time


def launch_time() -> datetime:
    return _shared_launch_time or datetime.now()
