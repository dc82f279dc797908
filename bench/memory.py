"""Peak resident memory of a server over one phase (Linux /proc).

Writing "5" to /proc/PID/clear_refs resets the process's peak resident set
size; /proc/PID/status then reports the peak since the reset as VmHWM
(proc(5)). Both need the process to be ours (same user) or root.

A server is its process and every descendant: ``dicomhub serve --workers N``
is a parent and N workers (and multiprocessing's resource tracker). Figures
sum the tree; a sum of peaks is at least the peak of the sum (the processes
may peak at different moments), so it is an upper bound for a tree of more
than one process. The calling process (the bench, or a client measuring
itself) counts alone: its children are the servers it measures.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants now, from the parent field of /proc/*/stat."""
    if pid == os.getpid():
        return [pid]

    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # proc(5): the field after "(comm)" and the state is the parent's id;
        # comm may hold spaces and parentheses, so split after the last ")".
        parent = int(text.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))

    tree: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += children.get(current, [])
    return tree


def reset_peak(pid: int) -> bool:
    """Start a new peak for the server's whole tree; False when the kernel
    refuses for one process (then its VmHWM is the peak since it started)."""
    reset = True
    for member in process_tree(pid):
        try:
            Path(f"/proc/{member}/clear_refs").write_text("5")
        except OSError:
            reset = False
    return reset


def peak_megabytes(pid: int) -> float | None:
    """VmHWM summed over the tree, in MB (10^6 bytes); None when `pid` is gone."""
    return _summed(pid, "VmHWM:")


def resident_megabytes(pid: int) -> float | None:
    """VmRSS, the resident set size now, summed over the tree, in MB; None
    when `pid` is gone."""
    return _summed(pid, "VmRSS:")


def _summed(pid: int, field: str) -> float | None:
    total = 0.0
    for member in process_tree(pid):
        value = _status_megabytes(member, field)
        if value is None and member == pid:
            return None
        total += value or 0.0
    return total


def _status_megabytes(pid: int, field: str) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024 / 1e6
    return None
