"""The real CLI, end to end, on the embedded digits: outputs, TensorBoard values, sweeps, errors."""

import json
import subprocess
import sys
from datetime import datetime

import pytest
import torch

from src.models.lenet import LeNet
from src.pretrained.files import read_state_dict
from src.pretrained.load import load_pretrained
from src.training.checkpoints import MODEL, PROGRESS
from tests.conftest import (
    ROOT,
    assert_one_clear_line,
    read_scalars,
    read_texts,
    run_cli,
    run_cli_here,
    run_python,
)
from tests.pretrained_sources import source_roles

pytestmark = pytest.mark.e2e  # every test runs the CLI

SHIPPED = ROOT / "weights" / "lenet_digits_0-4.pt"
# The default pretrained config keeps the shipped head out; the report says the config did.
EXCLUDED_BY_DEFAULT = (
    "excluded       2 by role head, set by the config files (pretrained=digits_0to4), not the "
    "command line: fc3.weight, fc3.bias"
)


def assert_ratio_at_every_step(scalars, group, ratio):
    base, boosted = scalars["lr/default"], scalars[f"lr/{group}"]
    assert [s for s, _ in base] == [s for s, _ in boosted] and len(base) > 3
    for (_, lr_base), (_, lr_group) in zip(base, boosted, strict=True):
        assert lr_group == pytest.approx(ratio * lr_base, rel=1e-6)


def test_fc3_boost_trains_fc3_at_ten_times_the_base_lr_at_every_logged_step(tmp_path):
    run_dir = tmp_path / "run"
    run_cli(
        "param_groups=fc3_boost",
        "scheduler=cosine",
        "trainer.max_epochs=2",
        f"hydra.run.dir={run_dir}",
    )

    scalars = read_scalars(run_dir)
    assert_ratio_at_every_step(scalars, "fc3", 10)
    assert scalars["lr/default"][0] == (0, pytest.approx(0.001))
    assert scalars["lr/default"][-1][1] < 0.0009  # the cosine schedule moved both groups
    assert {"train/loss", "val/loss", "val/acc"} <= scalars.keys()

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/acc"] == pytest.approx(scalars["val/acc"][-1][1])
    assert metrics["val/loss"] == pytest.approx(scalars["val/loss"][-1][1])
    assert metrics["epochs"] == 2 and metrics["train/loss"] > 0

    groups = json.loads((run_dir / "param_groups.json").read_text())["groups"]
    assert [(g["name"], g["lr"], g["params"]) for g in groups][1] == (
        "fc3",
        pytest.approx(0.01),
        ["fc3.weight", "fc3.bias"],
    )
    texts = read_texts(run_dir)
    assert "fc3      ^fc3\\.      10" in texts["param_groups"]
    assert EXCLUDED_BY_DEFAULT in texts["pretrained"]
    assert "lr_mult: 10" in texts["config"]

    report = json.loads((run_dir / "pretrained_report.json").read_text())
    assert report["excluded"] == ["fc3.weight", "fc3.bias"] and len(report["loaded"]) == 8

    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    model = LeNet(1, 5)
    model.load_state_dict(checkpoint[MODEL])
    # fine-tuning moved the pretrained body away from the shipped weights
    assert not torch.equal(model.conv1.weight, read_state_dict(SHIPPED)["conv1.weight"])


def test_default_run_fine_tunes_digits_5_to_9_to_at_least_90_percent(tmp_path):
    result = run_cli(f"hydra.run.dir={tmp_path}")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["val/acc"] >= 0.90, result.stdout
    assert "loaded         8 tensors" in result.stdout


def test_a_run_into_a_closed_pipe_trains_to_the_end_quietly(tmp_path):
    """`python -m src.run | head -2`: the reader gone after the first lines; the run goes on,
    run.log keeps every line, and stderr carries no logging error per line."""
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "src.run", f"hydra.run.dir={tmp_path}", "trainer.max_epochs=2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader_gone.stdout.readline()
    reader_gone.stdout.close()  # as `head` exits
    stderr = reader_gone.stderr.read()
    assert reader_gone.wait(timeout=300) == 0, stderr
    assert "Logging error" not in stderr and "Traceback" not in stderr, stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["val/acc"] > 0.5
    assert f"finished: {tmp_path}" in (tmp_path / "run.log").read_text()


