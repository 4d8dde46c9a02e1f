"""The layer-decay presets against timm's own `param_groups_layer_decay` (what
`create_optimizer_v2(layer_decay=0.75)` trains with), tensor by tensor: each tensor's lr
multiplier and whether it takes weight decay.

groupwise's side is a run's own path: the preset file, parse_specs, the timm model source's
roles, build_param_groups. timm's side is timm's function on the same model, with the model's
`no_weight_decay()` as timm's optimizer factory passes it.

The conventions differ in one place only, the final norm (`norm.weight`, `norm.bias` of a
ViT; `norm_pre` of a ConvNeXt built with `head_norm_first`): timm's group_matcher joins it to
the last block (0.75x), groupwise's presets leave it with the head (1x), as BEiT's and MAE's
fine-tuning scripts do. A group `{role: final_norm, lr_mult: 0.75}` takes timm's placement,
and then every tensor agrees. A ViT pooled by `fc_norm` has no final norm (its `norm` is an
Identity): its `fc_norm` sits with the head on both sides.
"""

import json

import pytest
import torch
from omegaconf import OmegaConf
from timm.optim import param_groups_layer_decay

from src.errors import GroupwiseError
from src.models.timm_models import TimmSource
from src.optim.built import build_param_groups
from src.optim.specs import accepted_keys, parse_specs
from src.runner import Runner
from tests.conftest import ROOT
from tests.model_families import built_on_meta

WEIGHT_DECAY = 0.05
TIMM_PLACEMENT = {"final_norm": {"role": "final_norm", "lr_mult": 0.75}}
# Small widths, real depths: the multipliers are a full model's.
VIT = {"embed_dim": 32, "num_heads": 2, "img_size": 32, "patch_size": 8}


def groupwise_multipliers(source: TimmSource, preset: str, extra: dict | None = None) -> dict:
    """name -> (lr multiplier, takes weight decay), as a run builds its optimizer groups."""
    config = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/param_groups" / f"{preset}.yaml"))
    specs = parse_specs({**config, **(extra or {})}, accepted_keys(torch.optim.AdamW))
    model = built_on_meta(source, num_classes=5)
    groups, _ = build_param_groups(model, specs, source.roles(model), 1.0, WEIGHT_DECAY, False)
    return model, {
        name: (g["lr_mult"], g["weight_decay"] > 0) for g in groups for name in g["param_names"]
    }


def timm_multipliers(model: torch.nn.Module) -> dict:
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups_layer_decay(
        model,
        weight_decay=WEIGHT_DECAY,
        layer_decay=0.75,
        no_weight_decay_list=model.no_weight_decay() if hasattr(model, "no_weight_decay") else (),
    )
    return {
        names[id(p)]: (g["lr_scale"], g["weight_decay"] > 0) for g in groups for p in g["params"]
    }


def differing(source: TimmSource, preset: str, extra: dict | None = None) -> list[str]:
    """The tensors whose multiplier or weight decay differ from timm's; all others agree."""
    model, ours = groupwise_multipliers(source, preset, extra)
    theirs = timm_multipliers(model)
    assert ours.keys() == theirs.keys() == {n for n, _ in model.named_parameters()}
    close = {n: ours[n][0] == pytest.approx(theirs[n][0], rel=1e-9) for n in ours}
    return sorted(n for n in ours if not close[n] or ours[n][1] != theirs[n][1])


@pytest.mark.parametrize("depth", [4, 12, 24])
def test_vit_layer_decay_agrees_with_timm_but_on_the_final_norm(depth):
    source = TimmSource("vit_tiny_patch16_224", depth=depth, **VIT)
    assert differing(source, "vit_layer_decay") == ["norm.bias", "norm.weight"]
    model, ours = groupwise_multipliers(source, "vit_layer_decay")
    assert ours["norm.weight"][0] == 1 and timm_multipliers(model)["norm.weight"][0] == 0.75
    assert ours["pos_embed"] == (pytest.approx(0.75 ** (depth + 1)), False)  # no number to edit


@pytest.mark.parametrize("depth", [4, 12, 24])
def test_vit_layer_decay_with_timms_final_norm_placement_agrees_on_every_tensor(depth):
    source = TimmSource("vit_tiny_patch16_224", depth=depth, **VIT)
    assert differing(source, "vit_layer_decay", TIMM_PLACEMENT) == []


def test_a_vit_pooled_by_fc_norm_agrees_on_every_tensor_and_has_no_final_norm():
    source = TimmSource("vit_tiny_patch16_224", depth=4, global_pool="avg", **VIT)
    assert differing(source, "vit_layer_decay") == []
    with pytest.raises(GroupwiseError, match=r"role=final_norm: .* names no final_norm"):
        differing(source, "vit_layer_decay", TIMM_PLACEMENT)


def test_timms_placement_is_one_override_on_the_command_line(make_cfg, tmp_path):
    override = "+param_groups.final_norm={role: final_norm, lr_mult: 0.75}"
    cfg = make_cfg(
        "model=timm", "model.name=test_vit", "pretrained=none", "param_groups=vit_layer_decay",
        override, "dry_run=true",
    )  # fmt: skip
    Runner(cfg, tmp_path).run()
    groups = json.loads((tmp_path / "param_groups.json").read_text())["groups"]
    last_block = max(
        (g for g in groups if g["name"].startswith("blocks.")), key=lambda g: int(g["name"][7:])
    )
    final_norm = next(g for g in groups if g["name"] == "final_norm")
    assert final_norm["lr_mult"] == last_block["lr_mult"] == 0.75


@pytest.mark.parametrize(
    "kwargs", [{}, {"depths": (3, 3, 9, 3)}, {"depths": (1, 1, 2, 1), "dims": (8, 8, 16, 16)}]
)
def test_convnext_block_layer_decay_agrees_with_timm_on_every_tensor(kwargs):
    source = TimmSource("convnext_atto", **kwargs)
    assert differing(source, "convnext_block_layer_decay") == []
    model, ours = groupwise_multipliers(source, "convnext_block_layer_decay")
    blocks = len(source.roles(model).fine_blocks and set(source.roles(model).fine_blocks.values()))
    assert blocks == sum(kwargs.get("depths", (2, 2, 6, 2)))
    assert ours["stem.0.weight"][0] == pytest.approx(0.75 ** (blocks + 1))


def test_a_convnext_with_its_norm_before_the_head_differs_on_that_norm_only():
    source = TimmSource("convnext_atto", head_norm_first=True)
    preset = "convnext_block_layer_decay"
    assert differing(source, preset) == ["norm_pre.bias", "norm_pre.weight"]
    assert differing(source, preset, TIMM_PLACEMENT) == []


def test_the_per_stage_convnext_preset_is_not_timms():
    # convnext_layer_decay decays by stage: the stage's blocks share one lr, unlike timm's.
    source = TimmSource("convnext_atto")
    different = differing(source, "convnext_layer_decay")
    assert "stages.0.blocks.0.conv_dw.weight" in different and len(different) > 100
