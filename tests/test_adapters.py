"""Adapters (issue 28): targets by regex on module names, the wrapped model's tensors as the
param groups see them, LoRA+ equal to peft's own optimizer, and the one-line refusals."""

import json

import pytest
import torch
import yaml
from peft import LoraConfig, get_peft_model
from peft.optimizers import create_loraplus_optimizer

from src.adapters import peft_files
from src.adapters.targets import adapter_spec
from src.adapters.wrap import TrainableView
from src.errors import GroupwiseError
from src.models.contract import generic_roles
from src.models.lenet import LeNetSource
from src.models.torchvision_models import TorchvisionSource
from src.optim.built import build_param_groups
from src.optim.resolve import resolve
from src.optim.specs import parse_specs
from tests.adapter_models import LORA, plain_linear_stack, small_vit, wrapped
from tests.conftest import ROOT

LENET_MODULES = [n for n, _ in LeNetSource().build(1, 5).named_modules()]
LORA_PLUS = yaml.safe_load((ROOT / "conf/param_groups/lora_plus.yaml").read_text())


def problems(source, **adapter) -> list[str]:
    with torch.device("meta"):
        model = source.build(3, 5)
    with pytest.raises(GroupwiseError) as err:
        adapter_spec({**LORA, **adapter}, model, source.roles(model))
    return err.value.problems


def lrs(optimizer) -> dict[int, float]:
    return {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}


def test_by_default_every_linear_and_conv_is_adapted_and_the_head_trains_fully():
    _, view, _, spec = wrapped(LeNetSource())
    assert spec.targets == ("conv1", "conv2", "fc1", "fc2") and spec.train_fully == ("fc3",)
    names = [n for n, _ in view.names]
    # What trains, under names a user writes: no peft prefixes, no frozen base weights.
    assert names == [
        *(f"{m}.lora_{ab}.weight" for m in spec.targets for ab in "AB"),
        "fc3.weight",
        "fc3.bias",
    ]


def test_regex_targets_resolve_to_exact_modules_and_peft_wraps_exactly_those():
    model, _, _, spec = wrapped(small_vit(), meta=True, targets=[r"attn\.qkv$"])
    assert spec.targets == tuple(f"blocks.{i}.attn.qkv" for i in range(12))
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert [n.removeprefix("base_model.model.") for n in adapted] == list(spec.targets)


def test_group_patterns_for_the_unwrapped_model_match_the_same_blocks_and_adapters_decay_by_depth():
    _, view, roles, _ = wrapped(small_vit(), meta=True)
    specs = parse_specs(
        {
            "head": {"role": "head", "lr_mult": 10},
            "lora_B": {
                "pattern": r"^blocks\.(\d+)\..*\.lora_B\.",
                "lr_mult": 16,
                "layer_decay": 0.5,
            },
            "blocks": {"role": "blocks", "layer_decay": 0.5},
        }
    )
    groups = {g.name: g for g in resolve(view, specs, roles).groups}
    assert groups["head"].param_names == ["head.weight", "head.bias"]
    for i in (0, 5, 11):
        assert groups[f"blocks.{i}"].lr_mult == pytest.approx(0.5 ** (11 - i))
        assert groups[f"lora_B.{i}"].lr_mult == pytest.approx(16 * 0.5 ** (11 - i))
        assert f"blocks.{i}.attn.qkv.lora_A.weight" in groups[f"blocks.{i}"].param_names
        assert f"blocks.{i}.mlp.fc2.lora_B.weight" in groups[f"lora_B.{i}"].param_names


