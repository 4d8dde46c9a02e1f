"""Trainer options, in-process on few-shot digits: precision, channels_last, compile,
gradient accumulation and clipping, the best checkpoint, the progress bar, host syncs."""

import json
import os
import pty
import subprocess
import sys
import termios

import pytest
import torch

from src.config import sweep
from src.errors import GroupwiseError
from src.runner import Runner
from src.tracking.logger import RunLogger
from src.training import progress
from src.training.checkpoints import GRAD_SCALER, MODEL, PROGRESS, load_checkpoint
from tests.conftest import CLI, ROOT, compose_config

FEW = ["dataset.shots_per_class=8", "trainer.max_epochs=2"]  # 40 images: 3 batches of 16


def trained(make_cfg, tmp_path, *overrides, name="run") -> Runner:
    runner = Runner(make_cfg(*FEW, *overrides), tmp_path / name)
    runner.metrics = runner.run()
    return runner


def weights(runner: Runner) -> dict[str, torch.Tensor]:
    return load_checkpoint(runner.checkpoint_path)[MODEL]


def record_compute_dtypes(runner: Runner) -> list[torch.dtype]:
    dtypes = []
    runner.model.conv1.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    return dtypes


@pytest.mark.e2e
@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("16", torch.float16)])
def test_lower_precision_computes_in_it_and_keeps_float32_weights(
    make_cfg, tmp_path, precision, dtype
):
    runner = Runner(make_cfg(*FEW, f"trainer.precision={precision}"), tmp_path)
    runner.setup()
    dtypes = record_compute_dtypes(runner)
    runner.train()
    assert set(dtypes) == {dtype}
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())
    history = load_checkpoint(runner.checkpoint_path)[PROGRESS]["history"]
    assert history[1]["train/loss"] < history[0]["train/loss"]  # it learns
    scaler = load_checkpoint(runner.checkpoint_path)[GRAD_SCALER]
    # float16 scales the loss (and saves the scale to resume with); bfloat16 needs no scaler.
    assert (scaler.get("scale", 0) > 1) == (precision == "16")


@pytest.mark.e2e
def test_precision_32_trains_in_float32_and_a_wrong_value_is_an_error(make_cfg, tmp_path):
    runner = Runner(make_cfg(*FEW), tmp_path)
    runner.setup()
    dtypes = record_compute_dtypes(runner)
    runner.train()
    assert set(dtypes) == {torch.float32}
    with pytest.raises(GroupwiseError, match=r"trainer.precision=8: must be one of 32, bf16, 16"):
        Runner(make_cfg(*FEW, "trainer.precision=8"), tmp_path / "bad").run()


@pytest.mark.e2e
def test_channels_last_trains_the_same_network_in_nhwc(make_cfg, tmp_path):
    plain = trained(make_cfg, tmp_path, name="plain")
    nhwc = trained(make_cfg, tmp_path, "trainer.channels_last=true", name="nhwc")
    assert nhwc.model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    for key, tensor in weights(plain).items():
        torch.testing.assert_close(weights(nhwc)[key], tensor, rtol=1e-4, atol=1e-5)


@pytest.mark.e2e
def test_accumulating_two_half_batches_equals_one_whole_batch(make_cfg, tmp_path):
    whole = trained(make_cfg, tmp_path, "dataset.batch_size=16", name="whole")
    halves = trained(
        make_cfg,
        tmp_path,
        "dataset.batch_size=8",
        "trainer.accumulate_grad_batches=2",
        "trainer.log_every_n_steps=1",
        name="halves",
    )
    # 40 images: batches (16, 16, 8) against (8+8, 8+8, 8); the last step sums over one batch.
    assert load_checkpoint(halves.checkpoint_path)[PROGRESS]["global_step"] == 6
    for key, tensor in weights(whole).items():
        torch.testing.assert_close(weights(halves)[key], tensor, rtol=1e-4, atol=1e-6)


def grad_norms_at_each_step(runner: Runner) -> list[float]:
    norms = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for p in runner.model.parameters() if p.grad is not None]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    runner.optimizer.register_step_pre_hook(record)
    return norms


@pytest.mark.e2e
@pytest.mark.parametrize("precision", ["32", "16"])
def test_grad_clip_caps_the_norm_the_optimizer_steps_with(make_cfg, tmp_path, precision):
    norms = {}
    for clip in ("null", "0.05"):
        runner = Runner(
            make_cfg(*FEW, f"trainer.precision={precision}", f"trainer.grad_clip={clip}"),
            tmp_path / clip,
        )
        runner.setup()
        norms[clip] = grad_norms_at_each_step(runner)
        runner.train()
    assert len(norms["0.05"]) >= 3  # fp16 skips the steps whose gradients overflowed
    assert max(norms["null"]) > 0.1  # unclipped, the gradients are larger than the cap
    assert max(norms["0.05"]) <= 0.05 * (1 + 1e-4)  # unscaled first, then clipped


