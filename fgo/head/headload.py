"""Whether the head node has a core free now: the sampled verification's condition.

A sampled check recompiles a remote compile on the head. On a head whose cores its own
workers, go build or other work keep busy, that compile takes a core from the build
(two emulated one-core hosts, the head beside host 0, a cold etcd build: 16 sampled
checks of compiles that took 6 s on the hosts took 13 s on the head's shared core, all
of it taken from host 0's compiles). So a
sample is taken only while the head's cores were at least half a core idle since the
last look (/proc/stat, over the cores this process may run on).

`idle_cores` is the decision (pure); `HeadLoad` reads the counters.
"""

from __future__ import annotations

import os
import time

FREE_CORES = 0.5        # idle cores, on average since the last look, that count as one free
MIN_INTERVAL_S = 0.2    # looks closer than this reuse the last answer


def idle_cores(before: tuple[int, int], now: tuple[int, int], cores: int) -> float:
    """Cores idle on average between two readings (idle jiffies, all jiffies) summed over
    CORES cores; 0.0 when no time passed."""
    total = now[1] - before[1]
    if total <= 0:
        return 0.0
    return cores * max(0, now[0] - before[0]) / total


class HeadLoad:
    """The idle time of the cores this process may run on, from /proc/stat. Where there is
    no /proc/stat, a core is always free (sampling as if the head were idle)."""

    def __init__(self, stat: str = "/proc/stat") -> None:
        self.stat = stat
        self.cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)} \
            if hasattr(os, "sched_getaffinity") else set()
        self.last = self._read()
        self.at = time.monotonic()
        self.free = True

    def _read(self) -> tuple[int, int] | None:
        idle = total = 0
        try:
            with open(self.stat) as f:
                for line in f:
                    name, *fields = line.split()
                    if name in self.cpus:
                        ticks = [int(x) for x in fields[:8]]  # user..steal
                        idle += ticks[3] + ticks[4]            # idle, iowait
                        total += sum(ticks)
        except (OSError, ValueError, IndexError):
            return None
        return (idle, total) if total else None

    def core_free(self) -> bool:
        now = time.monotonic()
        if self.last is None or now - self.at < MIN_INTERVAL_S:
            return self.free
        reading = self._read()
        if reading is not None:
            self.free = idle_cores(self.last, reading, len(self.cpus)) >= FREE_CORES
            self.last, self.at = reading, now
        return self.free
