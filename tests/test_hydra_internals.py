"""What groupwise takes from Hydra beyond its public API still holds.

These tests fail, saying what changed, when a Hydra release moves or changes
`hydra._internal.utils.run_and_report` (src/config/hydra_internals.py), the basic sweeper's
class path (src/config/sweep.py), or the copy of the launching config's resolver cache into
each job's config, which gives a sweep's jobs one `${launch_time:...}` as it gives them one
`${now:...}` (src/config/resolvers.py); the CLI tests would only show a config error printed
over several lines again, grid jobs numbered as optuna's, or a sweep's jobs scattered over
sweep dirs of their own.
"""

import inspect
import sys
from datetime import datetime

import pytest
from hydra import initialize_config_dir
from hydra._internal import utils as hydra_internal_utils
from hydra.core.global_hydra import GlobalHydra
from hydra.plugins.sweeper import Sweeper
from hydra.types import RunMode
from hydra.utils import get_class
from omegaconf import OmegaConf

import src.run
from src.config import hydra_internals, resolvers, sweep
from tests.conftest import ROOT, compose_config

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
            # Without the check of a sweep's jobs (src/sweep_jobs.py), which reports it itself:
            # as the sweeper composes each job (optuna's, which that check skips).
            ["-m", "trainer.max_epoch=1,2", "~hydra.callbacks.sweep_jobs_check"],
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


SWEEP_CHANGED = "Hydra changed underneath src/config/sweep.py: "
RESOLVERS_CHANGED = "Hydra changed underneath src/config/resolvers.py: "


def test_the_basic_sweeper_is_still_configured_under_the_class_path_sweep_names():
    target = compose_config(with_hydra=True).hydra.sweeper._target_
    assert target == sweep.BASIC_SWEEPER, (
        SWEEP_CHANGED + f"the default sweeper is now {target}, not sweep.BASIC_SWEEPER "
        f"({sweep.BASIC_SWEEPER}): grid jobs would be numbered as optuna's are, and a grid "
        "listing a value twice no longer refused"
    )
    assert issubclass(get_class(target), Sweeper), SWEEP_CHANGED + f"{target} is no Sweeper"


def test_a_jobs_config_still_reads_the_launching_configs_launch_time():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        launching = loader.load_configuration("config", ["seed=0,1"], run_mode=RunMode.MULTIRUN)
        sweep_dir = launching.hydra.sweep.dir  # resolved in the launching process: cached there
        # The job's process reads another time (a worker started later, another machine).
        resolvers.register(launch_time=datetime(2001, 2, 3, 4, 5, 6))
        try:
            # How every launcher (basic, joblib, submitit) makes a job's config.
            job = loader.load_sweep_config(launching, ["seed=1"])
            shared = job.hydra.sweep.dir
            OmegaConf.clear_cache(job)
            own = job.hydra.sweep.dir
        finally:
            resolvers.register()
    assert own == "outputs/multirun/2001-02-03_04-05-06", "the job no longer reads its own time"
    assert shared == sweep_dir, (
        RESOLVERS_CHANGED + "ConfigLoader.load_sweep_config no longer copies the launching "
        f"config's resolver cache into the job's config (OmegaConf.copy_cache): the job read "
        f"the sweep dir {shared}, not the launching process's {sweep_dir}; each job would "
        "write into a sweep dir of its own"
    )
