"""TensorBoard output of a run: scalars (losses, metrics, and every group's lr, gradient norm
and update ratio under its own name, measured by `group_signals`), text, images (an
evaluation's confusion matrix), and the run's hparams session."""

import threading
from pathlib import Path

from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from src.tracking import hparams_summary
from src.tracking.hparams import HParams

EVENT_FILES = "events.out.tfevents.*"  # TensorBoard's names for them
WRITER_THREADS = "tensorboard.summary.writer.event_file_writer"  # the module of its writer thread
_PYTHON_HOOK = threading.excepthook
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
        threading.excepthook = _writer_thread_quiet  # its writer thread's failure: one line
        before = set(Path(run_dir).glob(EVENT_FILES))
        self.writer = SummaryWriter(log_dir=str(run_dir))  # makes its event file at once
        # The file this writer writes, for the line a failed write prints.
        made = sorted(set(Path(run_dir).glob(EVENT_FILES)) - before)
        self.event_file = made[0] if made else Path(run_dir) / EVENT_FILES
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
        """Writes what is left and closes the event file; a write that fails (a full disk) is
        an OSError naming that file: TensorBoard's own names none."""
        try:
            self.writer.close()
        except OSError as err:
            raise OSError(err.errno, err.strerror, str(self.event_file)) from err


def _writer_thread_quiet(args: threading.ExceptHookArgs) -> None:
    """TensorBoard writes the event file in a thread of its own. A write that fails there (a
    full disk) ends that thread, and TensorBoard raises the error again in the run's thread
    at its next write or at close, where it becomes one line (src/resume.py); Python would
    print the thread's traceback first. Any other thread's error: Python's own report."""
    if isinstance(args.exc_value, OSError) and type(args.thread).__module__ == WRITER_THREADS:
        return
    _PYTHON_HOOK(args)