# `python -m src.run`, reporting the garbage collector's state at the first optimizer step.
COLLECTOR_AT_FIRST_STEP = """
import gc, os, runpy, sys
from torch.optim.optimizer import register_optimizer_step_pre_hook

def first_step(*_):
    print("collector on:", gc.isenabled(), "frozen:", gc.get_freeze_count(), flush=True)
    os._exit(0)

register_optimizer_step_pre_hook(first_step)
sys.argv = ["src.run", *sys.argv[1:]]
runpy.run_module("src.run", run_name="__main__", alter_sys=True)
"""


def test_training_collects_garbage_and_never_rescans_start_up_objects(tmp_path):
    # The command starts up with Python's collector off (src/run.py): left off, a long run
    # could grow without bound; on, it must not scan start-up's objects again.
    result = run_python("-c", COLLECTOR_AT_FIRST_STEP, f"hydra.run.dir={tmp_path}")
    state = result.stdout.splitlines()[-1].split()
    assert state[:3] == ["collector", "on:", "True"], result.stdout + result.stderr
    assert int(state[-1]) > 100_000  # torch's own objects, at the least


def test_multirun_writes_one_run_per_job_each_with_its_own_ratio(tmp_path):
    run_cli(
        "-m",
        "param_groups=fc3_boost",
        "param_groups.fc3.lr_mult=1,100",
        "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    for mult in (1, 100):
        # named by the swept key's short form and the job's value
        assert_ratio_at_every_step(read_scalars(tmp_path / f"lr_mult={mult}"), "fc3", mult)


def test_dry_run_explains_and_trains_nothing(tmp_path):
    result = run_cli("dry_run=true", "param_groups=fc3_boost", f"hydra.run.dir={tmp_path}")
    assert "fc3      ^fc3\\.      10       0.01   2        425" in result.stdout
    assert EXCLUDED_BY_DEFAULT in result.stdout
    assert (tmp_path / "param_groups.json").exists()
    assert not (tmp_path / "checkpoints").exists()
    assert not list(tmp_path.glob("events.out.tfevents.*"))


def test_pretrain_experiment_makes_a_checkpoint_like_the_shipped_one(tmp_path):
    run_cli("experiment=pretrain_digits", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    made = read_state_dict(tmp_path / "checkpoints" / "last.pt")
    shipped = read_state_dict(SHIPPED)
    assert {k: v.shape for k, v in made.items()} == {k: v.shape for k, v in shipped.items()}
    report = load_pretrained(LeNet(1, 5), tmp_path / "checkpoints" / "last.pt", source_roles)
    assert len(report.loaded) == 10 and not report.skipped_shape


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(tmp_path):
    run_cli_here("trainer.max_epochs=3", f"hydra.run.dir={tmp_path / 'whole'}")
    run_cli_here("trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'split'}")
    before = datetime.now().replace(microsecond=0)
    run_cli_here("trainer.max_epochs=3", "resume=true", f"hydra.run.dir={tmp_path / 'split'}")
    # The resume's launch record, named by when it was launched, beside the first.
    (resumed,) = (tmp_path / "split/.hydra").glob("resume_*")
    assert before <= datetime.strptime(resumed.name, "resume_%Y-%m-%d_%H-%M-%S") <= datetime.now()
    assert "resume=true" in (resumed / "overrides.yaml").read_text()
    assert "resume=true" not in (tmp_path / "split/.hydra/overrides.yaml").read_text()
    whole = torch.load(tmp_path / "whole/checkpoints/last.pt", weights_only=True)
    split = torch.load(tmp_path / "split/checkpoints/last.pt", weights_only=True)
    assert split[PROGRESS]["epoch"] == 3
    for key, tensor in whole[MODEL].items():
        assert torch.equal(tensor, split[MODEL][key]), key


def test_a_finished_run_dir_is_never_overwritten(tmp_path):
    run_cli_here("trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    before = {
        p: p.read_bytes() for p in [tmp_path / "metrics.json", tmp_path / "checkpoints/last.pt"]
    }
    result = run_cli_here("trainer.max_epochs=2", f"hydra.run.dir={tmp_path}", check=False)
    assert_one_clear_line(result, "already holds a trained run")
    assert all(p.read_bytes() == content for p, content in before.items())
