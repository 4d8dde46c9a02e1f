"""The console progress bar of a training epoch: images done, images/s, loss and lr."""

import sys

from torch.optim import Optimizer
from tqdm import tqdm

from src.optim.specs import DEFAULT


def wanted(in_parallel_sweep: bool = False) -> bool:
    """Only on a terminal, and never in a sweep whose jobs run in parallel: their bars would
    overwrite each other's lines."""
    return sys.stderr.isatty() and not in_parallel_sweep


class ProgressBar:
    def __init__(self, total: int, epoch: int, enabled: bool):
        self.bar = tqdm(
            total=total,
            desc=f"epoch {epoch}",
            unit="img",  # images are whole: counted as integers, never scaled (32/538)
            leave=False,
            disable=not enabled,
        )

    def advance(self, images: int) -> None:
        self.bar.update(images)

    def show(self, loss: float, optimizer: Optimizer) -> None:
        """Called where the loss is on the host already: the bar never syncs on its own."""
        if not self.bar.disable:
            groups = optimizer.param_groups
            lr = next((g["lr"] for g in groups if g["name"] == DEFAULT), groups[0]["lr"])
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}")

    def close(self) -> None:
        self.bar.close()
