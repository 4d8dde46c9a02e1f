import json

import pytest
import torch
import torchvision
from omegaconf import OmegaConf
from torch import nn

from src.errors import GroupwiseError
from src.models.lenet import LeNet
from src.optim.explain import explain, fold_by_number, format_explain
from src.optim.freezing import set_trainable
from src.optim.param_groups import optimizer_groups
from src.optim.resolve import resolve
from src.optim.specs import accepted_keys, parse_specs
from tests.conftest import ROOT
from tests.model_families import on_meta, roles_of


def groups_of(model, config):
    return {g.name: g.param_names for g in resolve(model, parse_specs(config)).groups}


def test_unmatched_parameters_form_default_and_named_groups_follow_it():
    groups = groups_of(LeNet(1, 10), {"fc3": {"pattern": r"^fc3\.", "lr_mult": 10}})
    assert list(groups) == ["default", "fc3"]
    assert groups["fc3"] == ["fc3.weight", "fc3.bias"]
    assert "fc3.weight" not in groups["default"] and len(groups["default"]) == 8


def test_first_group_in_config_order_owns_a_parameter():
    config = {
        "biases": {"pattern": r"\.bias$", "lr_mult": 2},
        "head": {"pattern": r"^fc", "lr_mult": 5},
    }
    groups = groups_of(LeNet(1, 10), config)
    assert groups["biases"] == [f"{n}.bias" for n in ("conv1", "conv2", "fc1", "fc2", "fc3")]
    assert groups["head"] == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert groups["default"] == ["conv1.weight", "conv2.weight"]


def test_re_search_matches_anywhere_and_a_list_of_patterns_is_one_group():
    groups = groups_of(LeNet(1, 10), {"convs": {"pattern": ["conv1", r"conv2\.weight"]}})
    assert groups["convs"] == ["conv1.weight", "conv1.bias", "conv2.weight"]


def test_lr_is_base_times_mult_and_groups_carry_their_name():
    model = LeNet(1, 10)
    resolution = resolve(model, parse_specs({"fc3": {"pattern": r"^fc3\.", "lr_mult": 10}}))
    optimizer = torch.optim.SGD(optimizer_groups(resolution.groups, 0.001), lr=0.001)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {"default": 0.001, "fc3": pytest.approx(0.01)}
    assert {g["name"]: g["lr_mult"] for g in optimizer.param_groups} == {
        "default": 1.0,
        "fc3": 10.0,
    }


def test_default_takes_the_same_keys_as_other_groups_but_a_pattern():
    specs = parse_specs({"default": {"lr_mult": 0.1, "weight_decay_mult": 2, "freeze": True}})
    assert (specs[0].lr_mult, specs[0].weight_decay_mult, specs[0].trains_from_epoch) == (
        0.1,
        2.0,
        None,
    )


# --- weight decay ------------------------------------------------------------------------


def decay_of(optimizer_groups_):
    return [(g["name"], len(g["params"]), g["weight_decay"]) for g in optimizer_groups_]


def test_1d_tensors_get_no_weight_decay_and_a_mixed_group_splits_under_one_name():
    resolution = resolve(
        LeNet(1, 10), parse_specs({"fc3": {"pattern": r"^fc3\.", "weight_decay_mult": 2}})
    )
    groups = optimizer_groups(resolution.groups, 0.1, weight_decay=1e-4)
    assert decay_of(groups) == [  # `default` last: see optimizer_groups
        ("fc3", 1, 2e-4),
        ("fc3", 1, 0.0),
        ("default", 4, 1e-4),
        ("default", 4, 0.0),
    ]
    assert all(p.ndim == 1 for g in groups if g["weight_decay"] == 0 for p in g["params"])
    torch.optim.SGD(groups, lr=0.1)  # every tensor in exactly one optimizer group


def test_the_1d_rule_holds_inside_custom_groups_and_catches_norm_weights():
    model = torchvision.models.resnet18()
    resolution = resolve(model, parse_specs({"layer1": {"pattern": r"^layer1\."}}))
    groups = optimizer_groups(resolution.groups, 0.1, weight_decay=0.05)
    exempt = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.layer1[0].bn1.weight) in exempt and id(model.layer1[0].bn1.bias) in exempt
    assert id(model.layer1[0].conv1.weight) not in exempt and id(model.fc.bias) in exempt


def test_the_switch_decays_1d_tensors_too_and_keeps_one_optimizer_group_per_name():
    resolution = resolve(LeNet(1, 10), parse_specs({"fc3": {"pattern": r"^fc3\."}}))
    groups = optimizer_groups(resolution.groups, 0.1, weight_decay=1e-4, weight_decay_1d=True)
    assert decay_of(groups) == [("fc3", 2, 1e-4), ("default", 8, 1e-4)]


# --- other optimizer keys ------------------------------------------------------------------


def test_a_group_sets_other_optimizer_keys_for_its_params_only():
    config = {"fc3": {"pattern": r"^fc3\.", "momentum": 0.0, "nesterov": False}}
    specs = parse_specs(config, accepted_keys(torch.optim.SGD))
    groups = optimizer_groups(resolve(LeNet(1, 10), specs).groups, 0.1)
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    assert {g["name"]: g["momentum"] for g in optimizer.param_groups} == {
        "default": 0.9,
        "fc3": 0.0,
    }


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("momentun", "unknown key(s) ['momentun']; momentun: did you mean momentum?"),
        ("betas", "unknown key(s) ['betas']"),  # an Adam key given to SGD
        ("lr", "param_groups.fc3.lr=0.5: set lr_mult (lr = optimizer.lr * lr_mult"),
        ("weight_decay", "param_groups.fc3.weight_decay=0.5: set weight_decay_mult"),
    ],
)
def test_keys_the_optimizer_does_not_take_per_group_are_errors(key, expected):
    with pytest.raises(GroupwiseError) as err:
        parse_specs({"fc3": {"pattern": "fc3", key: 0.5}}, accepted_keys(torch.optim.SGD))
    assert expected in str(err.value)


# --- freezing --------------------------------------------------------------------------------


def sgd_for(model, config, weight_decay=0.0):
    resolution = resolve(model, parse_specs(config))
    groups = optimizer_groups(resolution.groups, 0.1, weight_decay=weight_decay)
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9, weight_decay=weight_decay)


@pytest.mark.parametrize("spec", [{"lr_mult": 0}, {"freeze": True, "lr_mult": 5}])
def test_a_frozen_group_gets_no_gradient_and_is_never_stepped(spec):
    model = LeNet(1, 10)
    optimizer = sgd_for(model, {"convs": {"pattern": "^conv", **spec}}, weight_decay=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    set_trainable(model, optimizer, epoch=0)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 1, 32, 32)).sum().backward()
        optimizer.step()
    for name, param in model.named_parameters():
        frozen = name.startswith("conv")
        assert param.requires_grad is not frozen and (param.grad is None) is frozen
        assert torch.equal(param, before[name]) is frozen, name


class ConvBN(nn.Sequential):
    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)
        )


def test_batchnorm_layers_whose_params_are_all_frozen_keep_their_running_stats():
    model = ConvBN()
    optimizer = sgd_for(model, {"stem": {"pattern": r"^[01]\.", "freeze": True}})
    model.train()
    set_trainable(model, optimizer, epoch=0)
    model(torch.randn(8, 1, 8, 8) * 3 + 1).sum().backward()
    frozen_bn, trained_bn = model[1], model[4]
    assert not frozen_bn.training and trained_bn.training
    assert torch.equal(frozen_bn.running_mean, torch.zeros(4))
    assert frozen_bn.num_batches_tracked == 0 and trained_bn.num_batches_tracked == 1
    assert not torch.equal(trained_bn.running_mean, torch.zeros(4))


def test_scheduled_unfreezing_flips_requires_grad_and_lr_at_its_epoch_only():
    from src.optim import schedulers

    model = ConvBN()
    optimizer = sgd_for(model, {"stem": {"pattern": r"^[01]\.", "unfreeze_at_epoch": 2}})
    scheduler = schedulers.cosine(optimizer, steps_per_epoch=3, max_epochs=4, min_lr_ratio=0.0)
    count = len(optimizer.param_groups)
    for epoch in range(4):
        model.train()
        changed = set_trainable(model, optimizer, epoch)
        # Frozen at epoch 0 (built trainable), unfrozen at 2: the trainer re-wraps DDP then only.
        assert changed is (epoch in (0, 2))
        assert model[0].weight.requires_grad is (epoch >= 2)
        assert model[1].training is (epoch >= 2)  # its BN updates stats once it trains
        for _ in range(3):
            lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
            assert lrs["stem"] == (pytest.approx(lrs["default"]) if epoch >= 2 else 0.0)
            assert lrs["default"] > 0
            optimizer.step()
            scheduler.step()
    assert len(optimizer.param_groups) == count


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"unfreeze_at_epoch": 0}, "unfreeze_at_epoch=0: must be an epoch >= 1"),
        ({"unfreeze_at_epoch": 2, "lr_mult": 0}, "lr_mult=0 would train it at lr 0"),
        ({"unfreeze_at_epoch": 2, "freeze": False}, "the group has freeze=false"),
        ({"freeze": "yes"}, "param_groups.convs.freeze='yes': must be true or false"),
    ],
)
def test_contradictory_freezing_is_an_error(spec, expected):
    with pytest.raises(GroupwiseError, match=expected):
        parse_specs({"convs": {"pattern": "^conv", **spec}})


def test_a_config_that_freezes_everything_at_the_start_is_an_error():
    config = {"default": {"freeze": True}, "fc3": {"pattern": "^fc3", "unfreeze_at_epoch": 1}}
    with pytest.raises(GroupwiseError, match="every group is frozen at the start"):
        resolve(LeNet(1, 10), parse_specs(config))


# --- layer-wise decay ------------------------------------------------------------------------


def test_layer_decay_gives_each_captured_layer_its_own_named_group():
    config = {"stages": {"pattern": r"^layer(\d)\.", "lr_mult": 2, "layer_decay": 0.5}}
    groups = resolve(on_meta("resnet18"), parse_specs(config)).groups
    mults = {g.name: g.lr_mult for g in groups}
    assert mults == {"default": 1, "stages.1": 0.25, "stages.2": 0.5, "stages.3": 1, "stages.4": 2}
    assert all(n.startswith("layer3.") for n in groups[3].param_names)


def test_layer_decay_on_a_torchvision_vit_counts_blocks_from_the_last():
    config = {
        "blocks": {"pattern": r"^encoder\.layers\.encoder_layer_(\d+)\.", "layer_decay": 0.75}
    }
    groups = resolve(on_meta("vit_b_16"), parse_specs(config)).groups
    blocks = [g for g in groups if g.name.startswith("blocks.")]
    assert [g.name for g in blocks] == [f"blocks.{i}" for i in range(12)]
    assert [g.lr_mult for g in blocks] == pytest.approx([0.75 ** (11 - i) for i in range(12)])
    names = [g["name"] for g in optimizer_groups(groups, 0.1, weight_decay=0.05)]
    assert names.count("blocks.4") == 2  # decay / no decay halves, one name


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"pattern": r"^layer\d\."},
            r"pattern='^layer\\d\\.': layer_decay needs the layer number captured by exactly one group",
        ),
        ({"pattern": r"^(layer)(\d)\."}, "it has 2 (write the others as (?:...))"),
        ({"pattern": r"^layer\d\.", "layer_decay": 1.5}, "layer_decay=1.5: must lie in (0, 1]"),
    ],
)
def test_layer_decay_needs_one_capture_group_and_a_decay_in_range(spec, expected):
    with pytest.raises(GroupwiseError) as err:
        parse_specs({"stages": {"layer_decay": 0.75, **spec}})
    assert expected in str(err.value)


def test_a_capture_that_is_not_a_layer_number_is_an_error():
    config = {"stages": {"pattern": r"^(layer\d)\.", "layer_decay": 0.75}}
    with pytest.raises(GroupwiseError, match=r"captured 'layer1' from 'layer1.0.conv1.weight'"):
        resolve(on_meta("resnet18"), parse_specs(config))


# --- tied parameters -------------------------------------------------------------------------


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


def test_a_tied_parameter_is_owned_once_by_the_group_of_its_first_name():
    resolution = resolve(Tied(), parse_specs({"embed": {"pattern": "embed", "lr_mult": 10}}))
    assert [(g.name, g.param_names) for g in resolution.groups] == [
        ("default", ["norm.weight", "norm.bias"]),
        ("embed", ["embed.weight"]),
    ]
    assert resolution.tied == {"head.weight": "embed.weight"}
    # no "some parameters appear in more than one parameter group"
    torch.optim.AdamW(optimizer_groups(resolution.groups, 0.1, weight_decay=0.1), lr=0.1)


def test_a_group_matching_only_the_second_name_of_a_tied_parameter_says_so():
    with pytest.raises(GroupwiseError, match=r"head.weight by default \(tied to embed.weight\)"):
        resolve(Tied(), parse_specs({"head": {"pattern": "^head", "lr_mult": 10}}))


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"fc3": {"pattern": "^fc3\\.(", "lr_mult": 10}},
            "param_groups.fc3.pattern='^fc3\\\\.(': invalid regex",
        ),
        ({"fc3": {"pattern": "^fc4\\.", "lr_mult": 10}}, "matches no parameter"),
        (
            {"fc3": {"pattern": "^fc3\\.", "lr_mult": -1}},
            "param_groups.fc3.lr_mult=-1: must be >= 0",
        ),
        (
            {"fc3": {"pattern": "^fc3\\.", "weight_decay_mult": -1}},
            "param_groups.fc3.weight_decay_mult=-1: must be >= 0",
        ),
        ({"fc3": {"pattern": "^fc3\\.", "lr_mul": 10}}, "unknown key(s) ['lr_mul']"),
        ({"fc3": {"lr_mult": 10}}, "param_groups.fc3: no pattern"),
        (
            {"default": {"pattern": "fc", "lr_mult": 2}},
            "`default` takes what no other group matches",
        ),
        ({"fc3": {"pattern": "fc3", "lr_mult": "ten"}}, "param_groups.fc3.lr_mult='ten'"),
    ],
)
def test_bad_group_specs_are_errors_naming_group_and_value(config, expected):
    with pytest.raises(GroupwiseError) as err:
        resolve(LeNet(1, 10), parse_specs(config))
    assert expected in str(err.value)


def test_a_pattern_matching_nothing_suggests_close_names():
    with pytest.raises(GroupwiseError, match=r"closest parameter names: \['fc3\.weight'"):
        resolve(LeNet(1, 10), parse_specs({"head": {"pattern": "fc3.wieght"}}))


def test_a_group_shadowed_by_earlier_groups_is_an_error():
    config = {"linears": {"pattern": "^fc"}, "fc3": {"pattern": "^fc3\\.", "lr_mult": 10}}
    with pytest.raises(
        GroupwiseError,
        match=r"param_groups.fc3: every parameter it matches is owned already \(fc3.weight by linears",
    ):
        resolve(LeNet(1, 10), parse_specs(config))


def test_all_problems_of_a_config_are_reported_together():
    config = {
        "a": {"pattern": "(", "lr_mult": -2},
        "b": {"pattern": "x", "lr_mul": 1},
        "c": {"pattern": r"^layer\d", "layer_decay": 0.5, "unfreeze_at_epoch": -1},
    }
    with pytest.raises(GroupwiseError) as err:
        parse_specs(config)
    assert len(err.value.problems) == 5
    assert all(p.startswith("param_groups.") for p in err.value.problems)


def test_problems_found_while_resolving_are_reported_together():
    config = {
        "typo": {"pattern": "^fc4"},
        "stages": {"pattern": r"^(conv\d)", "layer_decay": 0.5},
        "head": {"pattern": r"^conv1\."},
    }
    with pytest.raises(GroupwiseError) as err:
        resolve(LeNet(1, 10), parse_specs(config))
    assert [p.split(":")[0].split("=")[0] for p in err.value.problems] == [
        "param_groups.typo.pattern",
        "param_groups.head",
        "param_groups.stages.pattern",
    ]


# --- explain -----------------------------------------------------------------------------------


def test_fold_by_number_folds_numbers_innermost_first_and_runs_of_three_or_more():
    names = [f"layer4.{b}.conv{c}.weight" for b in range(2) for c in (1, 2)] + [
        f"blocks.{i}.norm.weight" for i in (0, 1, 2, 3, 5)
    ]
    assert fold_by_number(names) == ["layer4.{0,1}.conv{1,2}.weight", "blocks.{0..3,5}.norm.weight"]


def test_fold_by_number_fits_a_resnet50_on_a_screen():
    names = [n for n, _ in on_meta("resnet50").named_parameters()]
    folded = fold_by_number(names)
    assert len(names) == 161 and len(folded) <= 20
    assert "layer3.{0..5}.conv{1..3}.weight" in folded


