"""torch's threads follow the CPUs this process may use (affinity, a cgroup's quota), unless
trainer.threads or OMP_NUM_THREADS says otherwise."""

import json
import os
import subprocess
import sys

import pytest

from src.training.threads import allowed_cpus, cgroup_quota
from tests.conftest import ROOT

# Run in a process of its own: torch's threads are the process's, and OMP_NUM_THREADS is read
# when torch starts.
SCRIPT = """
import json, os, sys
from pathlib import Path
import torch
from src.training.threads import set_threads
cpu_max = Path(sys.argv[1])
default = torch.get_num_threads()
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # after torch started: it cannot see
said = {"default": default, "automatic": set_threads(None, cpu_max)}
said["automatic_threads"] = torch.get_num_threads()
said["configured"] = set_threads(3, cpu_max)
said["configured_threads"] = torch.get_num_threads()
print(json.dumps(said))
"""


def threads_in_a_process(tmp_path, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "no-cpu.max")],
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
def test_a_cgroup_quota_is_read_robustly(tmp_path, text, quota):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert cgroup_quota(cpu_max) == quota
    assert cgroup_quota(tmp_path / "absent") is None


def test_a_quota_below_the_cpus_allowed_sets_the_threads(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")  # one CPU's worth
    threads, why = allowed_cpus(cpu_max)
    assert threads == 1
    if (os.cpu_count() or 1) > 1 and len(os.sched_getaffinity(0)) > 1:
        assert why == f"the cgroup's CPU quota ({cpu_max})"