@pytest.mark.e2e
def test_best_checkpoint_follows_the_monitored_metric(make_cfg, tmp_path):
    runner = trained(make_cfg, tmp_path, "trainer.max_epochs=4", "trainer.monitor=val/loss")
    history = load_checkpoint(runner.checkpoint_path)[PROGRESS]["history"]
    best = min(history, key=lambda h: h["val/loss"])
    saved = load_checkpoint(runner.checkpoint_path.with_name("best.pt"))
    assert saved[PROGRESS]["epoch"] == best["epoch"]
    assert saved[PROGRESS]["best_score"] == pytest.approx(best["val/loss"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best"] == {
        "metric": "val/loss",
        "value": pytest.approx(best["val/loss"]),
        "epoch": best["epoch"],
        "val/acc": pytest.approx(best["val/acc"]),  # what a sweep ranks this run by
    }


@pytest.mark.e2e
def test_no_monitor_no_best_checkpoint_and_unknown_metrics_are_errors(make_cfg, tmp_path):
    runner = trained(make_cfg, tmp_path, "trainer.monitor=null")
    assert runner.checkpoint_path.exists()
    assert not runner.checkpoint_path.with_name("best.pt").exists()
    assert "best" not in runner.metrics
    cfg = make_cfg(
        *FEW,
        "trainer.precision=64",
        "trainer.monitor=val/f1",
        "trainer.accumulate_grad_batches=0",
        "trainer.grad_clip=-1",
    )
    with pytest.raises(GroupwiseError) as err:
        Runner(cfg, tmp_path / "bad").run()
    assert [p.split(":")[0] for p in err.value.problems] == [
        "trainer.precision=64",
        "trainer.accumulate_grad_batches=0",
        "trainer.grad_clip=-1",
        "trainer.monitor=val/f1",
    ]


def test_the_host_reads_a_value_only_where_one_is_logged(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg(
        "dataset.shots_per_class=20", "trainer.log_every_n_steps=3", "trainer.grad_clip=1.0"
    )
    runner = Runner(cfg, tmp_path)
    runner.setup()
    trainer = runner.build_trainer(RunLogger(tmp_path / "tb"), config={})
    reads = []

    def counted(method):
        original = getattr(torch.Tensor, method)

        def read(self, *args):
            # The sampler's index lists are CPU tensors by design; any other read is a sync.
            if "torch/utils/data" not in sys._getframe(1).f_code.co_filename:
                reads.append(method)
            return original(self, *args)

        return read

    for method in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, method, counted(method))
    trainer.train_epoch()
    monkeypatch.undo()
    steps = len(runner.data.train_loader)  # 100 images: 7 steps, logged at 0, 3, 6
    # Each logged step: one transfer of all groups' grad norms and update ratios, the loss,
    # and the NaN guard's look at the losses since the last check; then the epoch's mean.
    assert steps == 7 and reads == ["tolist", "item", "tolist"] * 3 + ["item"]


def test_compile_keeps_plain_parameter_names_in_checkpoints(make_cfg, tmp_path):
    runner = Runner(make_cfg(*FEW, "trainer.compile=true"), tmp_path)
    runner.setup()
    trainer = runner.build_trainer(logger=None, config={})
    assert isinstance(trainer.wrapped_model, torch._dynamo.eval_frame.OptimizedModule)
    trainer.save()  # before any step: compiling happens at the first call
    assert set(load_checkpoint(runner.checkpoint_path)[MODEL]) == set(runner.model.state_dict())


@pytest.mark.e2e
@pytest.mark.slow  # inductor compiles for minutes on a loaded 2-core machine
def test_compiled_training_matches_eager_training(make_cfg, tmp_path):
    eager = trained(make_cfg, tmp_path, "trainer.max_epochs=1", name="eager")
    compiled = trained(make_cfg, tmp_path, "trainer.max_epochs=1", "trainer.compile=true")
    for key, tensor in weights(eager).items():
        torch.testing.assert_close(weights(compiled)[key], tensor, rtol=1e-3, atol=1e-4)


@pytest.mark.e2e
def test_progress_bar_on_a_terminal_shows_images_per_second_loss_and_lr(tmp_path):
    leader, follower = pty.openpty()
    termios.tcsetwinsize(follower, (24, 200))  # a new pty is 0 columns wide: tqdm draws nothing
    command = [*CLI, *FEW, "trainer.log_every_n_steps=1", f"hydra.run.dir={tmp_path}"]
    job = subprocess.Popen(command, cwd=ROOT, stderr=follower)
    os.close(follower)
    output = b""
    while chunk := _read(leader):
        output += chunk
    assert job.wait(timeout=300) == 0
    text = output.decode(errors="replace")
    assert "epoch 2" in text and "img/s" in text
    assert "loss=" in text and "lr=0.001" in text


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # the job closed the terminal: everything was read
        return b""


def test_progress_bar_stays_off_without_a_terminal_and_in_parallel_sweeps(monkeypatch, tmp_path):
    from src.run import _launch

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress.wanted()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress.wanted()  # a terminal, no Hydra job: e.g. a notebook or a script
    for overrides, parallel in [
        (["hydra.mode=RUN"], False),
        (["hydra.mode=MULTIRUN"], False),  # the basic launcher: one job after another
        (["hydra.mode=MULTIRUN", "hydra/launcher=joblib"], True),
        (["hydra.mode=MULTIRUN", "hydra/launcher=submitit_local"], True),
    ]:
        cfg = compose_config(*overrides, f"hydra.sweep.dir={tmp_path}", with_hydra=True)
        sweep.SweptKeys().on_multirun_start(config=cfg)  # as a sweep's launch does
        launch = _launch(cfg, cfg.hydra)  # what the entry point reads of Hydra's state
        assert launch.parallel_sweep is parallel, overrides
        assert progress.wanted(launch.parallel_sweep) is not parallel, overrides


def test_the_progress_bar_counts_whole_images():
    bar = progress.ProgressBar(538, 1, enabled=True)
    bar.advance(32)
    assert "| 32/538 [" in str(bar.bar)  # not 32.0/538
    bar.close()
