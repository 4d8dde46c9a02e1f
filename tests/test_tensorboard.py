"""What a run shows in TensorBoard, read back from its event files: per-group signals, the
custom-scalars layout, and the hparams session in the run's own dir."""

import json

import pytest
import torch
import yaml
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch import nn

from src.runner import Launch, Runner
from src.tracking import config_text, hparams
from src.tracking.group_signals import GroupSignals, learning_rates
from src.tracking.hparams import HParams
from src.tracking.logger import RunLogger
from tests.conftest import (
    SHIPPED_WEIGHTS,
    read_events,
    read_plugin_content,
    read_scalars,
    read_session_hparams,
)


def test_grad_norm_and_update_ratio_per_named_group_at_the_steps_measured(tmp_path):
    torch.manual_seed(0)
    body, head = nn.Linear(4, 3), nn.Linear(3, 2)
    # `body` spans two optimizer param groups (decay / no decay) under one name.
    optimizer = torch.optim.SGD(
        [
            {"params": [body.weight], "name": "body", "lr": 0.1},
            {"params": [body.bias], "name": "body", "lr": 0.1, "weight_decay": 0.0},
            {"params": head.parameters(), "name": "head", "lr": 1.0},
        ]
    )
    logger = RunLogger(tmp_path)
    signals = GroupSignals(optimizer)
    expected = {}
    for step in range(3):
        optimizer.zero_grad()
        head(body(torch.randn(8, 4))).square().mean().backward()
        params = {"body": [body.weight, body.bias], "head": list(head.parameters())}
        lrs = {"body": 0.1, "head": 1.0}
        if step != 1:
            for name, ps in params.items():
                grad = torch.cat([p.grad.flatten() for p in ps]).norm()
                weight = torch.cat([p.detach().flatten() for p in ps]).norm()
                # plain SGD: the step is -lr * grad, so the ratio is lr * |g| / |w|
                expected[f"grad_norm/{name}", step] = grad.item()
                expected[f"update_ratio/{name}", step] = (lrs[name] * grad / weight).item()
        if step == 1:  # not a logged step: nothing measured, nothing written
            optimizer.step()
            continue
        before = signals.before_step()
        optimizer.step()
        logger.scalars(signals.after_step(before), step)
    logger.close()

    scalars = read_scalars(tmp_path)
    assert sorted(scalars) == [
        "grad_norm/body",
        "grad_norm/head",
        "update_ratio/body",
        "update_ratio/head",
    ]
    for (tag, step), value in expected.items():
        assert dict(scalars[tag])[step] == pytest.approx(value, rel=1e-5), (tag, step)
    assert all([s for s, _ in values] == [0, 2] for values in scalars.values())


def test_a_parameter_without_gradient_adds_no_norm_but_its_weights_still_count():
    body, head = nn.Linear(4, 3), nn.Linear(3, 2)
    body.bias.requires_grad_(False)  # frozen: no gradient, never stepped
    optimizer = torch.optim.SGD(
        [
            {"params": list(body.parameters()), "name": "body"},
            {"params": list(head.parameters()), "name": "head"},
        ],
        lr=0.1,
    )
    head(body(torch.randn(8, 4))).square().mean().backward()
    grad = body.weight.grad.norm()
    weight = torch.cat([body.weight.detach().flatten(), body.bias.flatten()]).norm()
    signals = GroupSignals(optimizer)
    before = signals.before_step()
    optimizer.step()
    values = signals.after_step(before)
    assert values["grad_norm/body"] == pytest.approx(grad.item(), rel=1e-5)
    assert values["update_ratio/body"] == pytest.approx((0.1 * grad / weight).item(), rel=1e-5)


@pytest.mark.e2e
def test_a_run_logs_every_groups_signals_with_the_lrs_and_the_boosted_head_moves_faster(
    make_cfg, tmp_path
):
    cfg = make_cfg("param_groups=fc3_boost", "trainer.max_epochs=1", "trainer.log_every_n_steps=5")
    Runner(cfg, tmp_path).run()

    scalars = read_scalars(tmp_path)
    steps = [s for s, _ in scalars["lr/default"]]
    assert len(steps) > 3
    for signal in ("lr", "grad_norm", "update_ratio"):
        for group in ("default", "fc3"):
            assert [s for s, _ in scalars[f"{signal}/{group}"]] == steps, (signal, group)
    # the multiplier itself, at every logged step, whatever the schedule did to both lrs
    assert scalars["lr_ratio/fc3"] == [(step, pytest.approx(10.0)) for step in steps]
    assert "lr_ratio/default" not in scalars
    # the fresh head at 10x the base lr changes far faster, relative to its size, than the body
    for (_, head), (_, body) in zip(
        scalars["update_ratio/fc3"], scalars["update_ratio/default"], strict=True
    ):
        assert head > 5 * body > 0


