"""How busy the machine was with other work while a trial trained.

The objective divides by seconds, and seconds measured while another job
shares the cores are inflated: on a loaded machine the same depth can take
twice as long. The load average cannot tell that apart from the trial's
own training (which keeps every core busy), so the meter counts the
machine's busy CPU time (``/proc/stat``) and subtracts what this process and
its children (the trial process) used: what is left is other work, in
cores. Linux only; elsewhere nothing is measured.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from tuner import stored_keys as keys

# Other work averaging more than this share of the cores marks a reading busy.
BUSY_SHARE = 0.25


def _machine_busy_ticks() -> int | None:
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10])  # counted in user and nice already
    return sum(fields) - guest - idle


def _process_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12]) + int(parts[13]) + int(parts[14])  # utime stime cutime cstime
    except (OSError, ValueError, IndexError):
        return 0


def _own_tree() -> list[int]:
    """This process and its direct children (the trial process)."""
    me, pids = os.getpid(), [os.getpid()]
    try:
        names = os.listdir("/proc")
    except OSError:
        return pids
    for name in names:
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        pids.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
    return pids


@dataclass
class LoadMeter:
    """Start before a trial, ``read`` after it: the cores other work kept busy meanwhile."""

    _t0: float = 0.0
    _busy0: int | None = None
    _own0: dict[int, int] | None = None

    def start(self) -> LoadMeter:
        self._t0 = time.perf_counter()
        self._busy0 = _machine_busy_ticks()
        self._own0 = {pid: _process_ticks(pid) for pid in _own_tree()}
        return self

    def read(self) -> dict[str, float]:
        """``other_load`` (cores busy with other work, averaged over the trial) and ``cores``;
        empty where /proc is missing."""
        busy1 = _machine_busy_ticks()
        wall = time.perf_counter() - self._t0
        if self._busy0 is None or busy1 is None or wall <= 0:
            return {}
        pids = set(self._own0) | set(_own_tree())
        own = sum(max(0, _process_ticks(pid) - self._own0.get(pid, 0)) for pid in pids)
        ticks = os.sysconf("SC_CLK_TCK")
        other = max(0.0, (busy1 - self._busy0 - own) / ticks / wall)
        return {"other_load": round(other, 3), "cores": os.cpu_count() or 1}


def is_busy(attrs: dict) -> bool:
    """Did other work hold more than ``BUSY_SHARE`` of the cores during this trial?"""
    load, cores = attrs.get(keys.OTHER_LOAD), attrs.get(keys.CORES)
    return load is not None and bool(cores) and float(load) > BUSY_SHARE * float(cores)
