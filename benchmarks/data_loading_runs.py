"""The data loading benchmark's whole runs (benchmarks/data_loading.py runs them):

- `lenet`: a folder of 400x300 JPEGs trains LeNet at 32 pixels with dataset.cache=true and
  false, the same DataLoader workers; seconds per epoch (training and validation) from epoch 2
  on, the contestants alternating run by run. Target: >= 3x faster with the cache.
- `accuracy`: the embedded digits written as PNG class folders (the 8x8 images scaled to
  32x32), LeNet from scratch, cache on and off, several seeds: val/acc mean and std. The
  cache must leave accuracy unchanged within seed noise.
"""

import itertools
import statistics
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from PIL import Image

from benchmarks.gpu_data import write_photo_folder
from src.config import resolvers, schema
from src.data.digits import read_digits
from src.runner import Runner
from src.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
resolvers.register()
schema.register()  # before Hydra composes: the config files start from the schemas


def run(run_dir: Path, *overrides: str) -> tuple[dict, list[float]]:
    """One training run in this process: its metrics and the seconds of each epoch (from the
    start of one epoch's training to the start of the next's, the last to the end of fit)."""
    starts = []
    train_epoch, fit = Trainer.train_epoch, Trainer.fit

    def timed_epoch(self):
        starts.append(time.perf_counter())
        return train_epoch(self)

    def timed_fit(self):
        state = fit(self)
        starts.append(time.perf_counter())
        return state

    Trainer.train_epoch, Trainer.fit = timed_epoch, timed_fit
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides))
        metrics = Runner(cfg, run_dir).run()
    finally:
        Trainer.train_epoch, Trainer.fit = train_epoch, fit
    return metrics, [b - a for a, b in itertools.pairwise(starts)]


def folder_run(root: Path, cache_dir: Path, cache: bool, *overrides: str) -> list[str]:
    return [
        "dataset=image_folder",
        f"dataset.root={root}",
        f"dataset.cache={str(cache).lower()}",
        f"dataset.cache_dir={cache_dir}",
        "model=lenet",
        "pretrained=none",
        "trainer.log_every_n_steps=1000",
        *overrides,
    ]


def lenet_epochs(work: Path, smoke: bool) -> dict:
    classes, per_class, epochs, rounds = (2, 8, 2, 1) if smoke else (10, 30, 4, 2)
    root = write_photo_folder(work / "photos", classes, per_class, 10, size=(400, 300))
    workers = 1 if smoke else 2
    options = [
        f"trainer.max_epochs={epochs}",
        f"dataset.num_workers={workers}",
        "dataset.persistent_workers=true",
    ]
    seconds = {"today": [], "cached": []}
    for r in range(rounds):
        for name in ("today", "cached"):
            overrides = folder_run(root, work / "cache", name == "cached", *options)
            _, per_epoch = run(work / f"{name}{r}", *overrides)
            seconds[name].append(per_epoch)
    later = {
        name: statistics.median(s for runs in values for s in runs[1:])
        for name, values in seconds.items()
    }
    return {
        "images": classes * (per_class + 10),
        "workers": workers,
        "epoch_seconds": seconds,
        "epoch_2_on_median_s": later,
        "speedup_epoch_2_on": later["today"] / later["cached"],
    }


def write_digit_folder(root: Path) -> Path:
    """root/<digit>/<i>.png: the 1,797 embedded digits, 8x8 (0-16) scaled to 32x32 grey."""
    pixels, labels = read_digits()
    for i, (image, label) in enumerate(zip(pixels, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray(np.clip(image * 16, 0, 255).astype(np.uint8), "L")
        grey.resize((32, 32), Image.Resampling.BILINEAR).save(folder / f"{i}.png")
    return root


def accuracy(work: Path, smoke: bool) -> dict:
    seeds, epochs = ((0,), 1) if smoke else ((0, 1, 2), 10)
    root = write_digit_folder(work / "digits")
    results = {}
    for augment in ("none", "basic"):
        for cache in (False, True):
            name = f"augment={augment} cache={str(cache).lower()}"
            accs = []
            for seed in seeds:
                overrides = folder_run(
                    root,
                    work / "cache",
                    cache,
                    f"seed={seed}",
                    f"dataset.augment={augment}",
                    f"trainer.max_epochs={epochs}",
                )
                metrics, _ = run(work / f"{augment}-{cache}-{seed}", *overrides)
                accs.append(metrics["val/acc"])
            results[name] = accs
    return {"seeds": list(seeds), "epochs": epochs, "val_acc": results}


def show_lenet(result: dict) -> None:
    print(
        f"lenet: {result['images']} JPEGs (400x300) at 32 px, {result['workers']} workers; "
        "seconds per epoch, runs alternating"
    )
    for name, runs in result["epoch_seconds"].items():
        for seconds in runs:
            print(f"  {name:<8}" + "".join(f"{s:8.2f}" for s in seconds))
    later = result["epoch_2_on_median_s"]
    print(
        f"  epoch 2+ median: today {later['today']:.2f} s, cached {later['cached']:.2f} s: "
        f"{result['speedup_epoch_2_on']:.2f}x faster"
    )


def show_accuracy(result: dict) -> None:
    print(
        f"accuracy: digits as PNG folders, LeNet, {result['epochs']} epochs, seeds {result['seeds']}"
    )
    for name, accs in result["val_acc"].items():
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"  {name:<28} val/acc {statistics.mean(accs):.4f} ± {spread:.4f}  {accs}")
