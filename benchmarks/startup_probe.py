"""Run a module as `python -m MODULE ARGS...` runs it, printing the time of its first optimizer
step and the CPU time used until then as `first_step <unix time> <CPU seconds>`; with
--stop-at-first-step the process ends there.

    python -m benchmarks.startup_probe [--stop-at-first-step] MODULE [ARGS...]

startup.py stops at the first step; end_to_end.py lets the run go on to its end: the hook
removes itself once it has fired, so later steps pay nothing for it.
"""

import os
import runpy
import sys
import time

from torch.optim.optimizer import register_optimizer_step_pre_hook


def main() -> None:
    args = sys.argv[1:]
    stop = args[:1] == ["--stop-at-first-step"]
    module, *module_args = args[1:] if stop else args

    def first_step(optimizer, args, kwargs):
        print(f"first_step {time.time()} {time.process_time()}", flush=True)
        if stop:
            os._exit(0)
        handle.remove()

    handle = register_optimizer_step_pre_hook(first_step)
    sys.argv = [module, *module_args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
