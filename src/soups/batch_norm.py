"""Batch-norm statistics recomputed for averaged weights: the average of two models' running
means and variances is not the statistics of the averaged model's activations."""

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader

# The training view turned off, per dataset option, where a dataset kind has it: the
# statistics are taken on training images as evaluation sees them.
NO_AUGMENTATION = {
    "augment": "none",
    "train_crop": "none",
    "hflip": 0.0,
    "vflip": 0.0,
    "color_jitter": 0.0,
    "random_erasing": 0.0,
}


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(module, _BatchNorm) for module in model.modules())


def unaugmented(dataset: dict) -> dict:
    """The run's dataset section with its training view off."""
    return {**dataset, **{k: v for k, v in NO_AUGMENTATION.items() if k in dataset}}


@torch.no_grad()
def recompute(model: nn.Module, loader: DataLoader, device: torch.device, on_device=None) -> int:
    """Every batch-norm layer's running statistics, anew, as the plain mean over one pass of
    `loader` (momentum None); the rest of the model (dropout) in eval mode. Returns the batches
    seen. The model is left in eval mode."""
    norms = [module for module in model.modules() if isinstance(module, _BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: every batch weighs the same
        norm.train()
    batches = 0
    for images, _ in loader:
        images = images.to(device, non_blocking=True)
        model(on_device(images) if on_device is not None else images)
        batches += 1
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    model.eval()
    return batches
