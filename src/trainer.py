"""The training loop: steps, per-epoch evaluation, checkpoints and the logging calls."""

import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from tqdm import tqdm

from src.checkpoints import save_checkpoint
from src.data import Data
from src.logger import RunLogger
from src.param_groups import set_trainable


@dataclass
class Progress:
    """Everything about where training stands, beside the model and optimizer."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_val_acc: float = 0.0
    history: list[dict] = field(default_factory=list)


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
            self.save()
        return self.progress

    def _train_epoch(self) -> float:
        self.model.train()
        set_trainable(self.model, self.optimizer, self.progress.epoch)  # frozen groups, BN
        loss_sum = torch.zeros((), device=self.device)
        batches = tqdm(
            self.data.train_loader,
            desc=f"epoch {self.progress.epoch + 1}",
            leave=False,
            disable=not sys.stderr.isatty(),
        )
        for images, labels in batches:
            images, labels = images.to(self.device), labels.to(self.device)
            loss = F.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()  # stays on the device: no sync per step
            if self.progress.global_step % self.log_every_n_steps == 0:
                # Log the lrs this step trained with, before the scheduler moves them.
                self.logger.learning_rates(self.optimizer, self.progress.global_step)
                self.logger.scalars({"train/loss": loss.item()}, self.progress.global_step)
            self.scheduler.step()
            self.progress.global_step += 1
        return loss_sum.item() / len(self.data.train_loader)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        count = 0
        for images, labels in self.data.val_loader:
            images, labels = images.to(self.device), labels.to(self.device)
            logits = self.model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum")
            correct += (logits.argmax(1) == labels).sum()
            count += len(labels)
        return loss_sum.item() / count, correct.item() / count

    def save(self) -> None:
        save_checkpoint(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
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
        self.progress = Progress(**state["progress"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        self.data.train_loader.generator.set_state(state["rng"]["loader"])
