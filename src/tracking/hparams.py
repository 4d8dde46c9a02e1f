"""A job's hyperparameters for TensorBoard's HPARAMS tab: the overrides it was run with."""

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

HParamValue = bool | int | float | str


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
