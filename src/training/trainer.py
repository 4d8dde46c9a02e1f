"""The training loop, top to bottom: epochs of optimizer steps, an evaluation after each,
a checkpoint at every epoch end and every `checkpoint_every_n_steps` steps.

What the loop stands on lives beside it, one job per module: `checkpoints` (the run state
saved and restored), `nan_guard` (non-finite losses, looked at where the host waits anyway),
`best` (checkpoints/best.pt), `ema` (the weights' moving average), `precision` (autocast and
gradient scaling), `progress` (the console bar), `distributed` (DDP), `src.optim.freezing`
(which groups train in which epoch), `src.tracking.group_signals` (what a logged step shows
of each group) and `src.data.mixing` (Mixup and CutMix of a batch on the device).
"""

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader

from src.config.schema import TrainerConfig
from src.data.loading import Data
from src.optim.freezing import set_trainable
from src.tracking.group_signals import GroupSignals, learning_rates
from src.tracking.logger import RunLogger
from src.training import distributed, ema, precision, progress
from src.training.best import BestCheckpoint
from src.training.checkpoints import LOADER_RNG, Checkpointer, set_rng_states
from src.training.nan_guard import NanGuard
from src.training.state import TrainingState

log = logging.getLogger(__name__)


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
        config: dict,
        options: TrainerConfig,
        mixing: Callable | None = None,
        progress_bars: bool = False,
        stop_after: Callable[[int, float], bool] | None = None,
    ):
        """`config`: the run's resolved config, saved in every checkpoint; `options`: the
        trainer's own (`trainer.device` is resolved by the caller into `device`); `mixing`:
        Mixup/CutMix of each training batch on the device (`src.data.mixing`; None: batches
        train as they are); `progress_bars`: a bar per epoch on the console; `stop_after`:
        given each epoch and its val/acc once the epoch is saved, True ends training there
        (a pruning sweep's trial, src/config/study.py)."""
        self.stop_after = stop_after
        self.model = model  # the plain module: checkpoints hold its names
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.data = data
        self.mixing = mixing
        self.device = device
        self.logger = logger
        self.options = options
        self.progress_bars = progress_bars
        self.state = TrainingState()
        # Batches arrive in the layout the model's weights have: no conversion inside conv layers.
        self.memory_format = torch.channels_last if options.channels_last else torch.preserve_format
        if options.channels_last:
            model.to(memory_format=torch.channels_last)
        self.parameters = list(model.parameters())  # what gradient clipping clips
        self.autocast = precision.autocast(options.precision, device)
        self.scaler = precision.grad_scaler(options.precision, device)
        # The weights' EMA (trainer.ema_decay): a copy of the model, made here, after it moved to
        # its device and memory layout.
        self.ema = (
            None
            if options.ema_decay is None
            else ema.WeightEma(model, options.ema_decay, options.ema_warmup)
        )
        self.checkpointer = Checkpointer(
            checkpoint_path, model, optimizer, scheduler, self.scaler, config, self.ema
        )
        self.nan_guard = NanGuard(optimizer, checkpoint_path)
        self.best = BestCheckpoint(options.monitor, checkpoint_path)
        self.group_signals = GroupSignals(optimizer)
        self.wrapped_model = self._wrap()
        # The data order of an epoch follows from the loader's generator as it stood when the
        # epoch began: kept, so a step checkpoint can replay the order and skip what was trained.
        self._epoch_loader_rng = data.train_loader.generator.get_state()
        # RNG states restored from a step checkpoint, set once the trained batches are skipped.
        self._rng_to_restore: dict | None = None

    def _wrap(self) -> nn.Module:
        """What the steps call: the model, under torchrun its DDP wrapper (whose reducer syncs
        the gradients of the parameters trainable when it was built), compiled if asked.
        `self.model` stays the plain module, so checkpoints carry its names (no `module.` or
        `_orig_mod.` prefix) and load into a plain model."""
        module = distributed.wrap(self.model, self.device)
        return torch.compile(module) if self.options.compile else module

    def fit(self) -> TrainingState:
        while self.state.epoch < self.options.max_epochs:
            metrics = {"train/loss": self.train_epoch()}
            metrics["val/loss"], metrics["val/acc"] = self.evaluate()
            if self.ema is not None:
                metrics["val_ema/loss"], metrics["val_ema/acc"] = self.evaluate(self.ema.module)
            self.state.epoch += 1
            self.state.best_val_acc = max(self.state.best_val_acc, metrics["val/acc"])
            self.state.history.append({"epoch": self.state.epoch, **metrics})
            evaluated = {key: value for key, value in metrics.items() if key != "train/loss"}
            self.logger.scalars(evaluated, self.state.global_step)
            shown = "  ".join(f"{key} {value:.4f}" for key, value in metrics.items())
            log.info(f"epoch {self.state.epoch}/{self.options.max_epochs}  {shown}")  # and run.log
            improved = self.best.update(self.state, metrics)
            self.save()
            if improved and distributed.is_main():
                self.best.keep()
            going_on = self.state.epoch < self.options.max_epochs  # a last epoch saves nothing
            if (
                going_on
                and self.stop_after
                and self.stop_after(self.state.epoch, metrics["val/acc"])
            ):
                break
        return self.state

    def train_epoch(self) -> float:
        """Train on the epoch's batches (after a resume, those its step checkpoint left);
        returns the epoch's mean train/loss (against the targets trained on: mixed and
        smoothed ones when dataset.mixup_alpha, cutmix_alpha or trainer.label_smoothing are
        set)."""
        self.model.train()
        if set_trainable(self.model, self.optimizer, self.state.epoch):  # frozen groups, BN
            self.wrapped_model = self._wrap()  # e.g. a group unfrozen at this epoch
        self.optimizer.zero_grad(set_to_none=True)
        loader = self.data.train_loader
        batches = len(loader)
        self._epoch_loader_rng = loader.generator.get_state()
        loss_sum = torch.full((), self.state.train_loss_sum, device=self.device)
        bar = progress.ProgressBar(len(loader.dataset), self.state.epoch + 1, self.progress_bars)
        for batch_index, (images, labels) in enumerate(
            self._untrained_batches(loader), start=self.state.batches_in_epoch
        ):
            images = self._to_device(images, self.data.train_on_device)
            targets = labels.to(self.device, non_blocking=True)
            if self.mixing is not None:  # Mixup/CutMix: soft targets, [batch, classes]
                images, targets = self.mixing(images, targets)
            with self.autocast():
                loss = F.cross_entropy(
                    self.wrapped_model(images),
                    targets,
                    label_smoothing=self.options.label_smoothing,
                )
            self.nan_guard.track(loss, self.state.global_step)
            loss_sum += loss.detach()  # stays on the device: no sync per step
            bar.advance(targets.shape[0])
            self._backward(loss, batch_index, batches)
            if not self._ends_accumulation(batch_index, batches):
                continue
            logged = self.state.global_step % self.options.log_every_n_steps == 0
            signals = self._optimizer_step(measure_groups=logged)
            if logged:
                self._log_step(loss, signals, bar)
            self.scheduler.step()
            self.state.global_step += 1
            # Counted at optimizer steps only: a step checkpoint never splits an accumulation.
            self.state.batches_in_epoch = batch_index + 1
            every = self.options.checkpoint_every_n_steps
            if every is not None and self.state.global_step % every == 0:
                self.state.train_loss_sum = loss_sum.item()
                self.save()
        bar.close()
        self.nan_guard.check(self.state.epoch)
        self.state.batches_in_epoch, self.state.train_loss_sum = 0, 0.0
        self._epoch_loader_rng = loader.generator.get_state()
        return distributed.mean_over_ranks(loss_sum).item() / batches

    def _untrained_batches(self, loader: DataLoader) -> Iterator:
        """This epoch's batches, past those a step checkpoint says were trained already.

        Skipped batches are still drawn (not trained): that replays every draw the data
        pipeline makes, in the main process and in workers; then the RNG states of the
        checkpoint are set, so the next batch's augmentations and dropout are those the
        interrupted run would have used.
        """
        iterator = iter(loader)
        for _ in range(self.state.batches_in_epoch):
            next(iterator)
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None
        return iterator

    def _to_device(self, images: torch.Tensor, on_device) -> torch.Tensor:
        """A batch as the model takes it: on the device, in the model's memory layout, after
        what the data asks done there (`on_device`: augmentation of uint8 images)."""
        if on_device is None:
            return images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        images = on_device(images.to(self.device, non_blocking=True))
        return images.contiguous(memory_format=self.memory_format)

    def _backward(self, loss: torch.Tensor, batch_index: int, batches: int) -> None:
        n = self.options.accumulate_grad_batches
        if n > 1:
            # Gradients of the accumulated batches add up; dividing by their number makes the
            # sum their mean, as one batch of all their images would give. The epoch's last
            # optimizer step may sum over fewer than n.
            loss = loss / min(n, batches - batch_index // n * n)
        self.scaler.scale(loss).backward()

    def _ends_accumulation(self, batch_index: int, batches: int) -> bool:
        """Whether an optimizer step follows this batch: every accumulate_grad_batches-th
        batch, and the epoch's last."""
        n = self.options.accumulate_grad_batches
        return (batch_index + 1) % n == 0 or batch_index + 1 == batches

    def _optimizer_step(self, measure_groups: bool) -> dict[str, float]:
        """Clip if asked, step, zero the gradients; with `measure_groups`, returns each
        group's gradient norm and update ratio over the step."""
        if measure_groups or self.options.grad_clip is not None:
            # Clipping and the logged norms need true (unscaled) fp16 gradients.
            self.scaler.unscale_(self.optimizer)
        if self.options.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters, self.options.grad_clip)
        before = self.group_signals.before_step() if measure_groups else None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.optimizer.zero_grad(set_to_none=True)
        return self.group_signals.after_step(before) if measure_groups else {}

    def _log_step(
        self, loss: torch.Tensor, signals: dict[str, float], bar: progress.ProgressBar
    ) -> None:
        train_loss = loss.item()  # the one host-device sync of a logged step
        # The lrs this step trained with (the scheduler moves them next); one event for all.
        values = {"train/loss": train_loss, **learning_rates(self.optimizer), **signals}
        self.logger.scalars(values, self.state.global_step)
        self.nan_guard.check(self.state.epoch)  # the host waited for the loss just now anyway
        bar.show(train_loss, self.optimizer)

    @torch.no_grad()
    def evaluate(self, model: nn.Module | None = None) -> tuple[float, float]:
        """The validation loss and accuracy of the model trained (or of `model`: the EMA's),
        under torchrun over every rank's shard."""
        self.model.eval()
        model = self.wrapped_model if model is None else model
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        count = 0
        for images, labels in self.data.val_loader:
            images = self._to_device(images, self.data.eval_on_device)
            labels = labels.to(self.device, non_blocking=True)
            with self.autocast():
                logits = model(images)
            loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
            correct += (logits.argmax(1) == labels).sum()
            count += len(labels)
        loss_sum, correct = (
            distributed.sum_over_ranks(loss_sum),
            distributed.sum_over_ranks(correct),
        )
        count = distributed.sum_over_ranks(torch.tensor(count, device=self.device)).item()
        return loss_sum.item() / count, correct.item() / count

    def save(self) -> None:
        """Checkpoint the run once the losses since the last look are known to be finite: a
        non-finite loss never reaches a checkpoint, so the last good one stays."""
        self.nan_guard.check(self.state.epoch)
        if distributed.is_main():  # one run dir for all ranks; their states are the same
            self.checkpointer.save(self.state, self._epoch_loader_rng)

    def restore(self, checkpoint: dict) -> None:
        """Continue from a checkpoint `save` wrote: weights, optimizer, schedule, grad scale,
        RNGs, and the position inside the epoch."""
        self.state, rng = self.checkpointer.restore(checkpoint)
        self._epoch_loader_rng = rng[LOADER_RNG]
        self.data.train_loader.generator.set_state(self._epoch_loader_rng)
        self._rng_to_restore = rng
