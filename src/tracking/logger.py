"""TensorBoard output of a run: every group's lr, gradient norm and update ratio under its own
name, losses, metrics, text, and the run's hparams session."""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.optim import Optimizer
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams, scalar

# The metrics shown beside each run's hyperparameters in TensorBoard's HPARAMS tab: the last
# value of these scalar tags in the same run.
HPARAMS_METRICS = ("val/acc", "val/loss", "val/best_acc")

# Custom-scalars charts: every group of a run on one chart per signal (regexes on tags).
PER_GROUP_CHARTS = {
    "lr per group": r"lr/.*",
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
        # One event for all of a step's values: `add_scalar` writes an event per value, and
        # at ~75 us each, a logged step's eight scalars cost more than LeNet's step itself.
        summary = Summary(value=[v for tag, x in values.items() for v in scalar(tag, x).value])
        self.writer.file_writer.add_summary(summary, step)

    def learning_rates(self, optimizer: Optimizer, step: int) -> None:
        # One value per configured group, never collapsed to one lr: a group may span
        # several optimizer param groups (decay / no decay), which share its lr.
        lrs = {}
        for group in optimizer.param_groups:
            lrs.setdefault(f"lr/{group['name']}", group["lr"])
        self.scalars(lrs, step)

    def group_signals(self, optimizer: Optimizer, step: int, enabled: bool):
        """Wrap `optimizer.step()`: on logged steps, `grad_norm/<group>` and
        `update_ratio/<group>` (‖Δw‖ / ‖w‖ over the step); on other steps, nothing at all."""
        return _group_signals(self, optimizer, step) if enabled else nullcontext()

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown)

    def hparams_start(self, values: dict[str, bool | int | float | str]) -> None:
        """Open this run's hparams session: written into the run dir itself (unlike
        `SummaryWriter.add_hparams`, which makes a sub-run), so the HPARAMS row and the
        scalars are one run."""
        experiment, session_start, _ = hparams(values, dict.fromkeys(HPARAMS_METRICS, 0.0))
        for summary in (experiment, session_start):
            self.writer.file_writer.add_summary(summary)

    def hparams_end(self, best_val_acc: float, step: int) -> None:
        self.scalars({"val/best_acc": best_val_acc}, step)
        # hparams() builds the session-end summary (status: success) whatever it is given.
        self.writer.file_writer.add_summary(hparams({}, {})[2])

    def close(self) -> None:
        self.writer.close()


@contextmanager
def _group_signals(logger: RunLogger, optimizer: Optimizer, step: int) -> Iterator[None]:
    # Optimizer param groups sharing a name (decay / no decay) are one configured group.
    by_name: dict[str, list[torch.Tensor]] = {}
    for group in optimizer.param_groups:
        by_name.setdefault(group["name"], []).extend(group["params"])
    names = list(by_name)
    grad_norms = torch.stack(
        # A parameter the loss did not reach has no grad: it counts as zero.
        [
            _norm([p.grad if p.grad is not None else p.new_zeros(1) for p in by_name[n]])
            for n in names
        ]
    )
    before = {n: [p.detach().clone() for p in by_name[n]] for n in names}
    yield
    ratios = torch.stack(
        [
            _norm(torch._foreach_sub([p.detach() for p in by_name[n]], before[n]))
            / _norm(before[n]).clamp_min(1e-12)
            for n in names
        ]
    )
    # One transfer to the host for all groups' values.
    grad_norms, ratios = torch.stack([grad_norms, ratios]).tolist()
    logger.scalars(
        {f"grad_norm/{n}": v for n, v in zip(names, grad_norms, strict=True)}
        | {f"update_ratio/{n}": v for n, v in zip(names, ratios, strict=True)},
        step,
    )


def _norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all `tensors` together, as if flattened into one vector (one fused
    kernel per device and dtype, as gradient clipping computes it)."""
    return torch.nn.utils.get_total_norm(tensors)
