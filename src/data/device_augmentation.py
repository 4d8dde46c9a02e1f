"""What a batch of uint8 images gets on the training device: the per-image random choices of
augmentation, then scaling to [0, 1] and normalisation, in one pass over the whole batch.

Loaders that yield uint8 images (a decoded cache) hand the device these batches, so the
worker processes only copy and crop, and the float work runs where the model runs. Random
draws come from torch's global generator on the CPU, which the run seeds and every checkpoint
saves and restores, so a resumed run draws what an uninterrupted one would (on any device).
"""

import torch

from src.data.transforms import Augmentation
from src.models.source import Preprocess


class DeviceAugmentation:
    """uint8 images [batch, channels, height, width] on any device -> normalised float32."""

    def __init__(self, pre: Preprocess, flip: bool):
        """`flip`: each image mirrored left-right with probability 1/2 (training's basic
        augmentation); evaluation takes none."""
        self.mean, self.std = list(pre.mean), list(pre.std)
        self.flip = flip

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.flip:
            mirrored = (torch.rand(len(images)) < 0.5).to(images.device)
            images = torch.where(mirrored.view(-1, 1, 1, 1), images.flip(-1), images)
        from torchvision.transforms.v2 import functional as F  # start-up time: when used

        # torchvision's own kernels: the numbers of the CPU pipeline's ToDtype and Normalize.
        images = F.to_dtype(images, torch.float32, scale=True)
        return F.normalize(images, self.mean, self.std, inplace=True)


def device_stages(
    pre: Preprocess, augmentation: Augmentation
) -> tuple[DeviceAugmentation, DeviceAugmentation]:
    """(training's, evaluation's) device stage for uint8 images that arrive cropped to the
    model's size: `Data.train_on_device` and `Data.eval_on_device`."""
    return DeviceAugmentation(pre, flip=augmentation.name != "none"), DeviceAugmentation(
        pre, flip=False
    )
