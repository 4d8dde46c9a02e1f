"""What src/config/hydra_internals.py takes from Hydra's private code still holds.

These tests fail, saying what changed, when a Hydra release moves or changes
`hydra._internal.utils.run_and_report`; the CLI tests (tests/test_errors.py) would only show
a config error printed over several lines again.
"""

import inspect
import sys

import pytest
from hydra._internal import utils as hydra_internal_utils

import src.run
from src.config import hydra_internals
from tests.conftest import ROOT

CHANGED = (
    "Hydra changed underneath src/config/hydra_internals.py, which wraps "
    "hydra._internal.utils.run_and_report to print config errors as one line: "
)


def run_entry_point(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    """`python -m src.run <args>` in this process, for a command that fails before any run:
    the exit code and the stderr lines."""
    # Imported, not run as __main__, the entry point needs its config dir named.
    monkeypatch.setattr(sys, "argv", ["src.run", f"--config-path={ROOT / 'conf'}", *args])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    # Hydra re-raises instead of reporting when a tracer (a debugger, coverage) is active.
    monkeypatch.setattr(hydra_internal_utils, "is_under_debugger", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        src.run.main()
    return exit_.value.code, capsys.readouterr().err.splitlines()


def test_run_and_report_still_exists_with_the_signature_wrapped():
    report = getattr(hydra_internal_utils, "run_and_report", None)
    assert callable(report), CHANGED + "run_and_report is gone"
    assert list(inspect.signature(report).parameters) == ["func"], (
        CHANGED + f"run_and_report{inspect.signature(report)} no longer takes just `func`"
    )
    for caller in ("_run_hydra", "_run_app"):  # they look it up by name when they call it
        function = getattr(hydra_internal_utils, caller, None)
        assert function is not None and "run_and_report" in function.__code__.co_names, (
            CHANGED + f"{caller} no longer calls run_and_report through its module"
        )


def test_importing_the_entry_point_patches_nothing():
    assert hydra_internal_utils.run_and_report.__module__ == "hydra._internal.utils", (
        "hydra._internal.utils.run_and_report is replaced outside the entry point; "
        "src/config/hydra_internals.py must wrap it only while `python -m src.run` runs"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["model=lenett"],
            "groupwise: error: model=lenett: no such model config; did you mean model=lenet?",
        ),
        (
            ["-m", "trainer.max_epoch=1,2"],
            "groupwise: error: trainer.max_epoch: no such key; did you mean trainer.max_epochs?",
        ),
        (["pattern=^fc3"], "groupwise: error: cannot parse the override 'pattern=^fc3'"),
    ],
    ids=["run-unknown-option", "multirun-typo-key", "unparsable-override"],
)
def test_hydra_reports_config_errors_over_lines_and_the_wrapper_makes_them_one(
    monkeypatch, capsys, tmp_path, args, expected
):
    args = [*args, f"hydra.run.dir={tmp_path}", f"hydra.sweep.dir={tmp_path}"]
    code, lines = run_entry_point(monkeypatch, capsys, *args)
    assert code == 1 and len(lines) > 1 and "HYDRA_FULL_ERROR" in lines[-1], (
        CHANGED + f"without the wrapper Hydra no longer reports {args} over several lines and "
        f"exit 1; it printed {lines}, exit {code}: is the wrapper still needed?"
    )

    with hydra_internals.config_errors_as_one_line():
        code, lines = run_entry_point(monkeypatch, capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(expected), (
        CHANGED + f"with the wrapper, {args} printed {lines}, exit {code}"
    )
    assert hydra_internal_utils.run_and_report.__module__ == "hydra._internal.utils"
