"""Weight EMA: an exponential moving average of the model's weights and buffers, updated after
every optimizer step and evaluated beside the model itself (`val_ema/*`).

Built on `torch.optim.swa_utils.AveragedModel` rather than timm's `ModelEmaV3`: torch is
every run's dependency (timm an optional extra), and its state (the averaged module and the
count of updates) is a state_dict, which the checkpoint carries and a resume loads bit-exact.
The warmup is timm's (`ModelEmaV3(use_warmup=True)`, gamma 1, power 2/3): the n-th update after
the first uses decay min(ema_decay, 1 - (1 + n) ** -2/3), so the average follows the early
steps instead of staying near the pretrained weights for 1 / (1 - decay) steps.

Buffers are averaged too (BatchNorm's running statistics); integer ones (BatchNorm's step
count) are copied. Under DDP every rank holds the same weights and so the same average; a
frozen tensor's average stays the tensor.
"""

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

WARMUP_POWER = 2 / 3


class WeightEma:
    def __init__(self, model: nn.Module, decay: float, warmup: bool):
        """`model`: the plain module (no DDP or compile wrapper), on its training device."""
        self.decay = decay
        self.warmup = warmup
        # use_buffers: buffers go through `_average` as the parameters do.
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)
        self.averaged.eval()  # never trained: its dropout and BatchNorm stay in eval mode

    @property
    def module(self) -> nn.Module:
        """The averaged model, to evaluate."""
        return self.averaged.module

    def update(self, model: nn.Module) -> None:
        """Fold the weights an optimizer step just made into the average (the first update
        copies them)."""
        self.averaged.update_parameters(model)

    def decay_now(self) -> float:
        """The decay of the update in progress; `n_averaged` (on the CPU: no device sync) counts
        the updates before it."""
        n = int(self.averaged.n_averaged)
        if not self.warmup:
            return self.decay
        return min(self.decay, 1 - (1 + n) ** -WARMUP_POWER)

    @torch.no_grad()
    def _average(self, averaged: list, current: list, _n_averaged: torch.Tensor) -> None:
        """AveragedModel's `multi_avg_fn`: one call per device and dtype."""
        if not torch.is_floating_point(averaged[0]):
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1 - self.decay_now())

    def state_dict(self) -> dict:
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)


def ema_weights(ema_state: dict) -> dict[str, torch.Tensor]:
    """The averaged model's state_dict, under the model's own names, from `WeightEma`'s state
    (AveragedModel's: `module.<name>` entries and the update count)."""
    prefix = "module."
    return {key[len(prefix) :]: value for key, value in ema_state.items() if key.startswith(prefix)}