def test_no_lr_ratio_while_default_is_frozen_or_absent():
    weights = [nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))]
    groups = [{"params": [weights[0]], "name": "default", "lr": 0.0}]
    groups.append({"params": [weights[1]], "name": "head", "lr": 0.1})
    assert learning_rates(torch.optim.SGD(groups)) == {"lr/default": 0.0, "lr/head": 0.1}
    groups[0]["name"] = "body"
    assert learning_rates(torch.optim.SGD(groups)) == {"lr/body": 0.0, "lr/head": 0.1}


def test_custom_scalars_layout_puts_every_group_on_one_chart_per_signal(tmp_path):
    RunLogger(tmp_path).close()
    layout = layout_pb2.Layout.FromString(
        read_events(tmp_path).Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0]
    )
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["lr per group"] == ["lr/.*"]
    assert charts["update ratio per group"] == ["update_ratio/.*"]
    assert charts["lr over default's per group"] == ["lr_ratio/.*"]


@pytest.mark.e2e
def test_hparams_session_lives_in_the_run_dir_beside_its_scalars(make_cfg, tmp_path):
    cfg = make_cfg("param_groups=fc3_boost", "trainer.max_epochs=2")
    swept = {"param_groups.fc3.lr_mult": 10, "param_groups": "fc3_boost"}
    launch = Launch(hparams=HParams(swept, swept=["param_groups.fc3.lr_mult"]))
    Runner(cfg, tmp_path, launch).run()

    # one run: no sub-run with its own event file, as SummaryWriter.add_hparams would make
    assert [p.parent for p in tmp_path.rglob("events.out.tfevents.*")] == [tmp_path]
    # a grid's values as the job's name writes them: a box per value in TensorBoard
    assert read_session_hparams(tmp_path) == {
        "param_groups.fc3.lr_mult": "10",
        "param_groups": "fc3_boost",
    }
    content = read_plugin_content(tmp_path, "hparams")
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG]
    )
    assert end.status == api_pb2.STATUS_SUCCESS
    # no experiment: TensorBoard builds the columns from every run's session (the union of
    # several sweeps' keys under one logdir), which the first experiment found would fix
    assert hparams_metadata.EXPERIMENT_TAG not in content

    # the metrics the HPARAMS table shows are the last values of those scalars in this run
    scalars = read_scalars(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert scalars["val/best_acc"][-1][1] == pytest.approx(metrics["best_val_acc"])
    assert scalars["val/acc"][-1][1] == pytest.approx(metrics["val/acc"])


def test_hparams_are_the_overrides_with_values_read_back_from_the_config(make_cfg):
    overrides = [
        "optimizer.lr=1e-2",
        "param_groups=fc3_boost",
        "param_groups.fc3.lr_mult=30",
        "dataset.classes=[5,6]",
        "+dataset.note=hi",
        "dry_run=true",
    ]
    cfg = make_cfg(*overrides)
    assert hparams.from_overrides(overrides, cfg, exclude_keys=["dry_run"]) == {
        "optimizer.lr": 0.01,
        "param_groups": "fc3_boost",
        "param_groups.fc3.lr_mult": 30,
        "dataset.classes": "[5,6]",
        "dataset.note": "hi",
    }


def test_the_config_card_resolves_what_it_can_and_keeps_the_rest_as_written(make_cfg):
    # `${hydra:...}` only resolves inside a Hydra job; `???` is a value not given yet
    cfg = make_cfg("+note=${hydra:runtime.output_dir}", "+later=???", "optimizer.lr=2e-3")
    card = config_text.card(cfg, "python -m src.run optimizer.lr=2e-3")
    assert card.startswith("```\n$ python -m src.run optimizer.lr=2e-3\n```\n\n```yaml\n")
    config = yaml.safe_load(card.split("```yaml\n")[1].removesuffix("```"))
    assert config["pretrained"]["path"] == str(SHIPPED_WEIGHTS)  # was ${project_dir:}/weights/...
    assert config["optimizer"]["lr"] == 0.002
    assert (config["note"], config["later"]) == ("${hydra:runtime.output_dir}", "???")
