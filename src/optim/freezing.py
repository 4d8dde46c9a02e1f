"""Which groups train in which epoch, in one place.

Freezing never changes the optimizer's groups: a frozen group is there from the start, its
parameters have `requires_grad=False`, its lr is held at 0 by the schedule until
`trains_from_epoch` (`None`: never), and a BatchNorm layer whose parameters are all frozen
stays in eval mode. A checkpoint written before an unfreeze thus loads into the optimizer of
a run after it.
"""

from torch import nn
from torch.optim import Optimizer

from src.optim.param_groups import ParamGroup

# torch's batch norms by their public names (BatchNorm1d/2d/3d, their Lazy forms, SyncBatchNorm);
# timm's and transformers' derive from them.
BATCH_NORMS = tuple(getattr(nn, name) for name in nn.modules.batchnorm.__all__)


def trains_at(group: ParamGroup, epoch: int) -> bool:
    """Whether an optimizer param group made by `optimizer_groups` trains in `epoch` (from 0)."""
    start = group.get("trains_from_epoch", 0)
    return start is not None and epoch >= start


def set_trainable(model: nn.Module, optimizer: Optimizer, epoch: int) -> bool:
    """Freeze and unfreeze groups for `epoch`; call it at the start of every epoch, after
    `model.train()`. Returns whether the set of trainable parameters changed: a DDP wrapper
    syncs the gradients of those trainable when it was built, and must then be rebuilt.

    A frozen parameter gets `requires_grad=False`: no gradient is computed for it, so the
    optimizer never steps it. A BatchNorm layer whose parameters are all frozen is put in
    eval mode: its running statistics stay those of the pretrained model, and it normalizes
    with them, as the frozen layers around it expect.
    """
    changed = False
    for group in optimizer.param_groups:
        trains = trains_at(group, epoch)
        for param in group["params"]:
            if param.requires_grad != trains:
                param.requires_grad_(trains)
                changed = True
    for module in model.modules():
        if isinstance(module, BATCH_NORMS):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
    return changed
