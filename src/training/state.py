"""Where training stands: the counters, history and best score a checkpoint carries beside
the model and optimizer."""

from dataclasses import dataclass, field


@dataclass
class TrainingState:
    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    best_val_acc: float = 0.0
    history: list[dict] = field(default_factory=list)  # one dict of metrics per epoch
    best_score: float | None = None  # of the monitored metric, at best_epoch
    best_epoch: int = 0
    # Where a step checkpoint stands inside the epoch in progress: the batches of it already
    # trained, and the sum of their losses (for the epoch's mean train/loss).
    batches_in_epoch: int = 0
    train_loss_sum: float = 0.0

    def final_metrics(self, monitor: str | None) -> dict:
        """metrics.json: the last epoch's figures, epochs trained, the best (by `monitor`)."""
        last = self.history[-1] if self.history else {}
        metrics = {k: v for k, v in last.items() if k != "epoch"}
        metrics.update(epochs=self.epoch, best_val_acc=self.best_val_acc)
        if monitor is not None:
            metrics["best"] = {
                "metric": monitor,
                "value": self.best_score,
                "epoch": self.best_epoch,
                # What a sweep ranks its jobs by: the val/acc of the checkpoint it tests.
                "val/acc": next(
                    (h["val/acc"] for h in self.history if h["epoch"] == self.best_epoch), None
                ),
            }
        return metrics
