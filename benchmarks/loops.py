"""The contestants of the loop benchmarks (`overhead` on the CPU, `gpu` on a CUDA device): the
runner's own Trainer, a plain hand-written loop and a minimal PyTorch Lightning module, on the
same model initialisation, loader, batch, param groups and precision, timed in alternating
rounds.

Each contestant is a function `train(epochs) -> (wall seconds, process CPU seconds)`. On a
GPU the clock is read after `torch.cuda.synchronize()`, so the time is that of the work done,
not of the work queued.
"""

import contextlib
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.nn import functional as F

import src.run  # noqa: F401  registers the config resolvers
from src.optim.param_groups import optimizer_groups
from src.optim.resolve import resolve
from src.optim.specs import parse_specs
from src.runner import Runner
from src.tracking.logger import RunLogger

ROOT = Path(__file__).resolve().parents[1]
# trainer.precision -> (autocast dtype a hand-written loop uses, Lightning's precision)
PRECISIONS = {
    "32": (None, "32-true"),
    "bf16": (torch.bfloat16, "bf16-mixed"),
    "16": (torch.float16, "16-mixed"),
}


class Stopwatch:
    """Wall time and process CPU time (all of its threads, TensorBoard's writer included); on
    a GPU, after the work queued so far has finished."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sync()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def elapsed(self) -> tuple[float, float]:
        self._sync()
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def build_runner(overrides: list[str], run_dir: Path) -> Runner:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    runner = Runner(cfg, run_dir)
    runner.setup()
    return runner


def runner_contestant(runner: Runner, run_dir: Path):
    """The runner's own Trainer, built as `Runner.train` builds it; timed per training epoch."""
    trainer = runner.build_trainer(RunLogger(run_dir), OmegaConf.to_container(runner.cfg))

    def train(epochs: int) -> tuple[float, float]:
        watch = Stopwatch(runner.device)
        for _ in range(epochs):
            trainer.train_epoch()
        return watch.elapsed()

    return train


def same_groups(runner: Runner, model: torch.nn.Module) -> list[dict]:
    """The optimizer param groups the runner gives this model (decay / no-decay split too)."""
    specs = parse_specs(OmegaConf.to_container(runner.cfg.param_groups))
    optimizer = runner.cfg.optimizer
    roles = runner.check().source.roles(model)  # what the presets' roles select
    return optimizer_groups(
        resolve(model, specs, roles).groups,
        optimizer.lr,
        optimizer.get("weight_decay", 0.0),
        runner.cfg.weight_decay_1d,
        roles.no_weight_decay,
    )


def plain_contestant(runner: Runner, model: torch.nn.Module):
    """What one writes by hand: the same groups, lrs and optimizer, the seed's loop body, with
    the run's precision (autocast; a GradScaler for float16), memory format and compile."""
    options, device = runner.options, runner.device
    optimizer = instantiate(
        runner.cfg.optimizer, params=same_groups(runner, model), _convert_="all"
    )
    memory_format = torch.channels_last if options.channels_last else torch.preserve_format
    model.to(memory_format=memory_format)
    forward = torch.compile(model) if options.compile else model
    dtype = PRECISIONS[str(options.precision)][0]
    autocast = (
        (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    )
    scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 else None
    loader, on_device = runner.data.train_loader, runner.data.train_on_device

    def train(epochs: int) -> tuple[float, float]:
        watch = Stopwatch(device)
        model.train()
        for _ in range(epochs):
            for images, labels in loader:
                if on_device is None:
                    images = images.to(device, non_blocking=True, memory_format=memory_format)
                else:  # uint8 batches (a decoded cache): augmented and normalised on the device
                    images = on_device(images.to(device, non_blocking=True))
                    images = images.contiguous(memory_format=memory_format)
                labels = labels.to(device, non_blocking=True)
                with autocast():
                    loss = F.cross_entropy(forward(images), labels)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
        return watch.elapsed()

    return train


def lightning_contestant(runner: Runner, model: torch.nn.Module):
    """A minimal LightningModule on the same groups and loader: no logger, no checkpoints, no
    progress bar, no validation (the cheapest Lightning there is)."""
    import logging

    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # per-fit banners

    options, device = runner.options, runner.device
    groups = same_groups(runner, model)
    memory_format = torch.channels_last if options.channels_last else torch.preserve_format
    model.to(memory_format=memory_format)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_index):
            images, labels = batch
            # Lightning moves the batch to the device; the layout is the user's to set.
            images = images.to(memory_format=memory_format)
            return F.cross_entropy(self.model(images), labels)

        def configure_optimizers(self):
            return instantiate(runner.cfg.optimizer, params=groups, _convert_="all")

    class EpochTimer(L.Callback):
        """Times the epochs only: building a Trainer and `fit`'s set-up are not Lightning's
        per-step cost."""

        def on_train_epoch_start(self, trainer, module):
            self.watch = Stopwatch(device)

        def on_train_epoch_end(self, trainer, module):
            wall, cpu = self.watch.elapsed()
            self.seconds = (self.seconds[0] + wall, self.seconds[1] + cpu)

    module = Module()
    loader = runner.data.train_loader
    timer = EpochTimer()

    def train(epochs: int) -> tuple[float, float]:
        timer.seconds = (0.0, 0.0)
        trainer = L.Trainer(
            callbacks=[timer],
            max_epochs=epochs,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index or 0] if device.type == "cuda" else 1,
            precision=PRECISIONS[str(options.precision)][1],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        trainer.fit(module, loader)
        return timer.seconds

    return train


