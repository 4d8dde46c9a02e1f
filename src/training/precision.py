"""Mixed precision for the training step: autocast to bf16 or fp16, a GradScaler for fp16."""

import contextlib

import torch
from torch.optim import Optimizer

# trainer.precision -> the dtype autocast computes in; 32 leaves everything in float32.
DTYPES = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


class Precision:
    def __init__(self, precision: str | int, device: torch.device):
        """`precision`: a key of DTYPES (checked by the trainer's options)."""
        self.dtype = DTYPES[str(precision)]
        self.device_type = device.type
        # float16's narrow range flushes small gradients to zero; the scaler multiplies the
        # loss to keep them representable. bfloat16 has float32's range and needs none.
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype is torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: Optimizer) -> None:
        """Bring scaled gradients back to their true size (before clipping them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            # Skips the step when a gradient overflowed; one host-device sync per step to know.
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict:
        return {} if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
