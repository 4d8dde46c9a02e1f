"""torch's threads follow the CPUs this process may use (affinity, a cgroup's quota: v2's, or
v1's where v2's file is absent), unless trainer.threads or OMP_NUM_THREADS says otherwise."""

import json
import os
import subprocess
import sys

import pytest

from src.training.threads import allowed_cpus, cgroup_quota
from tests.conftest import ROOT, run_cli, run_python
from tests.generated_data import write_image_folder
from tests.runs import FEW_DIGITS

# Run in a process of its own: torch's threads are the process's, and OMP_NUM_THREADS is read
# when torch starts.
SCRIPT = """
import json, os, sys
from pathlib import Path
import torch
from src.training.threads import set_threads
cgroup = Path(sys.argv[1])
default = torch.get_num_threads()
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # after torch started: it cannot see
said = {"default": default, "automatic": set_threads(None, cgroup)}
said["automatic_threads"] = torch.get_num_threads()
said["configured"] = set_threads(3, cgroup)
said["configured_threads"] = torch.get_num_threads()
print(json.dumps(said))
"""


def threads_in_a_process(tmp_path, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "no-cgroup")],
        env={**environment, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity to restrict")
def test_threads_follow_a_restricted_affinity_unless_configured(tmp_path):
    said = threads_in_a_process(tmp_path)
    assert said["default"] == len(os.sched_getaffinity(0))  # what torch started with
    assert said["automatic"] == "1 torch thread(s): the CPUs this process may use"
    assert said["automatic_threads"] == 1
    assert said["configured"] == "3 torch thread(s): trainer.threads"
    assert said["configured_threads"] == 3


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity to restrict")
def test_omp_num_threads_as_a_parallel_sweeps_worker_sets_it_is_kept(tmp_path):
    said = threads_in_a_process(tmp_path, OMP_NUM_THREADS="2")
    assert said["automatic"] == "2 torch thread(s): OMP_NUM_THREADS=2"
    assert said["automatic_threads"] == 2


@pytest.mark.parametrize(
    ("text", "quota"),
    [
        ("150000 100000\n", 2),  # 1.5 CPUs: two threads, each busy three quarters of the time
        ("50000 100000\n", 1),
        ("max 100000\n", None),  # no limit
        ("", None),
        ("-1 100000\n", None),
        ("0 100000\n", None),
        ("a b c\n", None),
    ],
)
def test_a_cgroup_v2_quota_is_read_robustly(tmp_path, text, quota):
    (tmp_path / "cpu.max").write_text(text)
    assert cgroup_quota(tmp_path) == (quota, tmp_path / "cpu.max")
    assert cgroup_quota(tmp_path / "absent")[0] is None


@pytest.mark.parametrize(
    ("quota_text", "period_text", "quota"),
    [
        ("150000\n", "100000\n", 2),
        ("50000\n", "100000\n", 1),
        ("400000\n", "100000\n", 4),
        ("-1\n", "100000\n", None),  # v1's "no limit"
        ("0\n", "100000\n", None),
        ("100000\n", "0\n", None),
        ("", "100000\n", None),
        ("100000\n", None, None),  # no period file
        ("1.5\n", "100000\n", None),
    ],
)
def test_a_cgroup_v1_quota_is_read_where_v2s_file_is_absent(
    tmp_path, quota_text, period_text, quota
):
    v1 = tmp_path / "cpu"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text(quota_text)
    if period_text is not None:
        (v1 / "cpu.cfs_period_us").write_text(period_text)
    assert cgroup_quota(tmp_path) == (quota, v1 / "cpu.cfs_quota_us")


def test_cgroup_v2s_quota_is_the_one_read_where_both_are_there(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_quota(tmp_path) == (None, tmp_path / "cpu.max")


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_a_quota_below_the_cpus_allowed_sets_the_threads(tmp_path, version):
    if version == "v2":
        said = tmp_path / "cpu.max"
        said.write_text("100000 100000\n")  # one CPU's worth
    else:
        (tmp_path / "cpu").mkdir()
        said = tmp_path / "cpu" / "cpu.cfs_quota_us"
        said.write_text("100000\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    threads, why = allowed_cpus(tmp_path)
    assert threads == 1
    if (os.cpu_count() or 1) > 1 and len(os.sched_getaffinity(0)) > 1:
        assert why == f"the cgroup's CPU quota ({said})"


@pytest.mark.e2e
def test_evaluate_and_predict_choose_and_say_their_threads_as_a_run_does(tmp_path):
    """The device line of a run's log, printed first: `threads=` when given, else the run's
    trainer.threads, else OMP_NUM_THREADS (here) or the CPUs this process may use."""
    run_dir, images = tmp_path / "run", write_image_folder(tmp_path / "images", per_class=1)
    run_cli(*FEW_DIGITS, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    evaluate = ["-m", "src.evaluate", f"run_dir={run_dir}", "split=val"]
    said = run_python(*evaluate, f"output={tmp_path / 'a.json'}", env={"OMP_NUM_THREADS": "1"})
    assert said.stdout.splitlines()[0] == "device: cpu, 1 torch thread(s): OMP_NUM_THREADS=1"
    said = run_python(*evaluate, f"output={tmp_path / 'b.json'}", "threads=2")
    assert said.stdout.splitlines()[0] == "device: cpu, 2 torch thread(s): threads"
    predict = ["-m", "src.predict", f"run_dir={run_dir}", f"inputs={images}", "threads=3"]
    said = run_python(*predict, f"output={tmp_path / 'p.csv'}")
    assert said.stdout.splitlines()[0] == "device: cpu, 3 torch thread(s): threads"

    run_cli(*FEW_DIGITS, "trainer.max_epochs=1", "trainer.threads=1", f"hydra.run.dir={tmp_path}/t")
    said = run_python("-m", "src.predict", f"run_dir={tmp_path}/t", f"inputs={images}")
    assert (
        said.stdout.splitlines()[0] == "device: cpu, 1 torch thread(s): the run's trainer.threads"
    )
