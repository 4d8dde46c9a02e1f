"""The training loop: steps, per-epoch evaluation, checkpoints and the logging calls."""

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from src import progress as progress_bar
from src.checkpoints import save_checkpoint
from src.data import Data
from src.errors import GroupwiseError
from src.logger import RunLogger
from src.param_groups import set_trainable
from src.precision import DTYPES as PRECISIONS
from src.precision import Precision

# Metrics a best checkpoint can follow, and whether higher or lower is better.
MONITOR_MODES = {"val/acc": max, "val/loss": min, "train/loss": min}


@dataclass
class Progress:
    """Everything about where training stands, beside the model and optimizer."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_val_acc: float = 0.0
    history: list[dict] = field(default_factory=list)
    best_score: float | None = None  # of the monitored metric, at best_epoch
    best_epoch: int = 0


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        data: Data,
        device: torch.device,
        logger: RunLogger,
        checkpoint_path: Path,
        max_epochs: int,
        log_every_n_steps: int,
        config: dict,
        precision: str | int = 32,
        channels_last: bool = False,
        compile: bool = False,
        accumulate_grad_batches: int = 1,
        grad_clip: float | None = None,
        monitor: str | None = None,
    ):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.data = data
        self.device = device
        self.logger = logger
        self.checkpoint_path = checkpoint_path
        self.max_epochs = max_epochs
        self.log_every_n_steps = log_every_n_steps
        self.config = config
        self.progress = Progress()
        check_options(precision, accumulate_grad_batches, grad_clip, monitor)
        self.precision = Precision(precision, device)
        self.accumulate_grad_batches = accumulate_grad_batches
        self.grad_clip = grad_clip
        self.monitor = monitor
        self.best_checkpoint_path = checkpoint_path.with_name("best.pt")
        # Batches arrive in the layout the model's weights have: no conversion inside conv layers.
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        if channels_last:
            model.to(memory_format=torch.channels_last)
        # Compiled for speed; `self.model` stays the plain module, so checkpoints carry its
        # names (no `_orig_mod.` prefix) and load into an uncompiled model.
        self.forward = torch.compile(model) if compile else model
        self.model_parameters = list(model.parameters())

    def fit(self) -> Progress:
        while self.progress.epoch < self.max_epochs:
            train_loss = self._train_epoch()
            val_loss, val_acc = self.evaluate()
            self.progress.epoch += 1
            self.progress.best_val_acc = max(self.progress.best_val_acc, val_acc)
            metrics = {"train/loss": train_loss, "val/loss": val_loss, "val/acc": val_acc}
            self.progress.history.append({"epoch": self.progress.epoch, **metrics})
            self.logger.scalars(
                {"val/loss": val_loss, "val/acc": val_acc}, self.progress.global_step
            )
            print(
                f"epoch {self.progress.epoch}/{self.max_epochs}  train/loss {train_loss:.4f}  "
                f"val/loss {val_loss:.4f}  val/acc {val_acc:.4f}",
                flush=True,
            )
            improved = self._track_best(metrics)
            self.save()
            if improved:
                self._copy_to_best()
        return self.progress

    def _train_epoch(self) -> float:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loader = self.data.train_loader
        batches = len(loader)
        set_trainable(self.model, self.optimizer, self.progress.epoch)  # frozen groups, BN
        loss_sum = torch.zeros((), device=self.device)
        bar = progress_bar.ProgressBar(
            len(loader.dataset), self.progress.epoch + 1, progress_bar.wanted()
        )
        for batch_index, (images, labels) in enumerate(loader):
            images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
            labels = labels.to(self.device, non_blocking=True)
            with self.precision.autocast():
                loss = F.cross_entropy(self.forward(images), labels)
            loss_sum += loss.detach()  # stays on the device: no sync per step
            bar.advance(labels.shape[0])
            if self.accumulate_grad_batches == 1:
                self.precision.backward(loss)
            else:
                # Gradients of the accumulated batches add up; dividing by their number makes
                # the sum their mean, as one batch of all their images would give.
                self.precision.backward(loss / self._accumulated(batch_index, batches))
                if (batch_index + 1) % self.accumulate_grad_batches and batch_index + 1 < batches:
                    continue
            logging_step = self.progress.global_step % self.log_every_n_steps == 0
            if self.grad_clip is not None or logging_step:
                # Clipping and the logged grad norms need true (unscaled) fp16 gradients.
                self.precision.unscale(self.optimizer)
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model_parameters, self.grad_clip)
            with self.logger.group_signals(self.optimizer, self.progress.global_step, logging_step):
                self.precision.step(self.optimizer)
            self.optimizer.zero_grad(set_to_none=True)
            if logging_step:
                # Log the lrs this step trained with, before the scheduler moves them.
                self.logger.learning_rates(self.optimizer, self.progress.global_step)
                train_loss = loss.item()  # the one host-device sync of a logged step
                self.logger.scalars({"train/loss": train_loss}, self.progress.global_step)
                bar.show(train_loss, self.optimizer)
            self.scheduler.step()
            self.progress.global_step += 1
        bar.close()
        return loss_sum.item() / batches

    def _accumulated(self, batch_index: int, batches: int) -> int:
        """How many batches the optimizer step this batch belongs to sums over: the last
        step of an epoch may take fewer than accumulate_grad_batches."""
        n = self.accumulate_grad_batches
        return min(n, batches - batch_index // n * n)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        count = 0
        for images, labels in self.data.val_loader:
            images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
            labels = labels.to(self.device, non_blocking=True)
            with self.precision.autocast():
                logits = self.forward(images)
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
            correct += (logits.argmax(1) == labels).sum()
            count += len(labels)
        return loss_sum.item() / count, correct.item() / count

    def save(self) -> None:
        save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "grad_scaler": self.precision.state_dict(),
                "progress": vars(self.progress),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "python": random.getstate(),
                    "loader": self.data.train_loader.generator.get_state(),
                },
                "config": self.config,
            },
            self.checkpoint_path,
        )

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint written by `save`: weights, optimizer, schedule, RNGs."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state.get("grad_scaler", {}))
        self.progress = Progress(**state["progress"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        self.data.train_loader.generator.set_state(state["rng"]["loader"])

    def _track_best(self, metrics: dict[str, float]) -> bool:
        """Whether this epoch beat every earlier one on the monitored metric."""
        if self.monitor is None:
            return False
        score, best = metrics[self.monitor], self.progress.best_score
        if best is not None and MONITOR_MODES[self.monitor](score, best) == best:
            return False
        self.progress.best_score, self.progress.best_epoch = score, self.progress.epoch
        return True

    def _copy_to_best(self) -> None:
        # best.pt is last.pt as of this epoch: copied rather than serialised twice, and
        # renamed into place so it is never half written.
        tmp = self.best_checkpoint_path.with_name("best.pt.tmp")
        shutil.copyfile(self.checkpoint_path, tmp)
        os.replace(tmp, self.best_checkpoint_path)


def check_options(precision, accumulate_grad_batches, grad_clip, monitor) -> None:
    """Every problem of the trainer's options, in one error."""
    problems = []
    if str(precision) not in PRECISIONS:
        problems.append(
            f"trainer.precision={precision}: use 32 (float32), bf16 (bfloat16 autocast) or "
            "16 (float16 autocast with gradient scaling)"
        )
    if not isinstance(accumulate_grad_batches, int) or accumulate_grad_batches < 1:
        problems.append(
            f"trainer.accumulate_grad_batches={accumulate_grad_batches}: must be an integer >= 1 "
            "(1: an optimizer step every batch)"
        )
    if grad_clip is not None and (
        isinstance(grad_clip, bool) or not isinstance(grad_clip, int | float) or grad_clip <= 0
    ):
        problems.append(
            f"trainer.grad_clip={grad_clip}: the largest gradient norm allowed must be > 0, "
            "or null for no clipping"
        )
    if monitor is not None and monitor not in MONITOR_MODES:
        problems.append(
            f"trainer.monitor={monitor}: not a metric of the run; use one of "
            f"{list(MONITOR_MODES)}, or null for no best checkpoint"
        )
    if problems:
        raise GroupwiseError(*problems)
