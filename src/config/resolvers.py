"""The resolvers conf/ uses beside Hydra's own, registered when `src.run` is imported (the
entry point, the tests and every sweep worker import it before a config is resolved).

- `${project_dir:}`: the project's root, so configs name files shipped with the project
  wherever the command is run from.
- `${launch_time:%Y-%m-%d_%H-%M-%S}`: when this launch started, for naming run and sweep dirs.
  Hydra's `${now:...}` reads each process's own clock; under torchrun the ranks' clocks
  differ by seconds across nodes, and each rank would name a dir of its own. This one is
  Hydra's `now` (cached per config, a cache Hydra copies into each job's config, so a sweep's
  jobs share their sweep's value: tests/test_hydra_internals.py), except that the entry point
  may register it with a time of its own: under torchrun, rank 0's.
- `${sweep_job_name:...}`: a sweep job's name, after what the sweep varies (src/config/sweep.py).
"""

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from src.config import sweep


def register(launch_time: datetime | None = None) -> None:
    """`launch_time`: what `${launch_time:...}` reads; None, the clock when a config first
    resolves it."""
    OmegaConf.register_new_resolver(
        "project_dir", lambda: str(Path(__file__).resolve().parents[2]), replace=True
    )
    OmegaConf.register_new_resolver(
        "launch_time",
        lambda pattern: (launch_time or datetime.now()).strftime(pattern),
        use_cache=True,
        replace=True,
    )
    OmegaConf.register_new_resolver(
        "sweep_job_name",
        lambda sweep_dir, overrides, num, sweeper: sweep.job_name(
            sweep.recorded_swept_keys(sweep_dir),
            list(overrides),
            num,
            sweep.numbered(sweep_dir, sweeper),
        ),
        replace=True,
    )
