"""`python -m src.run --help`: what the command does, the config groups a user picks with their
options, every option's meaning, type and default read from the schema (src/config/schema.py,
where each is written once), the sweep syntax, and where the README says more. Printed before
Hydra starts, so it stays fast (no torch)."""

import types
from dataclasses import MISSING, fields
from pathlib import Path

from omegaconf import OmegaConf

from src.config import schema

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
# Config groups no user picks: the schemas the config files start from, Hydra's own.
INTERNAL_GROUPS = ("schema", "hydra")
# Sections whose keys are the constructor's arguments of their `_target_`, not a schema's.
OPEN_SECTIONS = {
    "model": "the model source's arguments, e.g. model.name=resnet50 (model=timm, model=hf)",
    "optimizer": "the torch.optim class's arguments, e.g. optimizer.lr=0.01",
    "param_groups": "param_groups.<name>.pattern='^fc3\\.' (a regex on parameter names) and "
    ".lr_mult=10; see README, Param groups",
}

PURPOSE = """\
Fine-tunes an image classifier from pretrained weights, with a learning rate per parameter
group. Every option is a key=value override of conf/config.yaml (Hydra's grammar); by default
it fine-tunes the LeNet on digits 5-9 from the shipped digits 0-4 weights, into
outputs/runs/<date>_<time>/ (hydra.run.dir=<dir> chooses another)."""

SWEEPS = """\
sweeps (-m): one run per combination of comma-separated values, e.g.
  python -m src.run -m seed=0,1,2 param_groups=fc3_boost param_groups.fc3.lr_mult=1,10
  each job in outputs/multirun/<date>_<time>/<swept values>/, with summary.md, summary.csv and
  sweep.png at the sweep's root; hparams_search=optuna_lr_mult -m searches instead of a grid."""

MORE = """\
more: README.md (Configuration, Param groups, Pretrained weights, After training, TensorBoard,
sweeps and launchers, When things go wrong); python -m src.run --cfg job prints the composed
config; dry_run=true builds everything and prints the tables without training."""


def usage() -> str:
    lines = ["python -m src.run [group=option ...] [key=value ...]", "", PURPOSE, ""]
    lines += ["config groups (group=option; * the default):", *_groups(), ""]
    lines += [
        "options (key=value: type, default; what it does); the defaults are the schema's, and",
        "an option's config file may set its own (--cfg job shows the composed values):",
    ]
    lines += _options("", schema.RunConfig)
    for section in ("trainer", "pretrained"):
        lines += _options(f"{section}.", schema.SCHEMAS[section])
    for group in ("dataset", "scheduler"):
        for name, choices in _schemas_of(group).items():
            options = _options(f"{group}.", schema.SCHEMAS[name], indent="    ")
            if options:
                lines += [f"  {group}.* with {group}={'|'.join(choices)}:", *options]
    lines += [f"  {section}.*: {text}" for section, text in OPEN_SECTIONS.items()]
    return "\n".join([*lines, "", SWEEPS, "", MORE])


def _groups() -> list[str]:
    defaults = {}
    for entry in OmegaConf.load(CONF_DIR / "config.yaml").defaults:
        if isinstance(entry, dict) or OmegaConf.is_dict(entry):
            defaults.update({str(k): v for k, v in entry.items()})
    lines = []
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir()):
        if group.name in INTERNAL_GROUPS:
            continue
        options = sorted(f.stem for f in group.glob("*.yaml"))
        shown = [f"{o}*" if o == defaults.get(group.name) else o for o in options]
        lines.append(f"  {group.name:<15} {', '.join(shown)}")
    return lines


def _schemas_of(group: str) -> dict[str, list[str]]:
    """The schema each option of `group` starts from (`/schema/<name>@_here_`) -> options."""
    found: dict[str, list[str]] = {}
    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        for entry in OmegaConf.load(path).get("defaults", []):
            name = str(entry).removeprefix("/schema/").partition("@")[0]
            if str(entry).startswith("/schema/") and name in schema.SCHEMAS:
                found.setdefault(name, []).append(path.stem)
    return found


def _options(prefix: str, schema_type: type, indent: str = "  ") -> list[str]:
    lines = []
    for f in fields(schema_type):
        if "help" not in f.metadata or f.name.startswith("_"):
            continue
        default = f.default_factory() if f.default is MISSING else f.default
        shown = "required" if default == "???" else f"default {_value(default)}"
        key = f"{prefix}{f.name}"
        lines.append(f"{indent}{key:<32} {_type(f.type)}, {shown}; {f.metadata['help']}")
    return lines


def _type(annotation) -> str:
    if isinstance(annotation, types.UnionType):
        return " or ".join("null" if a is type(None) else _type(a) for a in annotation.__args__)
    return (
        getattr(annotation, "__name__", str(annotation))
        if not hasattr(annotation, "__args__")
        else str(annotation)
    )


def _value(value) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )
