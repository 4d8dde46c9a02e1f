import pytest
import torch
from torch import nn

from src.errors import GroupwiseError
from src.models import LeNet
from src.param_groups import explain, optimizer_groups, parse_specs, resolve


def groups_of(model, config):
    return {g.name: g.param_names for g in resolve(model, parse_specs(config))}


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
    groups = resolve(model, parse_specs({"fc3": {"pattern": r"^fc3\.", "lr_mult": 10}}))
    optimizer = torch.optim.SGD(optimizer_groups(groups, 0.001), lr=0.001, momentum=0.9)
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs == {"default": 0.001, "fc3": pytest.approx(0.01)}
    assert {g["name"]: g["lr_mult"] for g in optimizer.param_groups} == {
        "default": 1.0,
        "fc3": 10.0,
    }


def test_default_lr_mult_can_be_set():
    groups = resolve(LeNet(1, 10), parse_specs({"default": {"lr_mult": 0.1}}))
    assert [(g.name, g.lr_mult) for g in groups] == [("default", 0.1)]


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight


def test_a_tied_parameter_is_owned_once_by_the_group_of_its_first_name():
    model = Tied()
    groups = resolve(model, parse_specs({"embed": {"pattern": "embed", "lr_mult": 10}}))
    assert [(g.name, g.param_names) for g in groups] == [("embed", ["embed.weight"])]
    torch.optim.SGD(optimizer_groups(groups, 0.1), lr=0.1)  # no "appears in more than one group"


def test_a_group_matching_only_the_second_name_of_a_tied_parameter_says_so():
    with pytest.raises(GroupwiseError, match=r"head.weight by default \(tied to embed.weight\)"):
        resolve(Tied(), parse_specs({"head": {"pattern": "^head", "lr_mult": 10}}))


def test_explain_lists_every_parameter_once_with_counts():
    model = LeNet(1, 10)
    groups = resolve(model, parse_specs({"fc3": {"pattern": r"^fc3\.", "lr_mult": 10}}))
    info = explain(groups, 0.001)
    names = [n for g in info["groups"] for n in g["params"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    fc3 = info["groups"][1]
    assert (fc3["tensors"], fc3["elements"], fc3["lr"]) == (2, 84 * 10 + 10, pytest.approx(0.01))
    assert sum(g["share"] for g in info["groups"]) == pytest.approx(1.0)


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
    config = {"a": {"pattern": "(", "lr_mult": -2}, "b": {"pattern": "x", "lr_mul": 1}}
    with pytest.raises(GroupwiseError) as err:
        parse_specs(config)
    assert len(err.value.problems) == 3
