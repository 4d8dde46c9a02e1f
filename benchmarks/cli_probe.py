"""The CLI (`python -m src.run`) as a user runs it, with what a benchmark needs around it:

    python -m benchmarks.cli_probe [--record FILE] [--deterministic] [--kill-after-step N] \\
        -- [overrides]

- `--record FILE`: at exit, JSON of what the run did that its outputs do not show: whether
  DistributedDataParallel wrapped the model, over which process-group backend (NCCL or
  Gloo) and world size, how many optimizer steps it took, and the operations PyTorch warned
  have no deterministic implementation;
- `--deterministic`: deterministic kernels where PyTorch has them
  (`torch.use_deterministic_algorithms(True, warn_only=True)`; cuBLAS needs
  `CUBLAS_WORKSPACE_CONFIG=:4096:8` in the environment, set by the caller);
- `--kill-after-step N`: SIGKILL right after the N-th optimizer step, as a crash would
  (`tests/crashing_run.py`'s hook).

Works under torchrun too (`torchrun ... -m benchmarks.cli_probe ...`).
"""

import argparse
import atexit
import json
import runpy
import sys
import warnings

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.optimizer import register_optimizer_step_post_hook

from tests.crashing_run import kill_after_step

NONDETERMINISTIC = "does not have a deterministic implementation"


def record_to(path: str) -> None:
    facts = {"ddp": [], "optimizer_steps": 0, "nondeterministic_ops": []}
    ddp_init = DistributedDataParallel.__init__

    def recording_ddp_init(self, *args, **kwargs):
        ddp_init(self, *args, **kwargs)
        facts["ddp"].append(
            {
                "backend": str(dist.get_backend(self.process_group)),
                "world_size": dist.get_world_size(self.process_group),
                "device_ids": self.device_ids,
            }
        )

    DistributedDataParallel.__init__ = recording_ddp_init

    def count_steps(optimizer, args, kwargs):
        facts["optimizer_steps"] += 1

    register_optimizer_step_post_hook(count_steps)
    show = warnings.showwarning

    def record_warning(message, category, *args, **kwargs):
        text = str(message)
        if NONDETERMINISTIC in text:
            op = text.split(" does not")[0]
            if op not in facts["nondeterministic_ops"]:
                facts["nondeterministic_ops"].append(op)
            return
        show(message, category, *args, **kwargs)

    warnings.showwarning = record_warning
    atexit.register(lambda: open(path, "w").write(json.dumps(facts)))  # noqa: SIM115


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record")
    parser.add_argument("--deterministic", action="store_true")
    parser.add_argument("--kill-after-step", type=int)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.record:
        record_to(args.record)
    if args.deterministic:
        # Every such op is recorded, not only the first warned at each call site.
        warnings.filterwarnings("always", message=f".*{NONDETERMINISTIC}")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if args.kill_after_step:
        kill_after_step(args.kill_after_step)
    sys.argv = [sys.argv[0], *args.overrides]
    runpy.run_module("src.run", run_name="__main__")  # as `python -m src.run` runs it


if __name__ == "__main__":
    main()
