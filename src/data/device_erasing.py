"""Random erasing on the training device: `v2.RandomErasing`'s draws, each image its own box,
all boxes erased in one masked fill (`src.data.device_augmentation` runs it last)."""

import torch


class PerImageErasing:
    """`v2.RandomErasing(p)` on normalised images [batch, channels, height, width], each image
    its own draw and box, erased to 0 (the mean colour)."""

    def __init__(self, p: float):
        from torchvision.transforms import v2

        self.erasing = v2.RandomErasing(p)

    def boxes(self, images: torch.Tensor) -> list[tuple[int, int, int, int, int]]:
        """(image, top, left, height, width) of each erased image, drawn as `forward` draws
        them for one image: the coin, then `make_params`; no box fits: nothing erased."""
        boxes = []
        for index in range(len(images)):
            if torch.rand(1) >= self.erasing.p:
                continue
            params = self.erasing.make_params([images[index]])
            if params["v"] is not None:
                boxes.append((index, params["i"], params["j"], params["h"], params["w"]))
        return boxes

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        boxes = self.boxes(images)
        if not boxes:
            return images
        columns = torch.tensor(boxes, device=images.device).T.view(5, -1, 1, 1)
        index, top, left, height, width = columns
        rows = torch.arange(images.shape[-2], device=images.device).view(1, -1, 1)
        cols = torch.arange(images.shape[-1], device=images.device).view(1, 1, -1)
        inside = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
        mask = torch.zeros(
            (len(images), *images.shape[-2:]), dtype=torch.bool, device=images.device
        )
        mask[index.flatten()] = inside
        return images.masked_fill(mask.unsqueeze(1), 0.0)
