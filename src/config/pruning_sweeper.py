"""PruningSweeper (`hydra/sweeper=pruning`): a sweep's jobs as the trials of an Optuna study,
each stopped early when it trails the jobs of its own seed.

Hydra's basic sweeper gives every setting its whole budget, and Hydra's Optuna sweeper
(hydra-optuna-sweeper) never prunes and pins optuna < 3. This one launches the jobs through
the configured launcher (the joblib launcher's parallel workers too), a grid in one launch
and a search in batches of `n_jobs` (the sampler learns from one batch for the next), one
trial per job, and tells the study how each ended: completed with its val/acc of best.pt,
pruned (the job reported every epoch and stopped when `SameSeedPruner` said so: see
src/config/study.py for the job's side) or failed. A grid (`-m` lists, `params`) runs every
combination once; an interval (`tag(log, interval(1e-4, 1e-1))`) or `n_trials` makes a
sampler's search (TPE), `n_trials` trials in all.

The study lives in Optuna's storage, so a sweep killed or stopped can be continued: the same
command into the same `hydra.sweep.dir` marks the trials the kill left running as failed,
skips what completed or was pruned, and runs the rest (a killed job that had saved a
checkpoint resumes from it). One sweeper process at a time per study.
"""

import itertools
import json
import math
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

from src import errors
from src.config import sweep
from src.config.study import (
    PrunedJob,
    StudyRecord,
    open_study,
    read_record,
    require_optuna,
    storage_url,
)  # fmt: skip

OVERRIDES = "overrides"  # a trial's user attribute: its job's overrides, as a grid point
JOB_FILE = "job.json"  # a job's row, written as it ends (src/tracking/sweep_summary.py)


