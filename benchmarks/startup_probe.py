"""Run a module as `python -m MODULE ARGS...` runs it, printing the time of its first optimizer
step and the CPU time used until then as `first_step <unix time> <CPU seconds>`; with
--stop-at-first-step the process ends there. With --count-steps the hook stays and, at exit,
prints `steps <count> <first unix time> <last unix time> <first CPU s> <last CPU s>` of every
optimizer step (recipe_vs_timm.py's throughput: the same clock for both contestants).

    python -m benchmarks.startup_probe [--stop-at-first-step | --count-steps] MODULE [ARGS...]

startup.py stops at the first step; end_to_end.py lets the run go on to its end: the hook
removes itself once it has fired, so later steps pay nothing for it. The probe imports nothing
of its own before the module runs (torch included): it hooks the optimizer once the module
itself has imported `torch.optim.optimizer`, so what is imported, and when, is the module's.
"""

import atexit
import importlib.abc
import importlib.util
import os
import runpy
import sys
import time

HOOKED_MODULE = "torch.optim.optimizer"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls `then(module)` right after `name` is first imported, by whoever imports it."""

    def __init__(self, name: str, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # the finders after this one find the module itself
        spec = importlib.util.find_spec(fullname)
        exec_module = spec.loader.exec_module

        def exec_then_call(module):
            exec_module(module)
            self.then(module)

        spec.loader.exec_module = exec_then_call
        return spec


def main() -> None:
    args = sys.argv[1:]
    stop = args[:1] == ["--stop-at-first-step"]
    count = args[:1] == ["--count-steps"]
    module, *module_args = args[1:] if stop or count else args
    steps = []  # (unix time, CPU seconds) of the first step and of the latest one

    def first_step(optimizer, args, kwargs):
        print(f"first_step {time.time()} {time.process_time()}", flush=True)
        if stop:
            os._exit(0)
        handle.remove()

    def every_step(optimizer, args, kwargs):
        now = (time.time(), time.process_time())
        steps[1 if steps else 0 :] = [now]
        counted[0] += 1

    def report_steps():
        if steps:
            (first, first_cpu), (last, last_cpu) = steps[0], steps[-1]
            print(f"steps {counted[0]} {first} {last} {first_cpu} {last_cpu}", flush=True)

    def hook(optimizer_module):
        nonlocal handle
        handle = optimizer_module.register_optimizer_step_pre_hook(
            every_step if count else first_step
        )

    handle, counted = None, [0]
    if count:
        atexit.register(report_steps)
    sys.meta_path.insert(0, _AfterImport(HOOKED_MODULE, hook))
    sys.argv = [module, *module_args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
