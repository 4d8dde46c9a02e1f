"""The Optuna study behind a pruning sweep (`hydra/sweeper=pruning`), as the sweeper and its
jobs both reach it: through Optuna's own storage, never through each other.

The sweeper writes the launch record (`study.json`) at the sweep's root before any job starts:
where the study is (`storage`: a SQLite file beside the jobs by default, a database URL when
jobs run on many machines), its name, the sweep as launched (a second launch into the dir
continues the sweep only when it is the same sweep), whether it is a grid (jobs named by their
values) or a sampler's search (numbered), and the pruner's options. A job reads it from its
`hydra.sweep.dir`, finds its trial (the trial's number is the job's), reports its val/acc
every epoch and asks whether to stop (`JobTrial`). Optuna is imported only here and in the
pruner, once a pruning sweep runs: a plain run's start-up does not grow.
"""

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from src import errors

STUDY_FILE = "study.json"  # at the sweep's root: the launch record
DEFAULT_DB = "optuna.db"  # the default storage: a SQLite file at the sweep's root
NEEDS_OPTUNA = "hydra/sweeper=pruning needs optuna >= 4: "
INSTALL = 'pip install -e ".[optuna]" (hydra-optuna-sweeper, which pins optuna < 3, must go)'
OVERRIDES = "overrides"  # a trial's user attribute: the job's overrides


@dataclass
class StudyRecord:
    storage: str  # an Optuna storage URL
    study_name: str
    direction: str  # maximize | minimize
    spec: list[str]  # the sweep as launched: the sweeper's params, then the command line
    grid: bool  # every combination once (named by values), or a sampler's trials (numbered)
    pruner: dict = field(default_factory=dict)  # SameSeedPruner's options

    def write(self, sweep_dir: Path) -> None:
        (sweep_dir / STUDY_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def read_record(sweep_dir: str | Path) -> StudyRecord | None:
    """The launch record of the pruning sweep at `sweep_dir`; None for any other sweep."""
    path = Path(sweep_dir) / STUDY_FILE
    return StudyRecord(**json.loads(path.read_text())) if path.is_file() else None


def storage_url(storage: str | None, sweep_dir: Path) -> str:
    """`storage`, or the default: a SQLite file at the sweep's root (one machine's jobs)."""
    return storage or f"sqlite:///{(sweep_dir / DEFAULT_DB).resolve()}"


def require_optuna():
    """optuna, once a pruning sweep runs: refused in one line when missing, or older than 4
    (before 3.1 its SQLite storage fails beside SQLAlchemy 2; hydra-optuna-sweeper pins < 3)."""
    # Optuna's storage runs alembic (at import, and to make a new SQLite file's tables), whose
    # INFO lines Hydra's log would show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        import optuna
    except ImportError:
        errors.exit_with(NEEDS_OPTUNA + "it is not installed; " + INSTALL)
    if int(optuna.__version__.split(".")[0]) < 4:
        errors.exit_with(NEEDS_OPTUNA + f"this is optuna {optuna.__version__}; " + INSTALL)
    return optuna


def open_study(record: StudyRecord, sampler=None):
    """The study, made by the first process that asks (the sweeper), loaded by the rest."""
    optuna = require_optuna()
    from src.config.same_seed_pruner import SameSeedPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep's own lines say enough
    return optuna.create_study(
        storage=record.storage,
        study_name=record.study_name,
        direction=record.direction,
        sampler=sampler,
        pruner=SameSeedPruner(**record.pruner),
        load_if_exists=True,
    )


class PrunedJob(float):
    """A pruned job's result: its last val/acc to the sweeper, with the epoch it reached."""

    pruned_at: int

    def __new__(cls, value: float, pruned_at: int):
        pruned = super().__new__(cls, value)
        pruned.pruned_at = pruned_at
        return pruned

    def __reduce__(self):  # parallel launchers send results back pickled
        return PrunedJob, (float(self), self.pruned_at)


class JobTrial:
    """A job's trial in the study: `report` gives it the epoch's val/acc and says whether the
    pruner stops the job there; `pruned_at` is that epoch (None: it ran to the end)."""

    def __init__(self, record: StudyRecord, number: int):
        self.record, self.number = record, number
        self.pruned_at: int | None = None
        self._trial = None  # opened at the first report: a job that fails first never opens it

    def report(self, epoch: int, value: float) -> bool:
        if self._trial is None:
            import optuna

            study = open_study(self.record)
            # The trial's storage id: a FrozenTrial's `_trial_id` (private, stable since optuna
            # 2; tests/test_private_apis.py) is the one way from a trial's number to a Trial.
            frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == self.number)
            self._trial = optuna.trial.Trial(study, frozen._trial_id)
        if not math.isfinite(value):
            return False  # a NaN epoch is the NaN guard's to handle, not the pruner's
        self._trial.report(value, epoch)
        if self._trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


def job_trial(sweep_dir: str | Path, job: DictConfig) -> JobTrial | None:
    """The trial of the job (Hydra's `hydra.job` node) of the sweep at `sweep_dir`, when a
    pruning sweep runs it. Its number is read only then: a config composed outside a launch
    (tests) has none."""
    record = read_record(sweep_dir)
    return None if record is None else JobTrial(record, job.num)
