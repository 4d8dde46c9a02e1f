"""The CLI (`python -m src.run`), with the process id of every image it decodes for a cache
appended to the file $DECODE_LOG: `python -m tests.decode_counting_run [overrides]`, under
torchrun too. Used by tests/test_decoded_cache_runs.py to count the builds."""

import os
import runpy

from src.data import decode

decode_file = decode.Decoder.__call__


def logged(self, path):
    with open(os.environ["DECODE_LOG"], "a") as log:
        log.write(f"{os.getpid()}\n")
    return decode_file(self, path)


if __name__ == "__main__":
    decode.Decoder.__call__ = logged
    runpy.run_module("src.run", run_name="__main__")  # as `python -m src.run` runs it
