"""A run's hyperparameters for TensorBoard's HPARAMS tab: in a sweep, the keys it varies and
this job's values of them; in a single run, its overrides."""

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

HParamValue = bool | int | float | str


@dataclass
class HParams:
    values: dict[str, HParamValue] = field(default_factory=dict)  # this run's HPARAMS row
    swept: list[str] = field(default_factory=list)  # the columns its sweep varies, in order
    # Values a sweeper sampled from a range (optuna) rather than listed (a grid): numbers on a
    # continuous axis, where a grid's few values are each a box of their own.
    sampled: bool = False
    # Its row's name (the Trial ID), when not its run's: see `trial_name`.
    trial: str = ""


def shown(value: HParamValue) -> str:
    """A value as the job's name writes it: 100, 0.001, 1e-05, fc3_boost."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_name(hparams: HParams, run_dir: Path) -> str:
    """A sweep job's Trial ID: its values first (`100, 1 · 2026-12-04_17-30-00`), which the
    column shows before it cuts the name, then its sweep's dir, which keeps the jobs of two
    sweeps apart (one name would make them one row). A sampled sweep's values may repeat:
    its job's dir name instead."""
    values = ", ".join(shown(hparams.values[k]) for k in hparams.swept if k in hparams.values)
    first = run_dir.name if hparams.sampled or not values else values
    return f"{first} · {run_dir.parent.name}"


def for_run(
    overrides: list[str],
    cfg: DictConfig,
    exclude_keys: list[str],
    swept: list[str],
    sampled: bool = False,
) -> HParams:
    """A sweep job's swept values only: its fixed overrides are the same in every row, and
    would crowd out the columns that tell the rows apart (they are in the text tab and the
    sweep summary). A single run (nothing swept) shows all its overrides."""
    values = from_overrides(overrides, cfg, exclude_keys)
    if swept:
        values = {key: values[key] for key in swept if key in values}
    return HParams(values, swept, sampled)


def from_overrides(
    overrides: list[str], cfg: DictConfig, exclude_keys: list[str]
) -> dict[str, HParamValue]:
    """`key=value` for each of the job's overrides (Hydra keeps its own `hydra.*` apart), but
    `exclude_keys`: those that say where or how to run, not what (resume, dry_run).

    A value is read back from the composed config, so `optimizer.lr=1e-3` is the number 0.001
    and TensorBoard can plot it; a config-group choice (`param_groups=fc3_boost`) stays its name.
    """
    values = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if override.is_delete() or key in exclude_keys:
            continue
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if not isinstance(value, HParamValue):  # a group choice or a list
            value = override.get_value_element_as_str()
        values[key] = value
    return values
