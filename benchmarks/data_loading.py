"""The decoded cache (`dataset.cache=true`) against today's loader, on the CPU, in one run:

    python -m benchmarks.data_loading [--smoke] [--out DIR]

1. `loader`: images/s delivered as training batches at 224 pixels (ResNet's preprocessing:
   resize 256, crop 224) from a folder of 400x300 JPEGs: today's loader (PIL decode,
   torchvision's transforms, float batches) against the cached path (uint8 crops from the
   memory-mapped cache, then the device stage, here on the CPU), the same DataLoader workers.
   Epoch 1 of the cache includes its build; epochs 2+ read it. `uint8`: the cached loader's
   batches without the device stage (what the loader delivers to a GPU, which then does that
   stage). The contestants alternate epoch by epoch, so a load from other processes falls on
   all. Target: >= 5x from epoch 2.
2. `lenet` and `accuracy` (benchmarks/data_loading_runs.py): whole runs.

Prints each figure and the ratios, writes DIR/results.json. `--smoke`: tiny folders, a few
epochs (tests/test_data_loading_benchmark.py).
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import data_loading_runs
from benchmarks.gpu_data import write_photo_folder
from src.config.dataset_schema import ImageFolderConfig
from src.data.image_folder import image_folder

FULL = {"classes": 10, "per_class": 80, "epochs": 4, "workers": 2, "batch_size": 64}
SMOKE = {"classes": 2, "per_class": 8, "epochs": 2, "workers": 1, "batch_size": 4}


def build_folder(root: Path, cache_dir: Path, cache: bool, workers: int, batch_size: int):
    """The image folder as a run at 224 pixels with ResNet-18's preprocessing builds it (the
    schema's defaults for every other option)."""
    options = ImageFolderConfig(
        _target_="src.data.image_folder.image_folder",
        root=str(root),
        batch_size=batch_size,
        transform_from="resnet18",
        cache=cache,
        cache_dir=str(cache_dir),
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    return image_folder(options, seed=0)


def epoch_images_per_s(data, device_stage: bool = True) -> float:
    """One pass over the training batches, as the trainer takes them (the device stage
    applied when the data has one, unless `device_stage` is false: the uint8 batches alone)."""
    images, start = 0, time.perf_counter()
    for batch, _ in data.train_loader:
        if data.train_on_device is not None and device_stage:
            batch = data.train_on_device(batch)
        images += len(batch)
    return images / (time.perf_counter() - start)


def loader_throughput(work: Path, sizes: dict) -> dict:
    root = write_photo_folder(
        work / "photos", sizes["classes"], sizes["per_class"], 2, size=(400, 300)
    )
    common = {"workers": sizes["workers"], "batch_size": sizes["batch_size"]}
    today = build_folder(root, work / "unused", cache=False, **common)
    runs = {"today": [], "cached": [], "uint8": []}
    cached = None
    for _ in range(sizes["epochs"]):
        runs["today"].append(epoch_images_per_s(today))
        if cached is None:  # epoch 1: the build, then the first pass
            start = time.perf_counter()
            cached = build_folder(root, work / "cache", cache=True, **common)
            build_s = time.perf_counter() - start
            n = len(cached.train_loader.dataset)
            first = epoch_images_per_s(cached)
            runs["cached"].append(n / (build_s + n / first))
        else:
            runs["cached"].append(epoch_images_per_s(cached))
        runs["uint8"].append(epoch_images_per_s(cached, device_stage=False))
    later = {name: statistics.median(values[1:]) for name, values in runs.items()}
    return {
        "images": len(today.train_loader.dataset),
        "workers": sizes["workers"],
        "batch_size": sizes["batch_size"],
        "images_per_s": runs,
        "epoch_2_on_median": later,
        "ratio_epoch_1": runs["cached"][0] / runs["today"][0],
        "ratio_epoch_2_on": later["cached"] / later["today"],
        "ratio_uint8_epoch_2_on": later["uint8"] / later["today"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny folders, a few epochs")
    parser.add_argument("--out", type=Path, help="where results.json goes")
    parser.add_argument("--parts", default="loader,lenet,accuracy")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the workers decode; the main process only sums batches
    sizes = SMOKE if args.smoke else FULL
    results = {"machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}"}
    with tempfile.TemporaryDirectory() as tmp:
        parts = args.parts.split(",")
        if "loader" in parts:
            results["loader"] = loader_throughput(Path(tmp) / "loader", sizes)
            show_loader(results["loader"])
        if "lenet" in parts:
            results["lenet"] = data_loading_runs.lenet_epochs(Path(tmp) / "lenet", args.smoke)
            data_loading_runs.show_lenet(results["lenet"])
        if "accuracy" in parts:
            results["accuracy"] = data_loading_runs.accuracy(Path(tmp) / "acc", args.smoke)
            data_loading_runs.show_accuracy(results["accuracy"])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def show_loader(result: dict) -> None:
    print(
        f"loader: {result['images']} training images (400x300 JPEG) at 224 px, batch "
        f"{result['batch_size']}, {result['workers']} workers; images/s per epoch"
    )
    for name, values in result["images_per_s"].items():
        print(f"  {name:<8}" + "".join(f"{v:10.1f}" for v in values))
    print(
        f"  cached / today: epoch 1 (with the build) {result['ratio_epoch_1']:.2f}x, "
        f"epoch 2+ (median) {result['ratio_epoch_2_on']:.2f}x; the uint8 batches alone (no "
        f"device stage) {result['ratio_uint8_epoch_2_on']:.2f}x"
    )


if __name__ == "__main__":
    main()
