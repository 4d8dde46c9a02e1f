"""The config card of TensorBoard's text tab: the command that reruns the run, then its config
with every interpolation resolved (`${project_dir:}/weights/...` as the path it became)."""

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def card(cfg: DictConfig, command: str | None) -> str:
    yaml = OmegaConf.to_yaml(resolved(cfg))
    head = f"```\n$ {command}\n```\n\n" if command else ""
    return f"{head}```yaml\n{yaml}```"


def resolved(node: DictConfig | ListConfig) -> dict | list:
    """`node` as plain data, each value resolved where it can be; a value that cannot resolve
    here (`${hydra:...}` read outside a Hydra job, a missing `???`) stays as written."""
    raw = OmegaConf.to_container(node, resolve=False)
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    out = {} if isinstance(node, DictConfig) else []
    for key in keys:
        try:
            value = node[key]
        except OmegaConfBaseException:
            value = raw[key]
        if isinstance(value, DictConfig | ListConfig):
            value = resolved(value)
        if isinstance(out, dict):
            out[key] = value
        else:
            out.append(value)
    return out
