"""How many threads torch computes with on the CPU: as many as the CPUs this process may use,
unless `trainer.threads` says otherwise, or OMP_NUM_THREADS was set (by hand, by torchrun, or
by joblib's workers, each to its share of the cores: a sweep's parallel jobs keep theirs).

The CPUs it may use: its affinity (taskset, a scheduler's cpuset), which torch's default also
follows, and a cgroup v2 quota (a container's `--cpus`, a scheduler's allocation), which torch's
default does not see: a job given 2 CPUs of a 64-core machine would start 64 threads, each
waiting on the others.
"""

import math
import os
from pathlib import Path

import torch

# The quota of this process's cgroup, as a container sees its own (cgroup v2).
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def set_threads(
    configured: int | None, cpu_max: Path = CPU_MAX, key: str = "trainer.threads"
) -> str:
    """Set torch's intra-op threads; how many and why, for the command's device line. `key`:
    the option that gave `configured`."""
    if configured is not None:
        threads, why = configured, key
    elif "OMP_NUM_THREADS" in os.environ:  # torch read it when it started
        threads, why = torch.get_num_threads(), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    else:
        threads, why = allowed_cpus(cpu_max)
    torch.set_num_threads(threads)
    return f"{threads} torch thread(s): {why}"


def allowed_cpus(cpu_max: Path = CPU_MAX) -> tuple[int, str]:
    """The CPUs this process may use, and what limits them."""
    if hasattr(os, "sched_getaffinity"):
        cpus, why = len(os.sched_getaffinity(0)), "the CPUs this process may use"
    else:  # macOS, Windows: no affinity to read
        cpus, why = os.cpu_count() or 1, "the machine's CPUs"
    quota = cgroup_quota(cpu_max)
    if quota is not None and quota < cpus:
        return quota, f"the cgroup's CPU quota ({cpu_max})"
    return cpus, why


def cgroup_quota(cpu_max: Path = CPU_MAX) -> int | None:
    """CPUs' worth of time the cgroup may use per period, rounded up (1.5 CPUs: 2 threads,
    each busy three quarters of the time); None: no such file, no limit (`max`), or a file
    not in cgroup v2's `<quota> <period>` form."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        return None
    quota, period = int(fields[0]), int(fields[1])
    return max(1, math.ceil(quota / period)) if quota and period else None
