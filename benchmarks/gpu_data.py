"""Inputs for the GPU benchmark: random images already on the device (to time the loop, not
the decoder), a folder of generated JPEG photos on local disk (to time a real DataLoader), and
the small ViT its --smoke mode trains in place of ViT-B/16.

`on_device` is a dataset function as the runner calls any (`dataset._target_`), so the runner
builds its run around it as it would around the user's own:

    ~dataset '+dataset={_target_: benchmarks.gpu_data.on_device, batch_size: 128,
              images: 1536, image_size: 224, classes: 10, device: cuda}'
"""

import multiprocessing
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from src.data.loading import Data
from src.models.torchvision_models import TorchvisionSource


class OnDeviceBatches:
    """Shuffled batches of tensors that live on the device, yielded without a copy to it.

    What the trainer asks of a loader: its length, `dataset` (for the image count), an
    iterator of (images, labels), and `generator`, the CPU generator that orders the epoch.
    Indices are drawn on the CPU and copied once per epoch; a batch is one gather on the device
    (an index list copied per step would wait for the device, as a pageable copy does).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int):
        self.dataset = torch.utils.data.TensorDataset(images, labels)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.dataset) // self.batch_size  # whole batches: one shape, one compile

    def __iter__(self):
        images, labels = self.dataset.tensors
        order = torch.randperm(len(self.dataset), generator=self.generator)
        order = order.to(images.device, non_blocking=True)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield images[index], labels[index]


def on_device_overrides(images: int, size: int, batch: int, device: str) -> list[str]:
    """The run's dataset replaced by random images held on `device` (gpu_data.on_device)."""
    return [
        "~dataset",
        f"+dataset={{_target_: benchmarks.gpu_data.on_device, batch_size: {batch}, images: "
        f"{images}, image_size: {size}, classes: 10, device: {device}}}",
    ]


def on_device(
    batch_size: int, images: int, image_size: int, classes: int, device: str, seed: int
) -> Data:
    """`images` random normalised images of `image_size` pixels (float32, as a transform
    pipeline hands them over) and random labels, on `device`; validation: one batch of them."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(images, 3, image_size, image_size, generator=generator)
    labels = torch.randint(0, classes, (images,), generator=generator)
    pixels, labels = pixels.to(device), labels.to(device)
    train = OnDeviceBatches(pixels, labels, batch_size, seed)
    val = OnDeviceBatches(pixels[:batch_size], labels[:batch_size], batch_size, seed)
    return Data(train, val, classes, 3, [str(c) for c in range(classes)])


def write_photo_folder(root: Path, classes: int, train: int, val: int, size: tuple[int, int]):
    """root/train/<class>/*.jpg and root/val/<class>/*.jpg: `train` and `val` images per
    class, `size` (width, height) pixels, smooth colour fields with noise (JPEG files of about
    the size photos of that size have), written by one process per core."""
    jobs = [
        (root / split / f"class{c}", f"{split}{i}", size)
        for split, n in (("train", train), ("val", val))
        for c in range(classes)
        for i in range(n)
    ]
    for folder in {folder for folder, _, _ in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    with multiprocessing.get_context("fork").Pool() as pool:
        pool.starmap(_write_photo, jobs, chunksize=16)
    return root


def _write_photo(folder: Path, name: str, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{folder.name}/{name}".encode()))
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    frequencies, phases = rng.uniform(1, 12, (3, 2)), rng.uniform(0, 2 * np.pi, (3, 2))
    channels = [
        np.sin(x * fx + px) * np.cos(y * fy + py)
        for (fx, fy), (px, py) in zip(frequencies, phases, strict=True)
    ]
    pixels = (np.stack(channels, -1) + 1) * 110 + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(folder / f"{name}.jpg", quality=90)


class SmallViTSource(TorchvisionSource):
    """torchvision's ViT with vit_b_16's names and 12 blocks (so `vit_layer_decay` makes the
    same groups: the source names them as vit_b_16's) at a width a CPU trains in milliseconds:
    the --smoke mode's stand-in. `name` (vit_b_16) and `image_size` come from the model config."""

    def build(self, in_channels: int, num_classes: int):
        from torchvision.models import VisionTransformer

        assert in_channels == 3, "torchvision's ViT takes RGB"
        return VisionTransformer(
            image_size=self.image_size,
            patch_size=16,
            num_layers=12,
            num_heads=2,
            hidden_dim=16,
            mlp_dim=32,
            num_classes=num_classes,
        )
