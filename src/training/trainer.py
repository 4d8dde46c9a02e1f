"""The training loop: steps, per-epoch evaluation, checkpoints and the logging calls."""

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from src.data.loading import Data
from src.errors import GroupwiseError
from src.optim.freezing import set_trainable
from src.tracking.logger import RunLogger
from src.training import distributed
from src.training import progress as progress_bar
from src.training.checkpoints import rng_states, save_checkpoint, set_rng_states
from src.training.precision import Precision

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
    # Where a step checkpoint stands inside the epoch in progress: the batches of it already
    # trained, and the sum of their losses (for the epoch's mean train/loss).
    batches_in_epoch: int = 0
    train_loss_sum: float = 0.0


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
        checkpoint_every_n_steps: int | None = None,
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
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.progress = Progress()
        self.precision = Precision(precision, device)
        self.accumulate_grad_batches = accumulate_grad_batches
        self.grad_clip = grad_clip
        self.monitor = monitor
        self.best_checkpoint_path = checkpoint_path.with_name("best.pt")
        # Batches arrive in the layout the model's weights have: no conversion inside conv layers.
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        if channels_last:
            model.to(memory_format=torch.channels_last)
        self.compile = compile
        self.model_parameters = list(model.parameters())
        self._build_forward()
        # The data order of an epoch follows from the loader's generator as it stood when the
        # epoch began: kept, so a step checkpoint can replay the order and skip what was trained.
        self._epoch_loader_state = self.data.train_loader.generator.get_state()
        # RNG states restored from a step checkpoint, set once the trained batches are skipped.
        self._rng_to_restore = None
        # (step, loss, lr of each optimizer group) of the steps since the last finiteness check:
        # checked where the host waits anyway (logged steps, checkpoints, epoch ends), never
        # per step, so the loop keeps no host-device sync of its own.
        self._unchecked_losses: list[tuple[int, torch.Tensor, list[float]]] = []

    def _build_forward(self) -> None:
        """What the steps call: the model, under torchrun its DDP wrapper (whose reducer syncs
        the gradients of the parameters trainable when it was built), compiled if asked.
        `self.model` stays the plain module, so checkpoints carry its names (no `module.` or
        `_orig_mod.` prefix) and load into a plain model."""
        self._trainable = _trainable(self.model)
        module = distributed.wrap(self.model, self.device)
        self.forward = torch.compile(module) if self.compile else module

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
            if improved and distributed.is_main():
                self._copy_to_best()
        return self.progress

    def _train_epoch(self) -> float:
        self.model.train()
        set_trainable(self.model, self.optimizer, self.progress.epoch)  # frozen groups, BN
        if _trainable(self.model) != self._trainable:  # e.g. a group unfrozen at this epoch
            self._build_forward()
        self.optimizer.zero_grad(set_to_none=True)
        loader = self.data.train_loader
        batches = len(loader)
        self._epoch_loader_state = loader.generator.get_state()
        loss_sum = torch.full((), self.progress.train_loss_sum, device=self.device)
        bar = progress_bar.ProgressBar(
            len(loader.dataset), self.progress.epoch + 1, progress_bar.wanted()
        )
        for batch_index, (images, labels) in enumerate(
            self._skip_trained_batches(loader), start=self.progress.batches_in_epoch
        ):
            images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
            labels = labels.to(self.device, non_blocking=True)
            with self.precision.autocast():
                loss = F.cross_entropy(self.forward(images), labels)
            self._track_nonfinite(loss)
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
                self.check_finite()  # the host waited for the loss just now anyway
                bar.show(train_loss, self.optimizer)
            self.scheduler.step()
            self.progress.global_step += 1
            # Counted at optimizer steps only: a step checkpoint never splits an accumulation.
            self.progress.batches_in_epoch = batch_index + 1
            if (
                self.checkpoint_every_n_steps
                and self.progress.global_step % self.checkpoint_every_n_steps == 0
            ):
                self.progress.train_loss_sum = loss_sum.item()
                self.save()
        bar.close()
        self.check_finite()
        self.progress.batches_in_epoch, self.progress.train_loss_sum = 0, 0.0
        self._epoch_loader_state = loader.generator.get_state()
        return distributed.mean_over_ranks(loss_sum).item() / batches

    def _accumulated(self, batch_index: int, batches: int) -> int:
        """How many batches the optimizer step this batch belongs to sums over: the last
        step of an epoch may take fewer than accumulate_grad_batches."""
        n = self.accumulate_grad_batches
        return min(n, batches - batch_index // n * n)

    def _skip_trained_batches(self, batches):
        """This epoch's batches, past those a step checkpoint says were trained already.

        Skipped batches are still drawn (not trained): that replays every draw the data
        pipeline makes, in the main process and in workers; then the RNG states of the
        checkpoint are set, so the next batch's augmentations and dropout are those the
        interrupted run would have used.
        """
        iterator = iter(batches)
        for _ in range(self.progress.batches_in_epoch):
            next(iterator)
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        return iterator

    def _track_nonfinite(self, loss: torch.Tensor) -> None:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._unchecked_losses.append((self.progress.global_step, loss.detach(), lrs))

    def check_finite(self) -> None:
        """Stop at a non-finite loss before it reaches a checkpoint: the last good one stays."""
        unchecked, self._unchecked_losses = self._unchecked_losses, []
        finite = (
            torch.stack([loss for _, loss, _ in unchecked]).isfinite().tolist() if unchecked else []
        )
        bad = [step for (step, _, _), ok in zip(unchecked, finite, strict=True) if not ok]
        # Every rank stops, at the first step any rank found.
        first = distributed.min_over_ranks(min(bad, default=math.inf))
        if first == math.inf:
            return
        step = int(first)
        lrs = {s: lrs for s, _, lrs in unchecked}[step]  # every rank checks the same steps
        # A named group may span two optimizer groups (decay / no decay) that share its lr.
        names = [group["name"] for group in self.optimizer.param_groups]
        lr_text = ", ".join(
            f"{name}={lr:.3g}" for name, lr in dict(zip(names, lrs, strict=True)).items()
        )
        raise GroupwiseError(
            f"train/loss is not finite (nan or inf) at step {step} (epoch "
            f"{self.progress.epoch + 1}); lr per group: {lr_text}; a too-large lr is the usual "
            "cause: lower optimizer.lr or a group's lr_mult and start a new run; the last good "
            f"checkpoint, {self.checkpoint_path}, was kept"
        )

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
        # Each rank evaluated its shard of the validation set.
        loss_sum, correct = (
            distributed.sum_over_ranks(loss_sum),
            distributed.sum_over_ranks(correct),
        )
        count = distributed.sum_over_ranks(torch.tensor(count, device=self.device)).item()
        return loss_sum.item() / count, correct.item() / count

    def save(self) -> None:
        self.check_finite()
        if not distributed.is_main():  # one run dir for all ranks; their states are the same
            return
        save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "grad_scaler": self.precision.state_dict(),
                "progress": vars(self.progress),
                "rng": {**rng_states(), "loader": self._epoch_loader_state},
                "config": self.config,
            },
            self.checkpoint_path,
        )

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint written by `save`: weights, optimizer, schedule, RNGs,
        and the position inside the epoch."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.precision.load_state_dict(state.get("grad_scaler", {}))
        self.progress = Progress(**state["progress"])
        self._epoch_loader_state = state["rng"]["loader"]
        self.data.train_loader.generator.set_state(self._epoch_loader_state)
        self._rng_to_restore = state["rng"]

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


def _trainable(model: nn.Module) -> list[bool]:
    return [p.requires_grad for p in model.parameters()]
