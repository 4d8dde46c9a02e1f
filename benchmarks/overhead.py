"""Training-loop overhead: the runner's loop against a plain hand-written loop (and PyTorch
Lightning when it is installed) on the same model, loader, batch and param groups, CPU only.

Run from the repository root:

    python -m benchmarks.overhead                # runner vs plain loop
    python -m benchmarks.overhead --workload lenet_digits_b64 --rounds-scale 2

Lightning is timed too when the Python running the benchmark can import it; keep it out of
the project's environment, e.g. in a virtual environment that sees the project's packages
(`python -m venv --system-site-packages VENV && VENV/bin/pip install lightning`), and run
`VENV/bin/python -m benchmarks.overhead` from the repository root.

Each round trains every contestant for the same number of epochs, in an order that rotates
between rounds, so load from other processes falls on all of them alike. Printed: images/s
of each and its ratio to the plain loop, best round against best round and the median of
per-round ratios, in wall time and in process CPU time (the time the process ran, not the
time it waited for a core: steadier on a shared machine). Target: runner >= 0.98x.

"twin" is a second plain loop on its own copy of the model: the same code, so its ratio to
the plain loop is the run's noise floor. On a shared machine two identical loops drift
apart by a few percent; a difference between contestants smaller than the twin's is noise.
"""

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.nn import functional as F

import src.run  # noqa: F401  registers the config resolvers
from src.optim.param_groups import optimizer_groups
from src.optim.resolve import resolve
from src.optim.specs import parse_specs
from src.runner import Runner
from src.tracking.logger import RunLogger

ROOT = Path(__file__).resolve().parents[1]

ALL_DIGITS = "dataset.classes=[0,1,2,3,4,5,6,7,8,9]"
WORKLOADS = {
    # name: (overrides, epochs per measurement, rounds)
    "lenet_digits_b64": (
        [ALL_DIGITS, "dataset.batch_size=64", "pretrained=none", "param_groups=fc3_boost"],
        3,
        30,
    ),
    "resnet18_64px_b32": (
        [
            ALL_DIGITS,
            "dataset.shots_per_class=16",
            "dataset.image_size=64",
            "dataset.batch_size=32",
            "model=resnet18",
            "pretrained=none",
            "+param_groups.head={pattern: '^fc\\.', lr_mult: 10}",
        ],
        1,
        10,
    ),
}


class Stopwatch:
    """Wall time and process CPU time (all of its threads, TensorBoard's writer included)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def build_runner(overrides: list[str], run_dir: Path) -> Runner:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "trainer.device=cpu"])
    runner = Runner(cfg, run_dir)
    runner.setup()
    return runner


def runner_contestant(runner: Runner, run_dir: Path):
    """The runner's own Trainer, built as `Runner.train` builds it; timed per training epoch."""
    trainer = runner.build_trainer(RunLogger(run_dir), OmegaConf.to_container(runner.cfg))

    def train(epochs: int) -> tuple[float, float]:
        watch = Stopwatch()
        for _ in range(epochs):
            trainer.train_epoch()
        return watch.elapsed()

    return train


def same_groups(runner: Runner, model: torch.nn.Module) -> list[dict]:
    """The optimizer param groups the runner gives this model (decay / no-decay split too)."""
    specs = parse_specs(OmegaConf.to_container(runner.cfg.param_groups))
    optimizer = runner.cfg.optimizer
    return optimizer_groups(
        resolve(model, specs).groups,
        optimizer.lr,
        optimizer.weight_decay,
        runner.cfg.weight_decay_1d,
    )


