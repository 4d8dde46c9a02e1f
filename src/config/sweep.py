"""What a sweep varies, and how its jobs are named after it.

A job of a sweep only sees its own overrides (`seed=1 optimizer=sgd ...`): which of them the
sweep varies is known in the launching process alone, where `hydra.overrides.task` still holds
the sweep syntax (`seed=0,1`) and `hydra.sweeper.params` the sweeps declared in config (the
basic sweeper's grid, optuna's search space). `${swept_keys:...}` (src/config/resolvers.py) is
resolved there first, by the `SweepCheck` callback below; Hydra copies the launching
config's resolver cache into every job's config (as it does for `${now:}`), so each job,
whatever process or machine runs it, reads the launching process's answer.

Neither that copy nor the basic sweeper's class path (`BASIC_SWEEPER`, a private module of
Hydra's) is Hydra's public API: tests/test_hydra_internals.py fails naming what changed if a
Hydra release changes either.
"""

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src import errors

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def swept_keys(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """The keys the sweep varies, in the order given: the sweeper's params first, then the
    command line, where a plain `key=value` fixes a key the params sweep (as both sweepers do)."""
    swept = {}
    for override in _parse(task_overrides, sweeper_params):
        swept[override.key_or_group] = override.is_sweep_override()  # keeps its first place
    return [key for key, is_swept in swept.items() if is_swept]


def repeated_values(task_overrides: list[str], sweeper_params: dict | None) -> list[str]:
    """The grid sweeps that list a value twice (`seed=0,0`): two jobs of one name and dir."""
    repeated = []
    for override in _parse(task_overrides, sweeper_params):
        if override.is_choice_sweep():
            values = list(override.sweep_string_iterator())
            if len(set(values)) < len(values):
                repeated.append(override.input_line)
    return repeated


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


def job_name(swept: list[str], job_overrides: list[str], job_num: int, sweeper: str) -> str:
    """`lr_mult=10,seed=1`: the swept keys (short forms) and this job's values, in the order
    given. A sweeper that picks values itself (optuna) may pick the same ones twice: its jobs'
    names start with their number, and long numbers are cut to 4 significant digits."""
    values = {o.key_or_group: o.get_value_element_as_str() for o in _parse(job_overrides, None)}
    numbered = sweeper != BASIC_SWEEPER
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


class SweepCheck(Callback):
    """Resolves `${swept_keys:...}` in the launching process, before any job is composed, and
    refuses a grid that lists a value twice, and (a single run too) a key given twice on the
    command line: one clear line, exit 2, before anything is made."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_given_twice(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_given_twice(config)
        _ = config.hydra.job.env_set.GROUPWISE_SWEPT_KEYS  # fills the cache the jobs copy
        if config.hydra.sweeper._target_ != BASIC_SWEEPER:
            return
        repeated = repeated_values(list(config.hydra.overrides.task), _params(config))
        if repeated:
            errors.exit_with(
                f"{repeated[0]}: the sweep lists a value twice, which would run the same job "
                "twice into one dir; give each value once"
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
