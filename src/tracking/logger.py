"""TensorBoard output of a run: scalars (losses, metrics, and every group's lr, gradient norm
and update ratio under its own name, measured by `group_signals`), text, images (an
evaluation's confusion matrix), and the run's hparams session."""

from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from src.tracking import hparams_summary
from src.tracking.hparams import HParams

# Custom-scalars charts: every group of a run on one chart per signal (regexes on tags).
PER_GROUP_CHARTS = {
    "lr per group": r"lr/.*",
    "lr over default's per group": r"lr_ratio/.*",
    "update ratio per group": r"update_ratio/.*",
    "grad norm per group": r"grad_norm/.*",
}


class RunLogger:
    """Writes event files straight into the run dir, so each sweep job is one TensorBoard run
    labelled by its overrides."""

    def __init__(self, run_dir: Path):
        self.writer = SummaryWriter(log_dir=str(run_dir))
        self.writer.add_custom_scalars(
            {"groups": {title: ["Multiline", [tags]] for title, tags in PER_GROUP_CHARTS.items()}}
        )

    def scalars(self, values: dict[str, float], step: int) -> None:
        """All of a step's values in one event (a logged step: train/loss, 4 per group):
        `add_scalar` writes an event per value, and at ~75 us each, a logged step's scalars
        cost more than LeNet's step itself. The values are written as `add_scalar` writes
        them (`simple_value`), without its per-value NumPy conversion."""
        summary = Summary(
            value=[Summary.Value(tag=tag, simple_value=float(x)) for tag, x in values.items()]
        )
        self.writer.file_writer.add_summary(summary, step)

    def image(self, tag: str, pixels, step: int) -> None:
        """An RGB image, (height, width, 3) uint8."""
        self.writer.add_image(tag, pixels, step, dataformats="HWC")

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown)

    def hparams_start(self, hparams: HParams) -> None:
        """Open this run's hparams session: written into the run dir itself (unlike
        `SummaryWriter.add_hparams`, which makes a sub-run), so the HPARAMS row and the
        scalars (its metrics) are one run."""
        self.writer.file_writer.add_summary(hparams_summary.session_start(hparams))

    def hparams_end(self, best_val_acc: float, step: int, pruned_at: int | None = None) -> None:
        """`pruned_at`: the epoch a pruning sweep stopped this job at (None: it ran to the end),
        a metric of its HPARAMS row and a line on its text tab."""
        self.scalars({"val/best_acc": best_val_acc}, step)
        if pruned_at is not None:
            self.scalars({"sweep/pruned_at_epoch": pruned_at}, step)
            self.text("status", f"pruned at epoch {pruned_at} by the sweep's pruner")
        self.writer.file_writer.add_summary(hparams_summary.session_end(pruned_at is not None))

    def close(self) -> None:
        self.writer.close()
