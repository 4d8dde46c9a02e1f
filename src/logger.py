"""TensorBoard output of a run: every group's lr under its own name, losses, metrics, text."""

from pathlib import Path

from torch.optim import Optimizer
from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    """Writes event files straight into the run dir, so each sweep job is one TensorBoard run
    labelled by its overrides."""

    def __init__(self, run_dir: Path):
        self.writer = SummaryWriter(log_dir=str(run_dir))

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def learning_rates(self, optimizer: Optimizer, step: int) -> None:
        # One value per configured group, never collapsed to one lr: a group may span
        # several optimizer param groups (decay / no decay), which share its lr.
        lrs = {}
        for group in optimizer.param_groups:
            lrs.setdefault(f"lr/{group['name']}", group["lr"])
        self.scalars(lrs, step)

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown)

    def close(self) -> None:
        self.writer.close()
