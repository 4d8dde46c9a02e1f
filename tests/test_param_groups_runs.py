"""Param groups in whole runs: composed configs through the runner, and the real CLI."""

import json
import logging

import pytest
import torch

from src.errors import GroupwiseError
from src.pretrained.files import read_state_dict
from src.runner import Runner
from src.training.checkpoints import MODEL, OPTIMIZER
from tests.conftest import ROOT, error_lines, read_scalars, read_texts, run_cli

FEW_SHOTS = ["dataset.shots_per_class=8", "trainer.log_every_n_steps=1"]  # 3 steps per epoch
STEPS_PER_EPOCH = 3


def run(make_cfg, run_dir, *overrides) -> Runner:
    runner = Runner(make_cfg(*overrides), run_dir)
    runner.run()
    return runner


@pytest.mark.e2e
def test_a_checkpoint_saved_before_the_unfreeze_epoch_resumes_after_it(make_cfg, tmp_path):
    overrides = [
        *FEW_SHOTS,
        # a schedule that does not depend on max_epochs, which the two halves set differently
        "scheduler=multistep",
        "scheduler.milestones=[1,3]",
        '+param_groups.convs={pattern: "^conv", unfreeze_at_epoch: 2}',
    ]
    run(make_cfg, tmp_path / "whole", *overrides, "trainer.max_epochs=4")
    run(make_cfg, tmp_path / "split", *overrides, "trainer.max_epochs=2")
    before = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    shipped = read_state_dict(ROOT / "weights" / "lenet_digits_0-4.pt")
    assert torch.equal(before[MODEL]["conv1.weight"], shipped["conv1.weight"])  # still frozen
    assert not torch.equal(before[MODEL]["fc1.weight"], shipped["fc1.weight"])

    resumed = run(make_cfg, tmp_path / "split", *overrides, "trainer.max_epochs=4", "resume=true")
    assert resumed.model.conv1.weight.requires_grad
    whole = torch.load(tmp_path / "whole/checkpoints/last.pt", weights_only=True)
    after = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    groups = [g["name"] for g in before[OPTIMIZER]["param_groups"]]
    assert groups == [g["name"] for g in after[OPTIMIZER]["param_groups"]]
    for key, tensor in whole[MODEL].items():
        assert torch.equal(tensor, after[MODEL][key]), key
    assert not torch.equal(after[MODEL]["conv1.weight"], shipped["conv1.weight"])

    scalars = read_scalars(tmp_path / "split")
    convs, base = dict(scalars["lr/convs"]), dict(scalars["lr/default"])
    assert sorted(convs) == list(range(4 * STEPS_PER_EPOCH))
    for step, lr in convs.items():
        expected = base[step] if step >= 2 * STEPS_PER_EPOCH else 0.0
        assert lr == pytest.approx(expected, rel=1e-6) and base[step] > 0


def resnet_run(make_cfg, tmp_path, *overrides) -> tuple[dict, dict]:
    cfg = make_cfg(
        "model=resnet18",
        "pretrained=none",
        "param_groups=backbone_frozen",
        "dataset.shots_per_class=2",  # 10 images: one step per epoch
        *overrides,
    )
    runner = Runner(cfg, tmp_path)
    runner.setup()
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    return before, runner.model.state_dict()


@pytest.mark.e2e
def test_a_frozen_backbone_keeps_its_weights_and_batchnorm_statistics(make_cfg, tmp_path):
    before, after = resnet_run(make_cfg, tmp_path, "trainer.max_epochs=1")
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["fc.bias", "fc.weight"]  # running_mean, num_batches_tracked included


@pytest.mark.e2e
def test_an_unfrozen_backbone_updates_batchnorm_statistics_from_then_on(make_cfg, tmp_path):
    before, after = resnet_run(
        make_cfg, tmp_path, "trainer.max_epochs=2", "param_groups.default.unfreeze_at_epoch=1"
    )
    assert after["bn1.num_batches_tracked"] == 1  # epoch 1's step only
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])


