"""Every job of a sweep checked before the first one starts: a grid whose second job has a bad
value (`-m optimizer.lr=0.1,-1`) would otherwise train the first, then refuse the second.

`SweepJobsCheck`, a Hydra callback (conf/config.yaml, hydra.callbacks), composes each job's
config as the basic sweeper will (its overrides: the cartesian product of the sweeps, expanded
by the sweeper's own code) and runs the check pass (src/checks.py) on it: the model on the
meta device, no data read, nothing written. Every problem of every job is told at once, each
naming its job, then exit 2, before the sweep dir is made.

A sweeper that picks its values while the sweep runs (optuna's, from what earlier trials
scored) has no jobs to check up front: its jobs are checked as they start, as a single run is.
"""

from collections.abc import Callable
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from src import errors, stopping
from src.config import checks, hydra_internals, sweep
from src.config.hydra_errors import CONFIG_ERRORS, one_line
from src.errors import GroupwiseError


class SweepJobsCheck(Callback):
    """Refuses a sweep any of whose jobs the check pass refuses: one line per problem, each
    naming its job (`job #1 (optimizer.lr=-1): ...`, Hydra's numbers), exit 2."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.sweeper._target_ != sweep.BASIC_SWEEPER:
            return  # optuna's trials: values chosen as the sweep runs, each checked as it starts
        problems = jobs_problems(config)
        if problems:
            errors.exit_with(*problems)


def jobs_problems(config: DictConfig) -> list[str]:
    """The problems of every job of the basic sweeper's sweep that `config` (the launching
    process's, with its `hydra` node) starts, each line naming its job."""
    with stopping.deferred():  # torch's import: see src/stopping.py
        from src.checks import check_run

    loader = GlobalHydra.instance().config_loader()
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    lines = [f"{key}={value}" for key, value in params.items()]
    lines += list(config.hydra.overrides.task)
    jobs = hydra_internals.grid_jobs(
        OverridesParser.create(config_loader=loader).parse_overrides(lines)
    )
    swept = set(sweep.swept_keys(list(config.hydra.overrides.task), params))
    found = {}
    for num, job in enumerate(jobs):
        named = " ".join(o for o in job if o.lstrip("+~").partition("=")[0] in swept)
        found[f"job #{num} ({named or 'no swept keys'})"] = _job_problems(
            loader, config, job, check_run
        )
    # What every job gets wrong (a typo'd key fixed for all) is told once, as a run tells it.
    everywhere = [p for p in next(iter(found.values()), []) if all(p in f for f in found.values())]
    return everywhere + [
        f"{job}: {p}" for job, problems in found.items() for p in problems if p not in everywhere
    ]


def _job_problems(
    loader, config: DictConfig, job: list[str], check_run: Callable[[DictConfig], object]
) -> list[str]:
    """The problems of the job with overrides `job`, as its run would find them
    (`check_run`: the check pass, imported by the caller)."""
    try:
        job_config = loader.load_sweep_config(config, job)
    except CONFIG_ERRORS as err:  # `optimizer=sgd,nope`: a job whose config cannot be made
        return [one_line(err)]
    with open_dict(job_config):  # as the job sees it: Hydra's node is its own
        del job_config["hydra"]
    problems = checks.loose_booleans(job_config, job)
    try:
        check_run(job_config)
    except GroupwiseError as err:
        problems += err.problems
    return problems
