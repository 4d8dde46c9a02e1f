"""A process's peak memory, read from Linux's /proc: the kernel's peak-RSS counter reset to the
current RSS, so a benchmark measures what a step adds, not what its imports once touched."""

from pathlib import Path


def reset_peak() -> int:
    """Set the kernel's peak-RSS counter to the current RSS, and return that, in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmRSS") * 1024


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")
