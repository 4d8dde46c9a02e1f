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
