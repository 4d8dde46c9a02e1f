"""A command that gets Ctrl-C the moment a given module starts to be imported, wherever that
import stands (inside torch's C code, say), to test that no such Ctrl-C is lost:

    python -m tests.interrupted_import MODULE src.<command> [arguments]

Used by tests/test_interrupt.py.
"""

import importlib.abc
import os
import runpy
import signal
import sys


class InterruptOnImport(importlib.abc.MetaPathFinder):
    """Sends SIGINT to this process when `module` is first looked for; finds nothing itself."""

    def __init__(self, module: str):
        self.module = module
        self.sent = False

    def find_spec(self, name, path, target=None):
        if name == self.module and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return None


if __name__ == "__main__":
    module, command, *arguments = sys.argv[1:]
    sys.meta_path.insert(0, InterruptOnImport(module))
    sys.argv = [command, *arguments]
    runpy.run_module(command, run_name="__main__", alter_sys=True)
