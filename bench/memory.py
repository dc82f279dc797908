"""Peak resident memory of a server process over one phase (Linux /proc).

Writing "5" to /proc/PID/clear_refs resets the process's peak resident set
size; /proc/PID/status then reports the peak since the reset as VmHWM
(proc(5)). Both need the process to be ours (same user) or root.
"""

from __future__ import annotations

from pathlib import Path


def reset_peak(pid: int) -> bool:
    """Start a new peak; False when the kernel refuses (then VmHWM is the
    peak since the process started)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_megabytes(pid: int) -> float | None:
    """VmHWM in MB (10^6 bytes), or None when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return None


def resident_megabytes(pid: int) -> float | None:
    """VmRSS, the resident set size now, in MB; None when the process is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return None
