"""A soup's candidate weights evaluated on the validation split of the runs it is made from:
loaded into one model, batch-norm statistics recomputed where the model has them."""

from dataclasses import asdict, dataclass, replace

import torch

from src.soups import batch_norm
from src.soups.average import Weights
from src.trained_run import TrainedRun
from src.training.evaluation import classification_report, outputs


@dataclass
class Taste:
    accuracy: float
    loss: float
    batch_norm_batches: int = 0  # training batches its batch-norm statistics were taken on

    def figures(self) -> dict:
        return asdict(self)


class Tasting:
    """One model of the reference run's architecture, on `device`, and its data: the val split
    to choose on, and the training split without augmentation for batch-norm statistics."""

    def __init__(self, reference: TrainedRun, device: torch.device, batch_size: int | None):
        self.run, self.device = reference, device
        self.data = reference.data(batch_size)
        self.model = reference.model(self.data.in_channels, self.data.num_classes, device)
        self.has_batch_norm = batch_norm.has_batch_norm(self.model)
        self._plain_train = None

    def taste(self, weights: Weights, recompute_batch_norm: bool) -> Taste:
        """The val accuracy and loss of `weights`; with `recompute_batch_norm` (an average of
        several models) on batch-norm statistics of their own, which `weights` then holds."""
        self.model.load_state_dict(weights)
        batches = 0
        if recompute_batch_norm and self.has_batch_norm:
            batches = batch_norm.recompute(
                self.model, self._train_loader(), self.device, self.data.eval_on_device
            )
            fresh = self.model.state_dict()
            weights.update({key: fresh[key].detach().to("cpu").clone() for key in weights})
        logits, labels = [], []
        for batch_logits, batch_labels in outputs(
            self.model,
            self.data.val_loader,
            self.device,
            self.run.autocast(self.device),
            self.data.eval_on_device,
        ):
            logits.append(batch_logits)
            labels.append(batch_labels)
        report = classification_report(torch.cat(logits), torch.cat(labels), self.data.class_names)
        return Taste(report["accuracy"], report["loss"], batches)

    def _train_loader(self):
        """The training split as evaluation sees it: the run's dataset, its training view off
        (built once, on first use: a model without batch norm never needs it)."""
        if self._plain_train is None:
            plain = self.run.cfg.copy()
            plain.dataset = batch_norm.unaugmented(dict(self.run.cfg.dataset))
            self._plain_train = replace(self.run, cfg=plain).data().train_loader
        return self._plain_train
