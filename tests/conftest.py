"""Shared helpers: compose the real configs in-process, run the real CLI in a subprocess and
check how it refuses bad input, read TensorBoard event files back."""

import builtins
import gc
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

import src.run  # noqa: F401  registers the config resolvers
from src.config.dataset_schema import FileDatasetConfig, ImageFolderConfig
from src.data import build as data_build
from src.data.view import View
from src.errors import GroupwiseError
from src.training import checkpoints
from src.training.checkpoints import PROGRESS

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_WEIGHTS = ROOT / "weights" / "lenet_digits_0-4.pt"
CLI = [sys.executable, "-m", "src.run"]  # the command a user types


def compose_config(*overrides: str, with_hydra: bool = False):
    """The config `python -m src.run <overrides>` would run; `with_hydra`: with its `hydra`
    node (launcher, run dir, choices)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


@pytest.fixture
def make_cfg():
    return compose_config


@pytest.fixture
def every_checkpoint(monkeypatch, tmp_path):
    """Keeps a copy of every checkpoint a run writes, by global step."""
    copies = {}
    save = checkpoints.save_checkpoint

    def save_and_copy(state, path):
        save(state, path)
        copy = tmp_path / f"step{state[PROGRESS]['global_step']}.pt"
        shutil.copy(path, copy)
        copies[state[PROGRESS]["global_step"]] = copy

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_and_copy)
    return copies


def view_of(kind: type = ImageFolderConfig, **options) -> View:
    """A dataset kind's training view at its schema defaults (an image folder's: photos), with
    `options` (dataset option names) changed."""
    return View.of(kind(**options))


def built_as_a_run_builds(builder):
    """`builder` (a dataset's) called as a run's data step calls it (`src.data.build`): the
    options given as keywords, every other at its schema default, checked first as the check
    pass checks them (a problem raises the check pass's GroupwiseError)."""

    def call(seed: int = 0, model_preprocess=None, **options):
        section = {"_target_": f"{builder.__module__}.{builder.__name__}", **options}
        problems = data_build.problems(section, seed)
        if problems:
            raise GroupwiseError(*problems)
        _, typed = data_build.dataset_options(section)
        if isinstance(typed, FileDatasetConfig):
            return builder(typed, seed, model_preprocess=model_preprocess)
        return builder(typed, seed)

    return call


@pytest.fixture
def decoded(monkeypatch) -> list[Path]:
    """Every file the decoded cache's decoder decodes in this process (builds without workers)."""
    from src.data import decode

    files = []
    decode_file = decode.Decoder.__call__

    def counting(self, path):
        files.append(Path(path))
        return decode_file(self, path)

    monkeypatch.setattr(decode.Decoder, "__call__", counting)
    return files


# --- pytest-xdist workers -------------------------------------------------------------------

_set_by_the_worker = False  # whether this worker set OMP_NUM_THREADS (to its share)


def pytest_configure(config):
    """An xdist worker, and every command it starts, uses its share of the cores: two workers
    whose runs each spin torch's threads on every core slow tiny runs tenfold or more (the
    2-core VM). An OMP_NUM_THREADS set by hand is kept."""
    global _set_by_the_worker
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, (cores or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
        _set_by_the_worker = True


@pytest.fixture(autouse=True)
def _machine_threads(request, monkeypatch):
    """A test marked machine_threads starts its commands without the worker's
    OMP_NUM_THREADS: it checks how a command divides the machine's cores."""
    if _set_by_the_worker and request.node.get_closest_marker("machine_threads"):
        monkeypatch.delenv("OMP_NUM_THREADS")


# --- the CLI in a subprocess ----------------------------------------------------------------


def run_python(
    *args: str, cwd: Path = ROOT, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python <args>` in a fresh process, output captured; `env` adds to this environment."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_cli(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m src.run <args>`; `check`: fail the test, with the output, unless it exits 0."""
    result = run_python("-m", "src.run", *args, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def run_cli_here(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`run_cli` without a new process: `src/run.py` executed as `__main__` in this one
    (tests/cli_in_process.py), with the command's exit code and output; torch is imported
    once. For runs whose own process is not the point (no environment, no workers)."""
    from tests import cli_in_process

    try:
        with warnings.catch_warnings():
            # conftest imported src.run (its resolvers); runpy runs a fresh copy as __main__,
            # as the command does, and says so.
            warnings.filterwarnings("ignore", "'src.run' found in sys.modules", RuntimeWarning)
            outcome = cli_in_process.run(list(args))
    finally:
        # The command turns the collector off until it has started, and freezes what it
        # made at exit; this process carries on.
        gc.unfreeze()
        gc.enable()
    result = subprocess.CompletedProcess(
        ["src.run", *args], outcome["code"], outcome["stdout"], outcome["stderr"]
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The stderr lines of a run refused for bad input, checked to be what a user should see:
    exit 2, nothing but `groupwise: error:` lines, no traceback, no HYDRA_FULL_ERROR hint."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("groupwise: error: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "HYDRA_FULL_ERROR" not in result.stderr
    return lines


def run_with_reader_gone(*args: str, timeout: float) -> tuple[int, str]:
    """`python <args> | head` with the reader gone before anything is printed: the exit code
    and stderr."""
    reader_gone = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    reader_gone.stdout.close()  # as `head` exits
    stderr = reader_gone.stderr.read()
    return reader_gone.wait(timeout=timeout), stderr


def assert_one_clear_line(result: subprocess.CompletedProcess, expected: str) -> None:
    lines = error_lines(result)
    assert len(lines) == 1 and expected in lines[0], result.stderr


# --- TensorBoard event files ----------------------------------------------------------------


def read_events(run_dir: Path) -> EventAccumulator:
    """Everything a run's event files hold (no sampling: every step of every tag)."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a run's event files, as (step, value) pairs."""
    events = read_events(run_dir)
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def read_texts(run_dir: Path) -> dict[str, str]:
    """Every text summary of a run's event files, by tag."""
    events = read_events(run_dir)
    return {
        tag.removesuffix("/text_summary"): events.Tensors(tag)[-1]
        .tensor_proto.string_val[0]
        .decode()
        for tag in events.Tags()["tensors"]
        if tag.endswith("/text_summary")
    }


def read_plugin_content(run_dir: Path, plugin: str) -> dict[str, bytes]:
    """A TensorBoard plugin's data in a run's event files, by tag."""
    return read_events(run_dir).PluginTagToContent(plugin)


def read_session_hparams(run_dir: Path) -> dict[str, float | str]:
    """The hparams of the run's session as its HPARAMS row shows them: numbers as numbers."""
    content = read_plugin_content(run_dir, "hparams")[hparams_metadata.SESSION_START_INFO_TAG]
    start = hparams_metadata.parse_session_start_info_plugin_data(content)
    return {
        k: v.number_value if v.HasField("number_value") else v.string_value
        for k, v in start.hparams.items()
    }


# --- checkpoints ----------------------------------------------------------------------------


class CreatesFile:
    """A pickle payload that creates a file when unpickled: what a malicious checkpoint does."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return builtins.open, (self.target, "w")
