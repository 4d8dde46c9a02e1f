"""What a logged step shows of each configured group, under the group's own name: its lr,
its gradient norm and its update ratio (‖Δw‖ / ‖w‖ over the optimizer step)."""

import torch
from torch.optim import Optimizer


def learning_rates(optimizer: Optimizer) -> dict[str, float]:
    """`lr/<group>`: one value per configured group, never collapsed to one lr. A group may
    span several optimizer param groups (decay / no decay), which share its lr.

    And `lr_ratio/<group>`: its lr over `default`'s, the multiplier it trains with at this
    step. A sweep's 1x, 10x and 100x are three flat lines apart on a linear axis, where their
    lr curves need a log axis, and no smoothing bends them; none while `default` is at lr 0
    (frozen), or when there is no `default` group."""
    lrs = {}
    for group in optimizer.param_groups:
        lrs.setdefault(f"lr/{group['name']}", group["lr"])
    base = lrs.get("lr/default")
    if not base:
        return lrs
    ratios = {
        f"lr_ratio/{tag.removeprefix('lr/')}": lr / base
        for tag, lr in lrs.items()
        if tag != "lr/default"
    }
    return lrs | ratios


class GroupSignals:
    """`grad_norm/<group>` and `update_ratio/<group>`, measured around an optimizer step:

        before = signals.before_step()
        optimizer.step()
        values = signals.after_step(before)

    A group's norm is that of all its tensors together, as if flattened into one vector.
    Norms are taken per tensor by one fused `torch._foreach_norm` over each list and summed
    per group on the device: a handful of kernels for the whole model however many groups it
    has (a `get_total_norm` per group and list cost ~1 ms a logged step on LeNet, a sixth of
    the step itself). Only parameters with a gradient are copied before the step: optimizers
    skip the others, so a frozen backbone costs no copy.

    `torch._foreach_norm` and `_foreach_sub_` are private (torch has no public fused op over a
    list that returns per-tensor results): tests/test_private_apis.py fails naming what
    changed if a torch release moves or changes them.
    """

    def __init__(self, optimizer: Optimizer):
        # Optimizer param groups sharing a name (decay / no decay) are one configured group.
        self.names = list(dict.fromkeys(group["name"] for group in optimizer.param_groups))
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.group_of = [
            self.names.index(group["name"])
            for group in optimizer.param_groups
            for _ in group["params"]
        ]
        self.device = self.params[0].device
        # Group index tensors per set of positions in `params`, made once and kept on the
        # device: a set changes only when a group is frozen or unfrozen.
        self._group_ids: dict[tuple[int, ...], torch.Tensor] = {}

    def before_step(self) -> tuple:
        """Call after the gradients are final (unscaled, clipped), before the step."""
        moving = tuple(i for i, p in enumerate(self.params) if p.grad is not None)
        grad_sq = self._per_group([self.params[i].grad for i in moving], moving)
        weights = [p.detach() for p in self.params]
        weight_sq = self._per_group(weights, tuple(range(len(weights))))
        snapshot = [weights[i].clone() for i in moving]
        return moving, grad_sq, weight_sq, snapshot

    def after_step(self, before: tuple) -> dict[str, float]:
        moving, grad_sq, weight_sq, snapshot = before
        torch._foreach_sub_(snapshot, [self.params[i].detach() for i in moving])  # -Δw, in place
        update_sq = self._per_group(snapshot, moving)
        ratios = update_sq.sqrt() / weight_sq.sqrt().clamp_min(1e-12)
        # One transfer to the host for all groups' values.
        grad_norms, ratios = torch.stack([grad_sq.sqrt(), ratios]).tolist()
        return {f"grad_norm/{n}": v for n, v in zip(self.names, grad_norms, strict=True)} | {
            f"update_ratio/{n}": v for n, v in zip(self.names, ratios, strict=True)
        }

    def _per_group(self, tensors: list[torch.Tensor], positions: tuple[int, ...]) -> torch.Tensor:
        """The sum of the squared L2 norms of `tensors` (at `positions` in `params`), per group;
        a tensor with no gradient counts as zero."""
        sums = torch.zeros(len(self.names), device=self.device)
        if not tensors:
            return sums
        if positions not in self._group_ids:
            self._group_ids[positions] = torch.tensor(
                [self.group_of[i] for i in positions], device=self.device
            )
        norms = torch.stack(torch._foreach_norm(tensors)).float()
        return sums.index_add_(0, self._group_ids[positions], norms.square())