def plain_contestant(runner: Runner, model: torch.nn.Module):
    """What one writes by hand: the same groups and lrs, the seed's loop body."""
    groups = same_groups(runner, model)
    optimizer = torch.optim.SGD(
        groups,
        lr=runner.cfg.optimizer.lr,
        momentum=runner.cfg.optimizer.momentum,
        weight_decay=runner.cfg.optimizer.weight_decay,
    )
    loader = runner.data.train_loader

    def train(epochs: int) -> tuple[float, float]:
        watch = Stopwatch()
        model.train()
        for _ in range(epochs):
            for images, labels in loader:
                loss = F.cross_entropy(model(images), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return watch.elapsed()

    return train


def lightning_contestant(runner: Runner, model: torch.nn.Module):
    """A minimal LightningModule on the same groups and loader: no logger, no checkpoints, no
    progress bar, no validation (the cheapest Lightning there is)."""
    import logging

    import lightning as L

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # per-fit banners

    lr = runner.cfg.optimizer.lr
    groups = same_groups(runner, model)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_index):
            images, labels = batch
            return F.cross_entropy(self.model(images), labels)

        def configure_optimizers(self):
            return torch.optim.SGD(
                groups,
                lr=lr,
                momentum=runner.cfg.optimizer.momentum,
                weight_decay=runner.cfg.optimizer.weight_decay,
            )

    class EpochTimer(L.Callback):
        """Times the epochs only: building a Trainer and `fit`'s set-up are not Lightning's
        per-step cost."""

        def on_train_epoch_start(self, trainer, module):
            self.watch = Stopwatch()

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
            accelerator="cpu",
            devices=1,
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


def measure(name: str, overrides: list[str], epochs: int, rounds: int, lightning: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runner = build_runner(overrides, Path(tmp))
        initial = copy.deepcopy(runner.model)  # every contestant starts from the same weights
        contestants = {
            "plain": plain_contestant(runner, copy.deepcopy(initial)),
            "twin": plain_contestant(runner, copy.deepcopy(initial)),
            "runner": runner_contestant(runner, Path(tmp)),
        }
        if lightning:
            contestants["lightning"] = lightning_contestant(runner, copy.deepcopy(initial))
        images = len(runner.data.train_loader.dataset) * epochs
        for train in contestants.values():
            train(1)  # warm-up: allocator, thread pools, first-call paths
        seconds = {k: [] for k in contestants}
        order = list(contestants)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for key in order[shift:] + order[:shift]:
                seconds[key].append(contestants[key](epochs))
            times = "  ".join(
                f"{k} {v[-1][0]:.3f} s ({v[-1][1]:.3f} s cpu)" for k, v in seconds.items()
            )
            print(f"  round {round_index + 1}/{rounds}: {times}", flush=True)
    result = {"workload": name, "images_per_measurement": images}
    for key, times in seconds.items():
        result[key] = {"images_per_s": images / min(wall for wall, _ in times)}
        for clock, label in ((0, "wall"), (1, "cpu")):
            plain = [t[clock] for t in seconds["plain"]]
            own = [t[clock] for t in times]
            # The fastest of each: the least disturbed by other processes.
            result[key][f"{label}_ratio_of_best"] = min(plain) / min(own)
            result[key][f"{label}_median_ratio"] = statistics.median(
                p / t for p, t in zip(plain, own, strict=True)
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=list(WORKLOADS), action="append")
    parser.add_argument("--rounds-scale", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        import lightning  # noqa: F401

        has_lightning = True
    except ImportError:
        has_lightning = False
        print("lightning not installed: runner vs plain loop only")
    torch.manual_seed(0)
    # One intra-op thread: on a shared machine, threads that spin-wait for a busy core slow
    # every contestant by whole multiples; one thread keeps the comparison about the loop.
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.workload or list(WORKLOADS):
        overrides, epochs, rounds = WORKLOADS[name]
        print(f"\n{name}", flush=True)
        result = measure(
            name, overrides, epochs, max(2, round(rounds * args.rounds_scale)), has_lightning
        )
        print(f"{name}: {result['images_per_measurement']} images per measurement")
        for key in ("plain", "twin", "runner", "lightning"):
            if key in result:
                r = result[key]
                print(
                    f"  {key:<10} {r['images_per_s']:8.0f} img/s (best round)   x plain, "
                    f"best vs best / median of per-round ratios: wall "
                    f"{r['wall_ratio_of_best']:.3f} / {r['wall_median_ratio']:.3f}   cpu "
                    f"{r['cpu_ratio_of_best']:.3f} / {r['cpu_median_ratio']:.3f}"
                )


if __name__ == "__main__":
    main()