@pytest.mark.parametrize("kind", ["lora", "dora"])
@pytest.mark.parametrize("source", [LeNetSource(), small_vit()], ids=["lenet", "timm_vit"])
def test_lora_plus_gives_every_tensor_the_lr_of_peft_create_loraplus_optimizer(source, kind):
    model, view, roles, _ = wrapped(source, kind=kind)
    groups, info = build_param_groups(view, parse_specs(LORA_PLUS), roles, 1e-3, 0.05, False)
    ours = torch.optim.AdamW(groups, lr=1e-3)
    peft_own = create_loraplus_optimizer(model, torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=16)
    ours_lrs, peft_lrs = lrs(ours), lrs(peft_own)
    # peft places the 1-D tensors with B by their number of dimensions; a convolution's DoRA
    # magnitude is 4-D ([1, out, 1, 1]), so peft keeps it with A while the preset, naming the
    # tensor, puts every magnitude with B. That is the one difference, and only under DoRA.
    differ = {n for n, p in view.names if ours_lrs[id(p)] != peft_lrs[id(p)]}
    convs = {n for n, p in view.names if "lora_magnitude_vector" in n and p.ndim == 4}
    assert differ == (convs if kind == "dora" else set())
    assert kind == "lora" or convs
    # Not vacuous: every trainable tensor is there, and B is at 16x A in every module.
    assert set(ours_lrs) == {id(p) for p in model.parameters() if p.requires_grad}
    by_name = {name: ours_lrs[id(p)] for name, p in view.names}
    a_names = [n for n in by_name if ".lora_A." in n]
    assert a_names and all(
        by_name[n.replace("lora_A", "lora_B")] == 16 * by_name[n] for n in a_names
    )
    assert [g["name"] for g in info["groups"]] == ["default", "lora_B"]


def test_the_footprint_counts_what_trains_against_the_full_model():
    from src.adapters.step import footprint

    model, view, roles, spec = wrapped(small_vit())
    groups, _ = build_param_groups(view, parse_specs(None), roles, 1e-3, 0.05, False)
    report = footprint(model, spec, torch.optim.AdamW(groups, lr=1e-3))
    full = sum(p.numel() for p in small_vit().build(3, 5).parameters())
    assert report["full_params"] == full
    assert report["trainable_params"] == sum(p.numel() for _, p in view.names) < full / 10
    assert report["optimizer_state_bytes"] == 8 * report["trainable_params"]  # AdamW: 2 moments


def test_a_target_pattern_that_matches_nothing_names_the_closest_modules():
    (line,) = problems(LeNetSource(), targets=["fc9"])
    assert "adapter.targets='fc9' matches no module" in line and "fc1" in line


def test_a_target_peft_cannot_wrap_is_refused_in_one_line():
    (line,) = problems(small_vit(), targets=[r"^norm$"])
    assert "matches 1 module(s) peft cannot adapt, e.g. norm, a LayerNorm" in line


def test_a_linear_inside_multihead_attention_is_never_a_silent_target():
    source = TorchvisionSource("vit_b_16")
    with torch.device("meta"):
        model = source.build(3, 5)
    spec = adapter_spec(LORA, model, source.roles(model))
    assert not any(t.endswith("out_proj") for t in spec.targets)  # the default skips them
    (line,) = problems(source, targets=["out_proj"])
    assert "matches 12 module(s)" in line and "inside nn.MultiheadAttention" in line


def test_an_adapter_on_a_model_with_nothing_peft_wraps_is_refused():
    model = plain_linear_stack()
    roles = generic_roles(model, "custom")
    with pytest.raises(GroupwiseError) as err:
        adapter_spec({**LORA, "train_fully": ["1"]}, model, roles)
    assert err.value.problems == [
        "adapter=lora: the model has no module peft can wrap (a Linear or Conv) outside the "
        "modules trained fully; use adapter=none to fine-tune it in full"
    ]


def test_a_group_pattern_for_adapter_tensors_of_a_module_without_one_says_so():
    _, view, roles, _ = wrapped(LeNetSource(), targets=["^fc"])
    with pytest.raises(GroupwiseError) as err:
        resolve(view, parse_specs({"conv_b": {"pattern": r"^conv1\.lora_B"}}), roles)
    (line,) = err.value.problems
    assert "conv1" in line and "only the modules adapter.targets selects" in line


