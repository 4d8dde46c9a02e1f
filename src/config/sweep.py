"""What a sweep varies, and how its jobs are named after it.

A job of a sweep only sees its own overrides (`seed=1 optimizer=sgd ...`): which of them the
sweep varies is known in the launching process alone, where `hydra.overrides.task` still holds
the sweep syntax (`seed=0,1`) and `hydra.sweeper.params` the sweeps declared in config (the
basic sweeper's grid, optuna's search space). There, before any job starts, the `SweptKeys`
callback below writes the answer at the sweep's root (`swept_keys.json`), where every job,
whatever process or machine runs it (the launcher's own, joblib workers, submitit's), reads
it from its `hydra.sweep.dir`: its dir's name (`${sweep_job_name:...}`), its HPARAMS columns
and its row of the sweep summary. Hydra's own record of the launch there (`multirun.yaml`)
would do, but optuna's sweeper does not write one.

The basic sweeper's class path (`BASIC_SWEEPER`, a private module of Hydra's) is not Hydra's
public API: tests/test_hydra_internals.py fails naming what changed if a Hydra release moves it.
"""

import json
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src import errors
from src.config import study

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# hydra/sweeper=pruning (src/config/pruning_sweeper.py): a Hydra plugin must live in the
# hydra_plugins package, so the class Hydra finds is a name for ours there.
PRUNING_SWEEPER = "hydra_plugins.groupwise_sweeper.pruning.PruningSweeper"
SWEPT_KEYS_FILE = "swept_keys.json"  # at the sweep's root