class PruningSweeper(Sweeper):
    def __init__(
        self,
        storage: str | None = None,
        study_name: str = "sweep",
        direction: str = "maximize",
        n_trials: int | None = None,
        n_jobs: int | None = None,
        sampler_seed: int | None = 0,
        pruner: dict | None = None,
        params: dict | None = None,
    ):
        self.storage, self.study_name, self.direction = storage, study_name, direction
        self.n_trials, self.n_jobs, self.sampler_seed = n_trials, n_jobs, sampler_seed
        self.pruner = dict(pruner or {})
        self.params = dict(params or {})
        self.grid = True  # set by `sweep`: a grid, or a sampler's search

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        spec = sweep.launched_as(list(arguments), self.params)
        parsed = OverridesParser.create().parse_overrides(spec)
        grid = self.n_trials is None and all(
            o.is_discrete_sweep() or not o.is_sweep_override() for o in parsed
        )
        if not grid and self.n_trials is None:
            errors.exit_with(
                "hydra.sweeper.n_trials is not set: a search over an interval needs the number "
                "of trials to run; set hydra.sweeper.n_trials=<n>"
            )
        record = StudyRecord(
            storage_url(self.storage, sweep_dir), self.study_name, self.direction, spec, grid,
            self.pruner,
        )  # fmt: skip
        optuna = require_optuna()  # before anything is written
        previous = read_record(sweep_dir)
        record.write(sweep_dir)
        study = open_study(record)
        if not grid:
            # Seeded past the trials the study holds: a continued search seeded as it started
            # would pick the same values again.
            seed = None if self.sampler_seed is None else self.sampler_seed + len(study.trials)
            study = open_study(record, optuna.samplers.TPESampler(seed=seed))
        self.grid = grid
        if previous is not None:
            self._settle_the_killed(study)
        if grid:
            self._grid(study, parsed)
        else:
            self._search(study, parsed)

    def _grid(self, study, parsed) -> None:
        """Every combination once, in the order given; those the study holds as completed or
        pruned (a continued sweep) are not run again."""
        from optuna.trial import TrialState

        axes = [
            [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
            if o.is_sweep_override()
            else [o.input_line]
            for o in parsed
        ]
        ended = (TrialState.COMPLETE, TrialState.PRUNED)
        done = {tuple(t.user_attrs.get(OVERRIDES, ())) for t in study.get_trials(states=ended)}
        todo = [list(point) for point in itertools.product(*axes) if point not in done]
        # By default one launch: the launcher starts each job as a worker frees up, and a job
        # sees, through the storage, every epoch the jobs before it reported; batches would
        # leave a worker idle beside each job that runs longer than its batch-mate.
        size = self.n_jobs or max(len(todo), 1)
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            self._launch(study, [study.ask() for _ in batch], batch)

    def _search(self, study, parsed) -> None:
        """`n_trials` trials in all (those a continued sweep completed or pruned count), the
        sampler picking each interval's and each list's value."""
        from optuna.trial import TrialState

        ended = (TrialState.COMPLETE, TrialState.PRUNED)
        remaining = self.n_trials - len(study.get_trials(deepcopy=False, states=ended))
        while remaining > 0:
            # The sampler picks from the trials told so far: a batch at a time.
            trials = [study.ask() for _ in range(min(self.n_jobs or 1, remaining))]
            self._launch(study, trials, [_suggested(trial, parsed) for trial in trials])
            remaining -= len(trials)

    def _launch(self, study, trials: list, batch: list[list[str]]) -> None:
        """One batch: each trial's job numbered as the trial (its way to it), then each ending
        told to the study."""
        from optuna.trial import TrialState

        from src.config.same_seed_pruner import REPLICATE

        keys = list(
            OmegaConf.select(
                self.config, "hydra.callbacks.sweep_summary.replicate_keys", default=["seed"]
            )
        )
        for trial, overrides in zip(trials, batch, strict=True):
            trial.set_user_attr(OVERRIDES, overrides)
            trial.set_user_attr(REPLICATE, [o for o in overrides if _key(o) in keys])
        launched = [
            self._resumed_if_killed(o, t.number) for o, t in zip(batch, trials, strict=True)
        ]
        returns = self.launcher.launch(launched, initial_job_idx=trials[0].number)
        for trial, ended in zip(trials, returns, strict=True):
            value = ended.return_value if ended.status == JobStatus.COMPLETED else math.nan
            if isinstance(value, PrunedJob):
                study.tell(trial, state=TrialState.PRUNED)
            elif value is None or not math.isfinite(float(value)):
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, float(value))

    def _job_dir(self, overrides: list[str], number: int) -> Path:
        """Where the job of a trial runs: as `${sweep_job_name:...}` names it."""
        sweep_dir = Path(self.config.hydra.sweep.dir)
        keys = sweep.recorded_swept_keys(sweep_dir)
        return sweep_dir / sweep.job_name(keys, overrides, number, not self.grid)

    def _resumed_if_killed(self, overrides: list[str], number: int) -> list[str]:
        """A grid job killed mid-training (its dir is named by its values, so the continued
        sweep finds it) resumes from its last checkpoint rather than being refused."""
        job_dir = self._job_dir(overrides, number)
        mid_way = (job_dir / "checkpoints" / "last.pt").is_file()
        finished = (job_dir / "metrics.json").exists()
        return [*overrides, "resume=true"] if mid_way and not finished else overrides

    def _settle_the_killed(self, study) -> None:
        """Trials a killed launch left running: a job that ended before the kill (its batch
        was still running) is told as its job.json says; any other failed, so that its grid
        point is run again and no pruner waits on it."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            job_dir = self._job_dir(trial.user_attrs.get(OVERRIDES, []), trial.number)
            ended = _read_json(job_dir / JOB_FILE)
            if ended.get("job") != trial.number or ended.get("status") == "failed":
                study.tell(trial.number, state=TrialState.FAIL)
            elif ended["status"] == "pruned":
                study.tell(trial.number, state=TrialState.PRUNED)
            else:
                metrics = _read_json(job_dir / "metrics.json")
                best = (metrics.get("best") or {}).get("val/acc")
                study.tell(trial.number, best if best is not None else metrics["val/acc"])


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _suggested(trial, parsed) -> list[str]:
    """A job's overrides, the sampler's pick for each swept key."""
    overrides = []
    for o in parsed:
        key = o.get_key_element()
        if not o.is_sweep_override():
            overrides.append(o.input_line)
        elif o.is_discrete_sweep():
            overrides.append(
                f"{key}={trial.suggest_categorical(key, list(o.sweep_string_iterator()))}"
            )
        else:
            interval = o.value()
            log = "log" in interval.tags
            if isinstance(interval.start, int) and isinstance(interval.end, int):
                value = trial.suggest_int(key, interval.start, interval.end, log=log)
            else:
                value = trial.suggest_float(key, interval.start, interval.end, log=log)
            overrides.append(f"{key}={value}")
    return overrides


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")
