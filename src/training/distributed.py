"""Training on several processes with PyTorch's own engine: `torchrun` starts one process per
device, each joins the process group and wraps the model in DistributedDataParallel.

Launched without torchrun (no WORLD_SIZE in the environment), every function here is a no-op,
so the single-process path runs the same code. Under torchrun, even with one process (which
runs DDP over NCCL on one GPU: the multi-GPU path, checkable on a one-GPU machine):

- all ranks share one run dir: rank 0's clock names it (`rank_zero_time`);
- each rank trains on every N-th sample of the order a single process would use, so N
  processes with `dataset.batch_size=B` train on the same global batches as one process
  with batch N*B;
- only rank 0 writes files (TensorBoard, metrics, checkpoints); every rank reads a resumed
  checkpoint.
"""

import atexit
import math
import os
import sys
from datetime import datetime

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from src.data.loading import Data
from src.errors import GroupwiseError


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ


def setup() -> None:
    """Join the process group torchrun describes in the environment (rank, world size,
    rendezvous address): NCCL for CUDA tensors, Gloo for CPU ones. Left at exit."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    atexit.register(dist.destroy_process_group)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    if dist.get_rank() != 0:  # one console: rank 0's (errors still show, on stderr)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (open for the life of the process)


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def rank_zero_time() -> datetime:
    """Rank 0's clock, read now, on every rank: clocks differ by seconds across nodes, and the
    run dir is named after the launch time (`${launch_time:...}`, src/config/resolvers.py)."""
    now = [datetime.now()]
    dist.broadcast_object_list(now, src=0)
    return now[0]


def device(configured: torch.device) -> torch.device:
    """Under torchrun each process trains on the GPU its LOCAL_RANK names."""
    if not dist.is_initialized() or configured.type != "cuda":
        return configured
    local = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if configured.index not in (None, local.index):
        raise GroupwiseError(
            f"trainer.device={configured}: under torchrun each process uses the GPU of its "
            "LOCAL_RANK; use trainer.device=cuda or auto (CUDA_VISIBLE_DEVICES picks the GPUs)"
        )
    return local


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module to train through: DDP averages the gradients of every parameter that is
    trainable now. Call again when that set changes (a frozen group unfrozen): DDP's reducer
    is built for the parameters that required grad at construction."""
    if not dist.is_initialized():
        return model
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def rank_share(data: Data) -> Data:
    """Under torchrun each rank trains and evaluates on its share (the same data otherwise)."""
    return data.with_loaders(shard(data.train_loader, pad=True), shard(data.val_loader, pad=False))


def shard(loader: DataLoader, pad: bool) -> DataLoader:
    """The same loader, yielding only this rank's share of the samples.

    `pad`: repeat the first samples so every rank gets as many, as DDP needs the same number
    of training steps on every rank; evaluation shards are not padded, so every sample counts
    once.
    """
    if not dist.is_initialized():
        return loader
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=RankShard(loader.sampler, dist.get_rank(), dist.get_world_size(), pad),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
    )


class RankShard(Sampler):
    """Every `world`-th index of `sampler`'s order, starting at `rank`.

    Every rank draws the same order (same seed, same generator), so batch b of all ranks
    together is batch b of a single process with a `world` times larger batch.
    """

    def __init__(self, sampler: Sampler, rank: int, world: int, pad: bool):
        self.sampler, self.rank, self.world, self.pad = sampler, rank, world, pad

    def __len__(self) -> int:
        n = len(self.sampler)
        return math.ceil(n / self.world) if self.pad else len(range(self.rank, n, self.world))

    def __iter__(self):
        order = list(self.sampler)
        if self.pad:
            order += order[: len(self) * self.world - len(order)]
        return iter(order[self.rank :: self.world])


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (itself on one process)."""
    if not dist.is_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


def sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    if not dist.is_initialized():
        return value
    value = value.clone()
    dist.all_reduce(value)
    return value


def min_over_ranks(value: float) -> float:
    if not dist.is_initialized():
        return value
    tensor = torch.tensor(value, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor.item()


def check_same_on_every_rank(value, what: str) -> None:
    """Refuse to train when the ranks disagree (e.g. param groups resolved differently)."""
    if not dist.is_initialized():
        return
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    differing = [rank for rank, v in enumerate(values) if v != values[0]]
    if differing:
        raise GroupwiseError(
            f"{what} differ between rank 0 and rank(s) {differing}; every process must run "
            "the same code and config"
        )


class Silent:
    """Stands in for rank 0's logger on the other ranks: every call does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None