def swept_keys(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """The keys the sweep varies, in the order given: the sweeper's params first, then the
    command line, where a plain `key=value` fixes a key the params sweep (as both sweepers do)."""
    swept = {}
    for override in _parse(task_overrides, sweeper_params):
        swept[override.key_or_group] = override.is_sweep_override()  # keeps its first place
    return [key for key, is_swept in swept.items() if is_swept]


def repeated_values(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """The grid sweeps that list a value twice (`seed=0,0`, or `lr_mult=10,10.0,1e1`, one
    number written three ways): the same job run twice."""
    repeated = []
    for override in _parse(task_overrides, sweeper_params):
        if override.is_choice_sweep():
            values = [_same_when_equal(value) for value in override.sweep_iterator()]
            if len(set(values)) < len(values):
                repeated.append(override.input_line)
    return repeated


def _same_when_equal(value: Any) -> str:
    """A value as it compares: numbers by what they are (10 == 10.0 == 1e1), the rest as
    written (`sgd`, `[5,6]`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


def given_twice(task_overrides: list[str]) -> list[str]:
    """Keys the command line sets more than once (`optimizer=sgd ... optimizer=adamw`): Hydra
    would apply the last without a word."""
    seen: dict[str, str] = {}
    twice = []
    for override in OverridesParser.create().parse_overrides(task_overrides):
        key = override.key_or_group
        if key in seen and key not in {k for k, _ in twice}:
            twice.append((key, f"{seen[key]} ... {override.input_line}"))
        seen.setdefault(key, override.input_line)
    return [f"{key} is given twice ({lines}); give it once" for key, lines in twice]


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's shortest dotted suffix that no other key ends with:
    `param_groups.fc3.lr_mult` -> `lr_mult`, but `fc3.lr_mult` beside `default.lr_mult`."""
    short = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(o != key and (o == suffix or o.endswith("." + suffix)) for o in keys):
                break
        short[key] = suffix
    return short


def launched_as(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """The sweep as launched: the sweeper's params, then the command line."""
    return [f"{key}={value}" for key, value in (sweeper_params or {}).items()] + task_overrides


def numbered(sweep_dir: str | Path, sweeper: str) -> bool:
    """Whether the sweep's jobs are named with their numbers: a sampler picks their values
    and may pick the same ones twice; a grid (the basic sweeper's, the pruning sweeper's
    without a search) runs each once."""
    if sweeper == BASIC_SWEEPER:
        return False
    record = study.read_record(sweep_dir)
    return record is None or not record.grid


def job_name(swept: list[str], job_overrides: list[str], job_num: int, numbered: bool) -> str:
    """`lr_mult=10,seed=1`: the swept keys (short forms) and this job's values, in the order
    given. A sweeper that picks values itself (optuna) may pick the same ones twice: its jobs'
    names start with their number, and long numbers are cut to 4 significant digits."""
    values = {o.key_or_group: o.get_value_element_as_str() for o in _parse(job_overrides, None)}
    pairs = [
        f"{short}={_short_number(values[key]) if numbered else values[key]}"
        for key, short in short_keys(swept).items()
        if key in values
    ]
    if not pairs:
        return f"job{job_num}"
    # A value holding a path must not make a subdirectory.
    name = ",".join(pairs).replace("/", "-")
    return f"job{job_num},{name}" if numbered else name


def recorded_swept_keys(sweep_dir: str | Path) -> list[str]:
    """The keys the sweep at `sweep_dir` varies, as `SweptKeys` wrote them when it started."""
    path = Path(sweep_dir) / SWEPT_KEYS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise errors.GroupwiseError(
            f"{path}: not found; the sweep's `swept_keys` callback (conf/config.yaml, "
            "hydra.callbacks) writes it before any job starts"
        ) from None


class SweptKeys(Callback):
    """Writes the keys the sweep varies at its root, for its jobs to read
    (`recorded_swept_keys`): after the checks of the sweep and of its dir, before any job."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        keys = swept_keys(list(config.hydra.overrides.task), _params(config))
        path = Path(config.hydra.sweep.dir) / SWEPT_KEYS_FILE
        path.write_text(json.dumps(keys) + "\n", encoding="utf-8")


class SweepCheck(Callback):
    """Refuses a grid that lists a value twice, a sweep into a dir that holds another, and (a
    single run too) a key given twice on the command line: one clear line, exit 2, before
    anything is made."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_given_twice(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_given_twice(config)
        _exit_if_used(config)
        if config.hydra.sweeper._target_ not in (BASIC_SWEEPER, PRUNING_SWEEPER):
            return
        repeated = repeated_values(list(config.hydra.overrides.task), _params(config))
        if repeated:
            errors.exit_with(
                f"{repeated[0]}: the sweep lists a value twice, which would run the same job "
                "twice into one dir; give each value once"
            )


def _exit_if_used(config: DictConfig) -> None:
    """A sweep dir holds one sweep: its files (settings.csv, summary.md, ...) are written
    from every job dir under it, so a second sweep's jobs would be mixed into the first's.
    The same pruning sweep launched again into its dir continues it (its study says what is
    left to run)."""
    sweep_dir = Path(config.hydra.sweep.dir)
    record = study.read_record(sweep_dir)
    launched = launched_as(list(config.hydra.overrides.task), _params(config))
    if (
        record is not None
        and record.spec == launched
        and config.hydra.sweeper._target_ == PRUNING_SWEEPER
    ):
        return
    # A launch refused before any job started (a typo in a key) leaves swept_keys.json only.
    started = sweep_dir.is_dir() and any(child.is_dir() for child in sweep_dir.iterdir())
    if (sweep_dir / SWEPT_KEYS_FILE).exists() and started:
        errors.exit_with(
            f"hydra.sweep.dir={sweep_dir}: holds another sweep already ({SWEPT_KEYS_FILE}), "
            "whose answer would mix with this one's; give a new dir, or leave "
            "hydra.sweep.dir out for a timestamped one"
        )


def _exit_if_given_twice(config: DictConfig) -> None:
    twice = given_twice(list(config.hydra.overrides.task))
    if twice:
        errors.exit_with(twice[0])


def _params(root: DictConfig) -> dict | None:
    return OmegaConf.select(root, "hydra.sweeper.params")


def _parse(overrides: list[str], params: dict | None):
    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(overrides)
    return OverridesParser.create().parse_overrides(lines)


def _short_number(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() or len(value) <= 6 else f"{number:.4g}"
