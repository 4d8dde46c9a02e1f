"""The resolvers conf/ uses beside Hydra's own, registered when `src.run` is imported (the
entry point, the tests and every sweep worker import it before a config is resolved).

- `${project_dir:}`: the project's root, so configs name files shipped with the project
  wherever the command is run from.
- `${launch_time:%Y-%m-%d_%H-%M-%S}`: when this launch started, for naming run and sweep dirs.
  Hydra's `${now:...}` reads each process's own clock; under torchrun the ranks' clocks
  differ by seconds across nodes, and each rank would name a dir of its own. This one is
  Hydra's `now` (cached per config, so a sweep's jobs share their sweep's value), except that
  under torchrun every rank reads rank 0's clock (`use_launch_time`).
- `${launch_record_dir:${resume}}`: where Hydra records this launch's config
  (hydra.output_subdir): a resume records its own beside the record of how the run was
  started, instead of overwriting it.
- `${swept_keys:}`, `${sweep_job_name:...}`: what a sweep varies, and a job's name after it
  (src/config/sweep.py).
- `${model_transforms:}`: what a dataset's `transform_from` defaults to: the model's own
  metadata, named as transform_from takes it: a torchvision model's name, `timm:<name>`,
  `hf:<directory>`; null for a model without (LeNet).
"""

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from src.config import sweep

_shared_launch_time: datetime | None = None  # rank 0's, under torchrun
# The model builders (conf/model/*.yaml's _target_, by module) whose names carry metadata,
# and how transform_from names each source.
TRANSFORM_SOURCES = {
    "src.models.torchvision_models": "",
    "src.models.timm_models": "timm:",
    "src.models.hf_models": "hf:",
}


def register() -> None:
    OmegaConf.register_new_resolver(
        "project_dir", lambda: str(Path(__file__).resolve().parents[2]), replace=True
    )
    OmegaConf.register_new_resolver(
        "launch_time",
        lambda pattern: _launch_time().strftime(pattern),
        use_cache=True,
        replace=True,
    )
    OmegaConf.register_new_resolver(
        "launch_record_dir",
        lambda resume: f".hydra/resume_{_launch_time():%Y-%m-%d_%H-%M-%S}" if resume else ".hydra",
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
    OmegaConf.register_new_resolver("model_transforms", _model_transforms, replace=True)


def _model_transforms(*, _root_) -> str | None:
    target = OmegaConf.select(_root_, "model._target_", default=None, throw_on_missing=False)
    name = OmegaConf.select(_root_, "model.name", default=None, throw_on_missing=False)
    source = TRANSFORM_SOURCES.get(str(target).rpartition(".")[0])
    return None if source is None or name is None else f"{source}{name}"


def use_launch_time(time: datetime) -> None:
    """From now on, `${launch_time:...}` reads `time` instead of this process's clock."""
    global _shared_launch_time
    _shared_launch_time = time


def _launch_time() -> datetime:
    return _shared_launch_time or datetime.now()
