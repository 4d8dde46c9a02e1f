"""Every config file composes, and every `_target_` in it names something that exists: a stale
path after a move fails here, not in a user's run. What is cheap to build is built."""

from pathlib import Path

import pytest
import torch
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.checks import check_run
from src.config.arguments import build
from tests.conftest import ROOT
from tests.model_families import hf_config_dir

CONF = ROOT / "conf"
# Config groups selected as `group=option`; fewshot/ and finetune/ files are chosen through
# experiment/ (fewshot_digits, adapter_digits).
GROUPS = [
    "model",
    "dataset",
    "optimizer",
    "scheduler",
    "param_groups",
    "pretrained",
    "trainer",
    "adapter",
    "experiment",
    "hparams_search",
    "hydra/launcher",
    "hydra/sweeper",
]
# What a group's option needs beside it to compose into a config a run accepts.
NEEDS = {
    "image_folder": ["dataset.root={tmp}"],
    "model": ["pretrained=none"],
    "timm": ["pretrained=none", "model.name=resnet18"],  # the name is required: no default
    "hf": ["pretrained=none", "model.name={hf_dir}"],  # a save_pretrained directory
    # The recipes name the model (timm's) and the images.
    "vit_finetune": ["model.name=vit_tiny_patch16_224", "dataset.root={tmp}"],
    "convnet_finetune": ["model.name=convnext_tiny", "dataset.root={tmp}"],
    # Layer-decay presets name the roles of the models they are written for (checked on them).
    "resnet_layer_decay": ["model=resnet18", "pretrained=none"],
    "convnext_layer_decay": ["model=timm", "model.name=convnext_tiny", "pretrained=none"],
    "convnext_block_layer_decay": ["model=timm", "model.name=convnext_tiny", "pretrained=none"],
    "vit_layer_decay": ["model=vit_b_16", "pretrained=none"],
    "lora_plus": ["adapter=lora"],  # its patterns are on adapter tensors
    "adapter_digits": ["pretrained.path={tmp}/source_vit.pt"],  # the source ViT's checkpoint
}


def options() -> list[tuple[str, str]]:
    return [
        (group, path.stem) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))
    ]


def targets(node, where: str = "") -> list[tuple[str, str]]:
    """(dotted key, _target_) of every instantiable node."""
    found = []
    if isinstance(node, DictConfig):
        for key in node:
            value = node._get_node(key)
            if key == "_target_":
                found.append((where, str(value)))
            elif isinstance(value, DictConfig | ListConfig) and not value._is_none():
                found += targets(value, f"{where}.{key}".lstrip("."))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            found += targets(item, f"{where}[{i}]")
    return found


def test_every_config_file_is_selected_here():
    files = {p.relative_to(CONF) for p in CONF.rglob("*.yaml") if p.parent != CONF}
    chosen = {Path(group) / f"{name}.yaml" for group, name in options()}
    by_experiments = {
        p.relative_to(CONF)
        for group in ("fewshot", "finetune")
        for p in (CONF / group).glob("*.yaml")
    }
    assert files - by_experiments == chosen


@pytest.mark.parametrize(("group", "name"), options(), ids=lambda x: x)
def test_each_config_composes_and_every_target_exists(make_cfg, tmp_path, group, name):
    hf_dir = hf_config_dir(tmp_path / "vit", "hf_vit") if name == "hf" else None
    needs = [o.format(hf_dir=hf_dir, tmp=tmp_path) for o in NEEDS.get(name, NEEDS.get(group, []))]
    cfg = make_cfg(f"{group}={name}", *needs, with_hydra=True)
    found = targets(cfg)
    assert found, "every config has at least the sweep summary callback to instantiate"
    for key, target in found:
        assert get_object(target) is not None, f"{key}._target_={target}"
    if group in ("hydra/launcher", "hydra/sweeper", "hparams_search"):
        return
    check_run(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))


@pytest.mark.parametrize("name", [p.stem for p in sorted((CONF / "scheduler").glob("*.yaml"))])
def test_each_optimizer_and_scheduler_config_builds(make_cfg, name):
    for optimizer in sorted((CONF / "optimizer").glob("*.yaml")):
        cfg = make_cfg(f"optimizer={optimizer.stem}", f"scheduler={name}")
        params = [{"params": [torch.zeros(2, requires_grad=True)], "trains_from_epoch": 0}]
        built = build(cfg.optimizer, "optimizer", params=params)
        schedule = build(
            cfg.scheduler, "scheduler", optimizer=built, steps_per_epoch=3, max_epochs=20
        )
        assert schedule.get_last_lr()[0] <= cfg.optimizer.lr


def test_config_files_hold_only_what_differs_from_their_schema():
    """Each default is written once, in the schema: a typed config file that repeats one would
    drift from it (the digits' test_fraction once read 0.2 in the YAML, 0.0 in the builder)."""
    import dataclasses

    from src.config.schema import SCHEMAS

    repeated = []
    for path in sorted(CONF.rglob("*.yaml")):
        raw = OmegaConf.load(path)
        schemas = [
            item.partition("/schema/")[2].partition("@")[0]
            for item in raw.get("defaults", [])
            if isinstance(item, str) and item.startswith("/schema/")
        ]
        for name in schemas:
            defaults = {
                f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
                for f in dataclasses.fields(SCHEMAS[name])
            }  # fmt: skip
            repeated += [
                f"{path.relative_to(CONF)}: {key}"
                for key in raw
                if key in defaults and OmegaConf.to_container(raw)[key] == defaults[key]
            ]
    assert not repeated, f"these repeat their schema's default; delete them: {repeated}"
