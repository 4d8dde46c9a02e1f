"""What every dataset hands the run: its train and val loaders, number of classes, input
channels and class names; and the DataLoader settings the file-backed datasets share."""

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader


@dataclass
class Data:
    train_loader: DataLoader
    val_loader: DataLoader
    num_classes: int
    in_channels: int
    class_names: list[str]


@dataclass
class Loading:
    """DataLoader settings shared by the file-backed datasets."""

    batch_size: int
    seed: int
    num_workers: int = 0  # worker processes decoding and augmenting; 0: in the training process
    pin_memory: bool = False  # page-locked batches: faster copies to a GPU
    persistent_workers: bool = False  # keep workers between epochs; needs num_workers > 0

    def problems(self) -> list[str]:
        """What no single option's range can say (each range is in the schema)."""
        if self.persistent_workers and self.num_workers == 0:
            return [
                "dataset.persistent_workers=true needs worker processes; set dataset.num_workers "
                "to 1 or more, or persistent_workers=false"
            ]
        return []

    def loaders(self, train, val) -> tuple[DataLoader, DataLoader]:
        common = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
        }
        train_loader = DataLoader(
            train, shuffle=True, generator=torch.Generator().manual_seed(self.seed), **common
        )
        return train_loader, DataLoader(val, **common)
