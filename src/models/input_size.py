"""The model fed one blank image of the run's input size before training: a size it cannot
take (a kernel larger than the image, a ViT's patch grid or fixed size) is the user's to fix,
reported in one line naming `dataset.image_size` and a size the model takes, instead of a
traceback from inside the model once training has started."""

from collections.abc import Callable

import torch
from torch import nn

from src.errors import GroupwiseError
from src.models.source import ModelSource

KEY = "dataset.image_size"
# Sizes tried, after the model's own, to tell the user one that works.
TRIED = (224, 32, 28, 64, 96, 256, 384)


def check_input_size(
    model: nn.Module,
    image_input: dict | None,
    device: torch.device,
    source: ModelSource,
    build: Callable[[], nn.Module],
) -> None:
    """Raises when `model` cannot take the images `image_input` (the data's input
    description) makes, with a size it takes: the one its source's metadata names first.
    Tried first on a copy built by `build` on the meta device: shapes only, so the weights
    of a memory-mapped checkpoint stay unread (a dry run's memory) and no random number is
    drawn; meta tensors lack a few kernels, so the model itself confirms a failure, in eval
    mode and without gradients (no BatchNorm statistics change)."""
    if image_input is None:
        return
    channels, size = image_input["channels"], image_input["size"]
    if _takes_on_meta(build, channels, size):
        return
    problem = _problem(model, channels, size, device)
    if problem is None:
        return
    own = _own_size(source)
    fits = next(
        (
            s
            for s in dict.fromkeys([own, *TRIED])
            if s and s != size and not _fails(model, channels, s, device)
        ),
        None,
    )
    hint = f"it takes e.g. {KEY}={fits}" if fits else "choose the size the model was built for"
    raise GroupwiseError(
        f"{KEY}={size}: the model cannot take {channels}x{size}x{size} images ({problem}); "
        f"{hint} (checked with one blank image, before training)"
    )


def _takes_on_meta(build: Callable[[], nn.Module], channels: int, size: int) -> bool:
    try:
        with torch.device("meta"):
            return _problem(build(), channels, size, torch.device("meta")) is None
    except GroupwiseError:
        raise  # the source's own words (a ViT's size that its patches do not tile)
    except Exception:  # a kernel meta tensors lack: the real model will tell
        return False


def _own_size(source: ModelSource) -> int | None:
    """The size the model's metadata names; None without metadata, or where it cannot be read
    (a Hugging Face dir without its image processor)."""
    try:
        own = source.preprocess()
    except GroupwiseError:
        return None
    return own.size if own else None


def _fails(model: nn.Module, channels: int, size: int, device: torch.device) -> bool:
    return _problem(model, channels, size, device) is not None


def _problem(model: nn.Module, channels: int, size: int, device: torch.device) -> str | None:
    """What the model says of one such image, or None when it takes it."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=device))
    except (RuntimeError, AssertionError, ValueError) as err:
        return (str(err).strip().splitlines() or [type(err).__name__])[0]
    finally:
        model.train(training)
    return None
