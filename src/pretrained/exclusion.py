"""`pretrained.exclude` by role: an item that is exactly a role's name (`head`, `embeddings`,
`stem`, `position_embeddings`, `blocks`, `final_norm`) keeps out the tensors the model source
names in that role, so a preset says `exclude: [head]` whatever the head is called. A role
takes its parameters and the other state_dict entries (buffers: a BatchNorm's running
statistics) of the modules that hold them. The other items are regexes (src/pretrained/keys.py).
"""

from torch import nn

from src.models.contract import ParameterRoles
from src.pretrained.keys import KeyRules


def role_problems(rules: KeyRules, roles: ParameterRoles) -> list[str]:
    """One line per excluded role that the model source cannot name: a check pass calls this
    before anything is built (the roles of a meta-device model serve)."""
    return [
        f"pretrained.exclude=[{role}]: {roles.cannot_name(role)}; exclude its keys by a regex "
        rf"instead, e.g. pretrained.exclude=['^fc\.'] (the keys that start with 'fc.')"
        for role in rules.exclude_roles
        if getattr(roles, role) is None
    ]


def keys_by_role(model: nn.Module, roles: ParameterRoles, excluded: tuple[str, ...]) -> dict:
    """Each model key that an excluded role takes -> that role (the first of `excluded` that
    takes it); every role of `excluded` must be one the source names (`role_problems`)."""
    state = model.state_dict(keep_vars=True)
    parameters = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    taken = {}
    for role in excluded:
        named = set(getattr(roles, role))
        owners = {name.rpartition(".")[0] for name in named}
        buffers = {k for k in state if k not in parameters and k.rpartition(".")[0] in owners}
        for key in state:
            if key in named or key in buffers:
                taken.setdefault(key, role)
    return taken
