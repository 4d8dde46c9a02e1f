"""How many threads torch computes with on the CPU: as many as the CPUs this process may use,
unless `trainer.threads` says otherwise, or OMP_NUM_THREADS was set (by hand, by torchrun, or
by joblib's workers, each to its share of the cores: a sweep's parallel jobs keep theirs).

The CPUs it may use: its affinity (taskset, a scheduler's cpuset), which torch's default also
follows, and a cgroup's CPU quota (a container's `--cpus`, a scheduler's allocation), which
torch's default does not see: a job given 2 CPUs of a 64-core machine would start 64 threads,
each waiting on the others. The quota is read as a container sees its own cgroup: cgroup v2's
`cpu.max`, or where that is absent (older hosts, older Docker and Slurm setups) cgroup v1's
`cpu/cpu.cfs_quota_us` and `cpu/cpu.cfs_period_us`.
"""

import math
import os
from pathlib import Path

import torch

# Where a container sees its own cgroup's files.
CGROUP = Path("/sys/fs/cgroup")


def set_threads(configured: int | None, cgroup: Path = CGROUP, key: str = "trainer.threads") -> str:
    """Set torch's intra-op threads; how many and why, for the command's device line. `key`:
    the option that gave `configured`."""
    if configured is not None:
        threads, why = configured, key
    elif "OMP_NUM_THREADS" in os.environ:  # torch read it when it started
        threads, why = torch.get_num_threads(), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    else:
        threads, why = allowed_cpus(cgroup)
    torch.set_num_threads(threads)
    return f"{threads} torch thread(s): {why}"


def allowed_cpus(cgroup: Path = CGROUP) -> tuple[int, str]:
    """The CPUs this process may use, and what limits them."""
    if hasattr(os, "sched_getaffinity"):
        cpus, why = len(os.sched_getaffinity(0)), "the CPUs this process may use"
    else:  # macOS, Windows: no affinity to read
        cpus, why = os.cpu_count() or 1, "the machine's CPUs"
    quota, where = cgroup_quota(cgroup)
    if quota is not None and quota < cpus:
        return quota, f"the cgroup's CPU quota ({where})"
    return cpus, why


def cgroup_quota(cgroup: Path = CGROUP) -> tuple[int | None, Path]:
    """CPUs' worth of time the cgroup at `cgroup` may use per period, rounded up (1.5 CPUs: 2
    threads, each busy three quarters of the time), and the file that said so: cgroup v2's,
    else v1's. None: no such file, no limit, or a file not in its version's form."""
    v2 = cgroup / "cpu.max"
    if v2.exists():
        return v2_quota(v2), v2
    v1 = cgroup / "cpu" / "cpu.cfs_quota_us"
    return v1_quota(v1, v1.with_name("cpu.cfs_period_us")), v1


def v2_quota(cpu_max: Path) -> int | None:
    """cgroup v2's `cpu.max`: `<quota> <period>` in microseconds, or `max <period>`."""
    fields = _read(cpu_max).split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    return _cpus(int(fields[0]), int(fields[1]))


def v1_quota(quota_file: Path, period_file: Path) -> int | None:
    """cgroup v1's `cpu.cfs_quota_us` (-1: no limit) and `cpu.cfs_period_us`, a number each."""
    quota, period = _read(quota_file).strip(), _read(period_file).strip()
    if not (quota.isdigit() and period.isdigit()):  # -1, absent, or not a number
        return None
    return _cpus(int(quota), int(period))


def _cpus(quota: int, period: int) -> int | None:
    return max(1, math.ceil(quota / period)) if quota and period else None


def _read(path: Path) -> str:
    """The file's text; '' when it cannot be read (absent, no permission)."""
    try:
        return path.read_text()
    except OSError:
        return ""