def test_explain_lists_every_parameter_once_with_counts_shadowing_and_ties():
    model = Tied()
    config = {
        "embed": {"pattern": "embed", "lr_mult": 10},
        "weights": {"pattern": r"weight$", "weight_decay_mult": 0.5},
        "late": {"pattern": r"^head", "unfreeze_at_epoch": 3},
    }
    with pytest.raises(GroupwiseError):  # `late` matches only the tied name
        resolve(model, parse_specs(config))
    del config["late"]
    resolution = resolve(model, parse_specs(config))
    built = optimizer_groups(resolution.groups, 0.1, weight_decay=0.01)
    info = explain(resolution, built, 0.1, weight_decay=0.01)
    names = [n for g in info["groups"] for n in g["params"]]
    assert sorted(names) == ["embed.weight", "norm.bias", "norm.weight"]
    weights = info["groups"][2]
    assert (weights["name"], weights["params"], weights["no_decay_tensors"]) == (
        "weights",
        ["norm.weight"],
        1,
    )
    assert weights["weight_decay"] == pytest.approx(0.005)
    assert info["shadowed"] == [
        {"group": "weights", "owner": "embed", "params": ["embed.weight", "head.weight"]}
    ]
    assert info["tied"] == {"head.weight": "embed.weight"}
    assert sum(g["share"] for g in info["groups"]) == pytest.approx(1.0)
    text = format_explain(info)
    assert "weights also matches embed.weight, head.weight, owned by embed" in text
    assert "head.weight is tied to embed.weight" in text
    json.dumps(info)  # param_groups.json takes it as it is


def test_explain_table_shows_weight_decay_and_when_a_group_trains():
    config = {
        "convs": {"pattern": "^conv", "unfreeze_at_epoch": 2},
        "fc1": {"pattern": "^fc1", "freeze": True},
    }
    resolution = resolve(LeNet(1, 10), parse_specs(config))
    built = optimizer_groups(resolution.groups, 0.1, weight_decay=1e-4)
    info = explain(resolution, built, 0.1, weight_decay=1e-4)
    rows = {line.split()[0]: line for line in format_explain(info).splitlines()}
    assert rows["convs"].endswith("0.0001, 1-D: 0  from epoch 2")
    assert rows["fc1"].endswith("frozen") and rows["default"].endswith("yes")


# --- presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "model", "expected"),
    [
        ("none", "resnet18", {"default": 1}),
        ("head_boost", "resnet18", {"default": 1, "head": 10}),
        ("head_boost", "vit_b_16", {"default": 1, "head": 10}),
        ("head_boost", "mobilenet_v3_small", {"default": 1, "head": 10}),
        ("backbone_frozen", "efficientnet_b0", {"default": 1, "head": 1}),
        (
            "resnet_layer_decay",
            "resnet50",
            {
                "default": 1,
                "stem": 0.75**4,
                **{f"stages.{i}": 0.75 ** (3 - i) for i in range(4)},
            },
        ),
        (
            "vit_layer_decay",
            "vit_b_16",
            {
                "default": 1,
                "embeddings": pytest.approx(0.75**13, rel=1e-5),  # one step below block 0
                **{f"blocks.{i}": pytest.approx(0.75 ** (12 - i)) for i in range(12)},
            },
        ),
    ],
)
def test_presets_resolve_on_the_models_they_are_for(preset, model, expected):
    config = OmegaConf.to_container(
        OmegaConf.load(ROOT / "conf" / "param_groups" / f"{preset}.yaml")
    )
    built = on_meta(model)
    specs = parse_specs(config, accepted_keys(torch.optim.AdamW))
    groups = resolve(built, specs, roles_of(model, built)).groups
    assert {g.name: g.lr_mult for g in groups} == expected
    if preset == "backbone_frozen":
        assert [g.trains_from_epoch for g in groups] == [None, 0]


def test_every_preset_opens_with_the_command_that_uses_it():
    for path in (ROOT / "conf" / "param_groups").glob("*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# python -m src.run") and f"param_groups={path.stem}" in first


def test_patterns_with_flags_or_references_to_their_groups_match_as_on_their_own():
    # such patterns cannot be joined into the one search that most names take
    config = {
        "head": {"pattern": r"(?i)^FC3\."},
        "convs": {"pattern": r"^(c)?o?\w*?(?(1)\d)\.weight"},
        "conv_biases": {"pattern": r"^c(o)nv\d\.(?!\1)b"},
    }
    groups = groups_of(LeNet(1, 10), config)
    assert groups["head"] == ["fc3.weight", "fc3.bias"]
    assert groups["convs"] == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
    assert groups["conv_biases"] == ["conv1.bias", "conv2.bias"]
