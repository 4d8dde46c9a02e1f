"""Mixed precision for the training step: autocast to bf16 or fp16, a GradScaler for fp16."""

import contextlib
import functools
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

# trainer.precision -> the dtype autocast computes in; 32 leaves everything in float32.
DTYPES = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def autocast(precision: str | int, device: torch.device) -> Callable[[], AbstractContextManager]:
    """What the forward pass runs under: autocast to the precision's dtype, or nothing at 32.
    `precision`: a key of DTYPES (checked by the trainer's options)."""
    dtype = DTYPES[str(precision)]
    if dtype is None:
        return contextlib.nullcontext
    return functools.partial(torch.autocast, device.type, dtype=dtype)


def grad_scaler(precision: str | int, device: torch.device) -> torch.amp.GradScaler:
    """float16's narrow range flushes small gradients to zero; the scaler multiplies the loss
    to keep them representable. bfloat16 has float32's range and needs none: there the scaler
    is disabled, and each of its calls passes straight through (`scale` returns the loss,
    `step` calls `optimizer.step()`, `state_dict` is empty), so the loop has one code path.
    Enabled, `step` skips a step whose gradients overflowed: one host-device sync per step."""
    return torch.amp.GradScaler(device.type, enabled=DTYPES[str(precision)] is torch.float16)