def test_an_adapter_saved_by_peft_with_another_rank_is_refused(tmp_path):
    torch.manual_seed(0)
    get_peft_model(
        LeNetSource().build(1, 5),
        LoraConfig(r=4, target_modules=["conv1", "conv2", "fc1", "fc2"], modules_to_save=["fc3"]),
    ).save_pretrained(tmp_path)
    _, _, _, spec = wrapped(LeNetSource())
    (line,) = peft_files.problems(str(tmp_path), spec, LENET_MODULES)
    assert "r: 4 there, 8 in this run" in line
    assert json.loads((tmp_path / "adapter_config.json").read_text())["r"] == 4


def test_an_adapter_saved_by_peft_loads_into_the_run_s_wrapped_model(tmp_path):
    torch.manual_seed(1)
    saved = get_peft_model(
        LeNetSource().build(1, 5),
        LoraConfig(r=8, lora_alpha=16, target_modules=["conv1", "conv2", "fc1", "fc2"],
                   modules_to_save=["fc3"], init_lora_weights=False),
    )  # fmt: skip
    saved.save_pretrained(tmp_path)
    model, _, _, spec = wrapped(LeNetSource())
    assert peft_files.problems(str(tmp_path), spec, LENET_MODULES) == []
    peft_files.load(model, str(tmp_path))
    theirs = dict(saved.named_parameters())
    for name, param in model.named_parameters():
        if "lora_" in name or "modules_to_save" in name:
            assert torch.equal(param, theirs[name]), name


def test_the_view_leaves_out_what_peft_froze():
    model, view, _, _ = wrapped(LeNetSource())
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and len(view.names) == sum(p.requires_grad for p in model.parameters())
    assert isinstance(view, TrainableView)


def test_a_checkpoint_of_a_wrapped_model_loads_into_a_plain_model_merged(tmp_path):
    from src.pretrained.files import read_weights

    torch.manual_seed(2)
    model, _, _, _ = wrapped(LeNetSource())
    for name, param in model.named_parameters():  # B is 0 at the start: give every tensor a value
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    path = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "config": {"adapter": {**LORA, "alpha": 16.0}}}, path)
    weights = read_weights(path)
    assert "merged" in weights.description
    plain = LeNetSource().build(1, 5)
    plain.load_state_dict(weights.tensors)  # strict: every key a plain LeNet's
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), model.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def hf_vit(tmp_path_factory):
    from src.models.hf_models import HFSource
    from tests.model_families import hf_vit_dir

    return HFSource(str(hf_vit_dir(tmp_path_factory.mktemp("hf"), num_labels=5)), image_size=32)


@pytest.mark.parametrize("family", ["hf_vit", "resnet18", "vit_b_16", "timm_convnext"])
def test_every_model_source_is_adapted_with_lora_plus_and_merges_to_what_it_computed(
    family, hf_vit
):
    from src.adapters.wrap import merged
    from src.models.timm_models import TimmSource

    source = {
        "hf_vit": hf_vit,
        "resnet18": TorchvisionSource("resnet18"),
        "vit_b_16": TorchvisionSource("vit_b_16", image_size=32),
        "timm_convnext": TimmSource("convnext_atto"),
    }[family]
    model, view, roles, spec = wrapped(source)
    assert spec.targets and roles.head and all(n in dict(view.names) for n in roles.head)
    groups, _ = build_param_groups(view, parse_specs(LORA_PLUS), roles, 1e-3, 0.05, False)
    assert {g["name"] for g in groups} == {"default", "lora_B"}
    # The adapters' blocks are the source's: layer decay reaches them by depth.
    assert roles.blocks and any(".lora_A." in n for n in roles.blocks)
    for name, param in model.named_parameters():  # B starts at 0: give the update a value
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model.eval()(x)
        torch.testing.assert_close(merged(model).eval()(x), before, rtol=1e-4, atol=1e-4)
