"""A ViT's absolute position embeddings, resampled from the checkpoint's patch grid to the
model's: a ViT pretrained at 224 pixels (14 x 14 patches of 16) fine-tuned at 384 or at 32
keeps what its embeddings learnt, as timm's `create_model(..., pretrained=True, img_size=...)`
and the BEiT and MAE fine-tuning scripts do.

The embeddings are those the model source names (`ParameterRoles.position_embeddings`: timm's
`pos_embed`, torchvision's `encoder.pos_embedding`, transformers' `embeddings.position_embeddings`,
whatever a source of its own calls them), of a shape resampling fits ([1, prefix + grid, width]
in the checkpoint and the model, the same width, square grids). The prefix tokens (a class token, a
distillation token) keep their embeddings; their number is the smallest that leaves a square
grid on both sides. The grid is resampled as `timm.layers.resample_abs_pos_embed` does it:
bicubic, antialiased, in float32.
"""

import math

import torch
from torch.nn import functional as F

MAX_PREFIX_TOKENS = 8  # class, distillation and register tokens: a few at most


def prefix_tokens(checkpoint: torch.Tensor, model: torch.Tensor) -> int | None:
    """The number of prefix tokens when a position embedding's checkpoint tensor is one that
    resampling fits to the model's; None when its shapes are not, or its grids not square."""
    if checkpoint.ndim != 3 or model.ndim != 3:
        return None
    if checkpoint.shape[0] != 1 or model.shape[0] != 1 or checkpoint.shape[2] != model.shape[2]:
        return None
    for prefix in range(MAX_PREFIX_TOKENS + 1):
        if _is_square(checkpoint.shape[1] - prefix) and _is_square(model.shape[1] - prefix):
            return prefix
    return None


def resample(embedding: torch.Tensor, tokens: int, prefix: int) -> torch.Tensor:
    """[1, prefix + h * w, width] -> [1, tokens, width]: the prefix kept, the h x w grid
    resampled to the square grid of `tokens - prefix` cells."""
    old_side = math.isqrt(embedding.shape[1] - prefix)
    new_side = math.isqrt(tokens - prefix)
    width = embedding.shape[2]
    grid = embedding[:, prefix:].float().reshape(1, old_side, old_side, width).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(new_side, new_side), mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, width).to(embedding.dtype)
    return torch.cat([embedding[:, :prefix], grid], dim=1)


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n
