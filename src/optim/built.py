"""A model's optimizer param groups, built once from the checked group specs and the model
source's roles, with their explanation for the reports (which describes these groups)."""

from torch import nn

from src.models.contract import ParameterRoles
from src.optim import explain, param_groups, resolve
from src.optim.param_groups import ParamGroup
from src.optim.specs import GroupSpec


def build_param_groups(
    model: nn.Module,
    specs: list[GroupSpec],
    roles: ParameterRoles,
    base_lr: float,
    weight_decay: float,
    weight_decay_1d: bool,
) -> tuple[list[ParamGroup], dict]:
    """The optimizer's param groups, and `param_groups.json`'s content."""
    resolution = resolve.resolve(model, specs, roles)
    groups = param_groups.optimizer_groups(
        resolution.groups, base_lr, weight_decay, weight_decay_1d, roles.no_weight_decay
    )
    return groups, explain.explain(resolution, groups, base_lr, weight_decay, weight_decay_1d)