def has_lightning() -> bool:
    try:
        import lightning  # noqa: F401
    except ImportError:
        return False
    return True


# Long: one measurement from set-up to ratios; its steps share the contestants and timings
def measure(
    overrides: list[str],
    epochs: int,
    rounds: int,
    lightning: bool,
    twin: bool = True,
    after_rounds: Callable[[Runner, dict], dict] | None = None,
) -> dict:
    """Every contestant warmed up for one epoch (its first-epoch time kept: compilation shows
    there), then `rounds` rounds of `epochs` epochs each, in an order that rotates between
    rounds. Returns images/s of each (best round) and its ratios to the plain loop; on a GPU
    also each one's peak memory above what it held before its epochs.

    "twin" is a second plain loop on its own copy of the model: the same code, so its ratio to
    the plain loop is the run's noise floor. `after_rounds(runner, contestants)` may add to
    the result (e.g. a profile), with every contestant still warm.
    """
    with tempfile.TemporaryDirectory() as tmp:
        runner = build_runner(overrides, Path(tmp))
        device = runner.device
        initial = copy.deepcopy(runner.model)  # every contestant starts from the same weights
        contestants = {"plain": plain_contestant(runner, copy.deepcopy(initial))}
        if twin:
            contestants["twin"] = plain_contestant(runner, copy.deepcopy(initial))
        contestants["runner"] = runner_contestant(runner, Path(tmp))
        if lightning:
            contestants["lightning"] = lightning_contestant(runner, copy.deepcopy(initial))
        del initial
        images = len(runner.data.train_loader.dataset) * epochs
        first_epoch = {k: train(1)[0] for k, train in contestants.items()}
        seconds = {k: [] for k in contestants}
        peak = dict.fromkeys(contestants, 0)
        order = list(contestants)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for key in order[shift:] + order[:shift]:
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                    held = torch.cuda.memory_allocated(device)
                seconds[key].append(contestants[key](epochs))
                if device.type == "cuda":
                    peak[key] = max(peak[key], torch.cuda.max_memory_allocated(device) - held)
            times = "  ".join(
                f"{k} {v[-1][0]:.3f} s ({v[-1][1]:.3f} s cpu)" for k, v in seconds.items()
            )
            print(f"  round {round_index + 1}/{rounds}: {times}", flush=True)
        extra = after_rounds(runner, contestants) if after_rounds else {}
        groups = len(runner.optimizer.param_groups)
    result = {"images_per_measurement": images, "optimizer_groups": groups, **extra}
    for key, times in seconds.items():
        steady = statistics.median(wall for wall, _ in times) / epochs
        result[key] = {
            "images_per_s": images / min(wall for wall, _ in times),
            "first_epoch_s": first_epoch[key],
            "steady_epoch_s": steady,
            "peak_memory": peak[key] if device.type == "cuda" else None,
        }
        for clock, label in ((0, "wall"), (1, "cpu")):
            plain = [t[clock] for t in seconds["plain"]]
            own = [t[clock] for t in times]
            # The fastest of each: the least disturbed by other processes.
            result[key][f"{label}_ratio_of_best"] = min(plain) / min(own)
            result[key][f"{label}_median_ratio"] = statistics.median(
                p / t for p, t in zip(plain, own, strict=True)
            )
    return result
