"""Mixup and CutMix: whole training batches blended, on the training device, with soft targets.

torchvision's own transforms (`v2.MixUp`, `v2.CutMix`, chosen per batch by `v2.RandomChoice`)
do the work. They draw from torch's global generator, which the run seeds with `seed` and
every checkpoint saves and restores (`src.training.checkpoints.rng_states`), so a resumed run
draws the same mixes as an uninterrupted one. Each image is blended with its neighbour in the
batch, so any batch size works (odd, or the epoch's short last one).

The options are the dataset section's (`dataset.mixup_alpha`, ...), but no dataset builder
reads them: the runner makes the mixing and hands it to the trainer (a user's own dataset
function is not given them: `MIXING_KEYS`).
"""

from collections.abc import Mapping

import torch

from src.errors import GroupwiseError

# The dataset section's keys read here, not by the dataset's builder.
MIXING_KEYS = ("mixup_alpha", "cutmix_alpha", "mixup_switch_prob")


class BatchMixing:
    """(images, class indices) -> (mixed images, soft targets of shape [batch, classes])."""

    def __init__(
        self, num_classes: int, mixup_alpha: float, cutmix_alpha: float, mixup_switch_prob: float
    ):
        """An alpha of 0 turns that kind off; with both on, `mixup_switch_prob` is the share
        of batches that take CutMix instead of Mixup (timm's `switch_prob`)."""
        from torchvision.transforms import v2  # imported when asked for: start-up time

        mixup = v2.MixUp(alpha=mixup_alpha, num_classes=num_classes) if mixup_alpha else None
        cutmix = v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes) if cutmix_alpha else None
        if mixup and cutmix:
            self.transform = v2.RandomChoice(
                [mixup, cutmix], p=[1 - mixup_switch_prob, mixup_switch_prob]
            )
        else:
            self.transform = mixup or cutmix

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(images, labels)


def batch_mixing(num_classes: int, dataset: Mapping) -> BatchMixing | None:
    """The batch mixing the dataset section's options ask for; None when both alphas are 0
    (the default) or absent (a dataset section not built from the schema, such as a
    benchmark's own)."""
    mixup_alpha, cutmix_alpha = (
        dataset.get("mixup_alpha") or 0.0,
        dataset.get("cutmix_alpha") or 0.0,
    )
    if not (mixup_alpha or cutmix_alpha):
        return None
    switch = dataset.get("mixup_switch_prob")
    if mixup_alpha and cutmix_alpha and switch is None:
        raise GroupwiseError(
            "dataset.mixup_switch_prob: required with both mixup_alpha and cutmix_alpha; set it "
            "(0.5: half the batches each)"
        )
    return BatchMixing(num_classes, mixup_alpha, cutmix_alpha, switch)
