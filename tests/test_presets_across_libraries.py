"""The param-group presets on the real parameter names of timm and Hugging Face models: every
pattern matches (resolve refuses one that matches nothing), each layer id gets its multiplier,
in order; and a dry run of each preset on each family shows the groups."""

import json
import logging
import re

import pytest
import torch
from omegaconf import OmegaConf

from src.optim.resolve import resolve
from src.optim.specs import accepted_keys, parse_specs
from src.runner import Runner
from tests.conftest import ROOT
from tests.model_families import hf_config_dir, on_meta, roles_of

STAGES = {f"stages.{i}": 0.75 ** (3 - i) for i in range(4)}
VIT = {
    "default": 1,
    "embeddings": pytest.approx(0.75**13, rel=1e-5),  # one step below block 0 of 12
    **{f"blocks.{i}": pytest.approx(0.75 ** (12 - i)) for i in range(12)},
}


def by_block(n: int) -> dict:
    """convnext_block_layer_decay on n blocks: as timm's param_groups_layer_decay."""
    blocks = {f"blocks.{i}": pytest.approx(0.75 ** (n - i)) for i in range(n)}
    return {"default": 1, "stem": pytest.approx(0.75 ** (n + 1)), **blocks}


# family -> its layer-decay preset and the multipliers it gives, group by group
LAYER_DECAY = {
    "timm_vit": ("vit_layer_decay", VIT),
    "hf_vit": ("vit_layer_decay", VIT),
    "hf_dinov2": ("vit_layer_decay", VIT),
    "timm_convnext": ("convnext_layer_decay", {"default": 1, "stem": 0.75**4, **STAGES}),
    "hf_convnext": ("convnext_layer_decay", {"default": 1, "stem": 0.75**4, **STAGES}),
    "timm_convnext_blocks": ("convnext_block_layer_decay", by_block(18)),  # 3 + 3 + 9 + 3
    "hf_convnext_blocks": ("convnext_block_layer_decay", by_block(5)),  # 1 + 1 + 2 + 1
    "timm_resnet": ("resnet_layer_decay", {"default": 1, "stem": 0.75**4, **STAGES}),
    "hf_resnet": ("resnet_layer_decay", {"default": 1, "stem": 0.75**4, **STAGES}),
}  # fmt: skip
# What each family's head is called: the parameters head_boost and backbone_frozen train.
HEADS = {
    "timm_vit": ["head.weight", "head.bias"],
    "timm_convnext": ["head.norm.weight", "head.norm.bias", "head.fc.weight", "head.fc.bias"],
    "timm_resnet": ["fc.weight", "fc.bias"],
    "hf_vit": ["classifier.weight", "classifier.bias"],
    "hf_dinov2": ["classifier.weight", "classifier.bias"],
    "hf_convnext": ["classifier.weight", "classifier.bias"],
    "hf_resnet": ["classifier.1.weight", "classifier.1.bias"],
}


def preset(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "param_groups" / f"{name}.yaml"))


def groups_on(family: str, name: str):
    specs = parse_specs(preset(name), accepted_keys(torch.optim.AdamW))
    model = on_meta(family)
    return resolve(model, specs, roles_of(family, model)).groups


@pytest.mark.parametrize("family", list(LAYER_DECAY))
def test_layer_decay_presets_give_each_layer_of_each_library_its_multiplier(family):
    name, expected = LAYER_DECAY[family]
    groups = groups_on(family.removesuffix("_blocks"), name)
    assert {g.name: g.lr_mult for g in groups} == expected
    if family.endswith("_blocks"):  # a stage spans blocks; tests/test_layer_decay_vs_timm.py
        return  # compares them tensor by tensor with timm's
    layers = [g for g in groups if g.name.split(".")[-1].isdigit()]
    ids = [int(g.name.split(".")[-1]) for g in layers]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    # each layer group holds one layer's parameters only, the layers in the model's order
    blocks = [
        {re.match(r"\D*\d+", n.removeprefix("dinov2.")).group() for n in g.param_names}
        for g in layers
    ]
    assert all(len(b) == 1 for b in blocks), blocks
    numbers = [int(re.search(r"\d+$", b.pop()).group()) for b in blocks]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


@pytest.mark.parametrize("family", list(HEADS))
def test_head_presets_find_the_classifier_of_each_library(family):
    boosted = {g.name: g for g in groups_on(family, "head_boost")}
    assert boosted["head"].param_names == HEADS[family] and boosted["head"].lr_mult == 10
    frozen = {g.name: g for g in groups_on(family, "backbone_frozen")}
    assert frozen["head"].param_names == HEADS[family]
    assert frozen["default"].trains_from_epoch is None  # the rest never trains


@pytest.mark.parametrize(
    ("family", "presets"),
    [
        ("timm_vit", ["head_boost", "backbone_frozen", "vit_layer_decay"]),
        ("timm_convnext", ["convnext_layer_decay", "convnext_block_layer_decay"]),
        ("timm_resnet", ["resnet_layer_decay"]),
        ("hf_vit", ["vit_layer_decay"]),
        ("hf_dinov2", ["vit_layer_decay"]),
        ("hf_convnext", ["convnext_layer_decay", "convnext_block_layer_decay"]),
    ],
)
def test_a_dry_run_of_each_preset_on_each_family_shows_its_groups(
    make_cfg, tmp_path, caplog, family, presets
):
    caplog.set_level(logging.INFO)
    if family.startswith("hf_"):
        model = ["model=hf", f"model.name={hf_config_dir(tmp_path / 'model', family)}"]
    else:  # the tiny timm models of the family: test_vit, test_convnext, test_resnet
        model = ["model=timm", f"model.name=test_{family.removeprefix('timm_')}"]
    for name in presets:
        caplog.clear()
        cfg = make_cfg(*model, "pretrained=none", f"param_groups={name}", "dry_run=true")
        Runner(cfg, tmp_path / name).run()
        info = json.loads((tmp_path / name / "param_groups.json").read_text())
        groups = [g["name"] for g in info["groups"]]
        assert "group " in caplog.text and all(f"\n{g} " in caplog.text for g in groups)
        if name.endswith("layer_decay"):
            layers = [g for g in groups if g.split(".")[-1].isdigit()]
            assert len(layers) >= 2 and layers == sorted(layers, key=lambda g: int(g[7:]))
        else:
            assert groups == ["default", "head"]
