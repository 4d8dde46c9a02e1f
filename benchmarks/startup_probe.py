"""`python -m src.run ...` as the user runs it, except that the first optimizer step prints
the time and ends the process (for startup.py)."""

import os
import runpy
import sys
import time
from pathlib import Path

from torch.optim.optimizer import register_optimizer_step_pre_hook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def first_step(optimizer, args, kwargs):
    print(f"first_step {time.time()}", flush=True)
    os._exit(0)


register_optimizer_step_pre_hook(first_step)
sys.argv = ["src.run", *sys.argv[1:]]
runpy.run_module("src.run", run_name="__main__", alter_sys=True)
