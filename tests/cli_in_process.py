"""Run the real CLI (`python -m src.run ARGS`) once per argument list, all in this one process:
each run executes `src/run.py` as `__main__`, exactly as the command does, with its stderr
and exit code recorded. One process for many runs spares each run torch's ~2 s of imports.

    python -m tests.cli_in_process cases.json results.json

cases.json: a list of argument lists; results.json: [{"code", "stdout", "stderr"}, ...].
"""

import contextlib
import io
import json
import runpy
import sys
import traceback

from hydra.core.global_hydra import GlobalHydra


def run(args: list[str]) -> dict:
    GlobalHydra.instance().clear()  # each command composes its config anew
    stdout, stderr = io.StringIO(), io.StringIO()
    sys.argv = ["src.run", *args]
    code = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            runpy.run_module("src.run", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # what the command would print as a traceback
            traceback.print_exc()
            code = 1
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def main() -> None:
    cases_file, results_file = sys.argv[1:3]
    with open(cases_file) as f:
        cases = json.load(f)
    results = [run(args) for args in cases]
    with open(results_file, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
