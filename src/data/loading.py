"""What every dataset hands the run: its train, val and (when it has one) test loaders, number
of classes, input channels, class names and how an image becomes the model's input; the
DataLoader settings the file-backed datasets share; and the stratified split they share."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch.utils.data import DataLoader

from src import stopping


@dataclass(frozen=True)
class Data:
    """Made whole by its dataset's builder and never changed after: a step that needs other
    loaders (each rank's share, under torchrun) makes a new one (`with_loaders`)."""

    train_loader: DataLoader
    val_loader: DataLoader
    num_classes: int
    in_channels: int
    class_names: list[str]
    # How one image file becomes the model's input (`transforms.input_description`): what
    # export/model.json records and `src.predict` applies.
    input: dict | None = None
    test_loader: DataLoader | None = None  # None: the data has no held-out test split
    # What a batch gets on the device before the model when the loaders yield uint8 images
    # (`dataset.cache=true`: src.data.device_augmentation), in training and in evaluation;
    # None: batches arrive as the model's input.
    train_on_device: Callable | None = None
    eval_on_device: Callable | None = None

    def with_loaders(self, train: DataLoader, val: DataLoader) -> "Data":
        return replace(self, train_loader=train, val_loader=val)


@dataclass(frozen=True)
class Loading:
    """DataLoader settings shared by the file-backed datasets (`FileDatasetConfig` has their
    help; `persistent_workers` without workers is refused by the check pass)."""

    batch_size: int
    seed: int
    num_workers: int  # worker processes decoding and augmenting; 0: in the training process
    pin_memory: bool  # page-locked batches: faster copies to a GPU
    persistent_workers: bool  # keep workers between epochs; needs num_workers > 0

    def loaders(self, train, *evaluation) -> list[DataLoader]:
        """The shuffled train loader, then one in-order loader per evaluation set (None stays None)."""
        common = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
            "worker_init_fn": stopping.worker_leaves_signals_to_main,
        }
        train_loader = DataLoader(
            train, shuffle=True, generator=torch.Generator().manual_seed(self.seed), **common
        )
        return [train_loader, *(None if d is None else DataLoader(d, **common) for d in evaluation)]


def split_seed(options, seed: int) -> int:
    """The seed a dataset's split follows: its `split_seed` where set, else the run's `seed`.
    One split for a sweep over seeds is what lets its jobs be souped (src.soup): with the
    run's seed, each job's training images are partly another's val images."""
    return seed if options.split_seed is None else options.split_seed


def stratified_split(targets, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the rest and of the held-out part: `fraction` of every class, drawn in a
    seeded order."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.as_tensor(targets)
    rest, held_out = [], []
    for label in targets.unique():
        idx = (targets == label).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n = round(len(idx) * fraction)
        held_out += idx[:n].tolist()
        rest += idx[n:].tolist()
    return rest, held_out