@pytest.mark.parametrize(
    ("optimizer", "option", "value"),
    [
        ("sgd", "momentum", 0.5),
        ("adamw", "betas", [0.8, 0.9]),
        ("adam", "eps", 1e-6),
        ("rmsprop", "alpha", 0.9),
    ],
)
def test_every_optimizer_gets_the_groups_their_lrs_decay_and_own_keys(
    make_cfg, tmp_path, optimizer, option, value
):
    cfg = make_cfg(
        f"optimizer={optimizer}",
        "optimizer.weight_decay=0.01",
        "param_groups=fc3_boost",
        f"+param_groups.fc3.{option}={value}",
        "dry_run=true",
    )
    runner = Runner(cfg, tmp_path)
    runner.setup()
    groups = runner.optimizer.param_groups
    assert type(runner.optimizer).__name__.lower() == optimizer
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [
        ("fc3", pytest.approx(0.01), 0.01),
        ("fc3", pytest.approx(0.01), 0.0),
        ("default", 0.001, 0.01),
        ("default", 0.001, 0.0),
    ]
    assert [g[option] != runner.optimizer.defaults[option] for g in groups] == [1, 1, 0, 0]


def test_dry_run_explains_folded_names_shadowing_and_freezing(make_cfg, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    run(
        make_cfg,
        tmp_path,
        "param_groups=fc3_boost",
        '+param_groups.linears={pattern: "^fc", unfreeze_at_epoch: 3}',
        "dry_run=true",
    )
    assert "linears also matches fc3.weight, fc3.bias, owned by fc3" in caplog.text
    assert "  fc{1,2}.weight" in caplog.text
    info = json.loads((tmp_path / "param_groups.json").read_text())
    linears = info["groups"][2]
    assert (linears["name"], linears["trains_from_epoch"], linears["params_folded"]) == (
        "linears",
        3,
        ["fc{1,2}.weight", "fc{1,2}.bias"],
    )
    assert info["shadowed"] == [
        {"group": "linears", "owner": "fc3", "params": ["fc3.weight", "fc3.bias"]}
    ]
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.e2e
def test_layer_decay_through_the_cli_logs_every_layer_at_its_ratio(tmp_path):
    run_cli(
        "param_groups=none",
        '+param_groups.fcs={pattern: "^fc(\\d)\\.", lr_mult: 2, layer_decay: 0.5}',
        "scheduler=warmup_cosine",
        "scheduler.warmup_epochs=1",
        "dataset.shots_per_class=4",  # 20 images: 2 steps per epoch
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
        f"hydra.run.dir={tmp_path}",
    )
    scalars = read_scalars(tmp_path)
    base = scalars["lr/default"]
    assert [lr for _, lr in base] == pytest.approx([0.0005, 0.001, 0.001, 0.0005])
    for group, ratio in {"fcs.1": 0.5, "fcs.2": 1, "fcs.3": 2}.items():
        assert [s for s, _ in scalars[f"lr/{group}"]] == [s for s, _ in base]
        for (_, lr), (_, lr_base) in zip(scalars[f"lr/{group}"], base, strict=True):
            assert lr == pytest.approx(ratio * lr_base, rel=1e-6), group
    text = read_texts(tmp_path)["param_groups"]
    assert "fcs.{1..3}:\n  fc{1..3}.weight\n  fc{1..3}.bias" in text
    info = json.loads((tmp_path / "param_groups.json").read_text())
    assert [(g["name"], g["lr_mult"]) for g in info["groups"]] == [
        ("default", 1),
        ("fcs.1", 0.5),
        ("fcs.2", 1),
        ("fcs.3", 2),
    ]


@pytest.mark.e2e
def test_every_problem_of_a_param_groups_config_is_one_line_of_one_error(tmp_path):
    result = run_cli(
        "param_groups=fc3_boost",
        "param_groups.fc3.lr_mult=-1",
        "+param_groups.fc3.lr_mul=3",
        '+param_groups.stages={pattern: "^conv", layer_decay: 0.8}',
        f"hydra.run.dir={tmp_path}",
        check=False,
    )
    errors = error_lines(result)
    assert [e.split(":")[2].strip().split("=")[0] for e in errors] == [
        "param_groups.fc3",
        "param_groups.fc3.lr_mult",
        "param_groups.stages.pattern",
    ]


def test_an_optimizer_that_does_not_exist_is_named_before_any_group_is_checked(make_cfg, tmp_path):
    runner = Runner(make_cfg("optimizer._target_=torch.optim.Adamm"), tmp_path)
    with pytest.raises(
        GroupwiseError, match=r"optimizer._target_=torch.optim.Adamm: no such class"
    ):
        runner.setup()
