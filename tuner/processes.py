"""Is a process still there? Used to reclaim what killed workers left behind."""

from __future__ import annotations

import os
import re


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def left_by_dead(folder: str, pattern: str) -> list[str]:
    """Paths in ``folder`` whose name matches ``pattern`` (its first group a pid) of processes
    that no longer run: what a killed process left behind (never this process's own)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        m = re.fullmatch(pattern, name)
        if m and int(m[1]) != os.getpid() and not pid_alive(int(m[1])):
            found.append(os.path.join(folder, name))
    return found
