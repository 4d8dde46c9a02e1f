"""Real signals mid-work, beyond a run's training loop (tests/test_interrupt.py): Ctrl-C in
`src.predict` and `src.cache`, and SIGTERM to a run whose DataLoader workers share its process
group (as a scheduler signals a job). Each command pauses at a chosen call (tests/crashing_run.py
`pause-at`, `pause`) and is signalled there: one line, exit 130 or 143, no traceback, nothing
half-written."""

import gc
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli, run_python
from tests.generated_data import write_image_folder
from tests.runs import FEW_DIGITS
from tests.test_decoded_cache import cached_data
from tests.test_interrupt import resumed_as_told, wait_for

pytestmark = pytest.mark.e2e  # real commands in their own processes


def signalled_when_paused(tmp_path, sig: int, *args: str) -> tuple[int, list[str]]:
    """`python -m tests.crashing_run <args>`, in a session of its own, signalled with `sig`
    (its whole process group, as a scheduler signals a job) once it pauses: its exit code and
    stderr lines."""
    marker = tmp_path / "paused"
    paused = subprocess.Popen(
        [sys.executable, "-m", "tests.crashing_run", *args],
        cwd=ROOT,
        env={**os.environ, "PAUSED_MARKER": str(marker)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for(marker, paused)
    os.killpg(paused.pid, sig)
    stderr = paused.communicate(timeout=120)[1]
    assert "Traceback" not in stderr, stderr
    return paused.returncode, stderr.splitlines()


def test_ctrl_c_mid_prediction_is_one_line_and_writes_no_half_file(tmp_path):
    run_dir, inputs = tmp_path / "run", write_image_folder(tmp_path / "images", per_class=2)
    run_cli(*FEW_DIGITS, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    # Paused as the model is about to see the first batch: predictions.csv.tmp is open.
    code, lines = signalled_when_paused(
        tmp_path,
        signal.SIGINT,
        "pause-at",
        "src.training.evaluation:outputs",
        "src.predict",
        f"run_dir={run_dir}",
        f"inputs={inputs}",
    )
    assert code == 130
    assert lines == [
        "groupwise: interrupted by Ctrl-C in src.predict: nothing left half-written; run it again"
    ]
    assert not (run_dir / "predictions.csv").exists() and not list(run_dir.glob("*.tmp"))
    again = run_python("-m", "src.predict", f"run_dir={run_dir}", f"inputs={inputs}")
    assert again.returncode == 0, again.stderr
    assert len((run_dir / "predictions.csv").read_text().splitlines()) == 1 + 6


def test_ctrl_c_mid_cache_clean_leaves_no_half_removed_version(tmp_path):
    root, cache_dir = write_image_folder(tmp_path / "data", per_class=2), tmp_path / "cache"
    held = cached_data(root, cache_dir)
    (version,) = cache_dir.glob("*/v-*")
    del held  # no run holds it any more: clean removes it
    gc.collect()
    # Paused after the version was renamed away, before its files are removed.
    code, lines = signalled_when_paused(
        tmp_path,
        signal.SIGINT,
        "pause-at",
        "src.data.cache_store:shutil.rmtree",
        "src.cache",
        "clean",
        f"cache_dir={cache_dir}",
        "unused_for_days=0",
    )
    assert code == 130
    assert lines == [
        "groupwise: interrupted by Ctrl-C in src.cache: nothing left half-written; run it again"
    ]
    # No run can find half a version: what is left is a removal's leftover, which the next
    # clean removes.
    assert not version.exists() and not list(cache_dir.glob("*/v-*"))
    again = run_python("-m", "src.cache", "clean", f"cache_dir={cache_dir}", "unused_for_days=0")
    assert again.returncode == 0, again.stderr
    assert list(cache_dir.iterdir()) == []


def test_sigterm_to_a_run_and_its_dataloader_workers_is_one_line_and_resumes(tmp_path):
    """A scheduler's SIGTERM reaches the job's whole process group: the run and its two
    DataLoader workers. One line, exit 143, no worker's traceback; the resume it gives
    finishes the run."""
    run_dir, root = tmp_path / "run", write_image_folder(tmp_path / "data", per_class=8)
    # 3 classes x 8 images, a quarter held out: 18 to train, batch 4: 5 steps an epoch.
    run = [
        "dataset=image_folder",
        f"dataset.root={root}",
        "dataset.val_fraction=0.25",
        "dataset.batch_size=4",
        "dataset.num_workers=2",
        "pretrained=none",
        "trainer.max_epochs=2",
        "trainer.checkpoint_every_n_steps=3",
    ]
    code, lines = signalled_when_paused(
        tmp_path, signal.SIGTERM, "pause", "4", *run, f"hydra.run.dir={run_dir}"
    )
    assert code == 143, lines
    assert len(lines) == 1 and lines[0].startswith("groupwise: interrupted by SIGTERM"), lines
    assert "resume=true continues from" in lines[0]
    assert not list(run_dir.rglob("*.tmp"))
    resumed_as_told(lines[0], run_dir)
    assert (run_dir / "metrics.json").is_file()
