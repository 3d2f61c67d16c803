"""Speculative compiles (pipelining) use only the time a worker's real compiles leave idle.

Measured on two emulated single-core hosts (experiment 7, part 3): a niced speculation
beside a real compile still slowed it by ~1.3x, and the speculation itself crawled. So a
speculative compile runs only while the worker's real compiles leave one of its threads
free: it is stopped (SIGSTOP) while they occupy every thread and continued (SIGCONT) when
one ends. A speculation go build is already waiting for is `promote`d: it runs from then
on like a real compile, at a real compile's niceness (where the worker may lower one).

`runs` is the decision (pure); `IdleTime` applies it to the processes.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass


def runs(real: int, threads: int, wanted: bool) -> bool:
    """Whether a speculative compile may run: go build waits for it (WANTED), or the REAL
    compiles leave one of the worker's THREADS free."""
    return wanted or real < threads


@dataclass
class _Speculation:
    pid: int
    wanted: bool = False
    stopped: bool = False


class IdleTime:
    """The worker's real compiles and speculative compile processes (one per process)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.real = 0
        self.specs: dict[str, _Speculation] = {}  # by the -o it writes
        self.lock = threading.Lock()

    def real_started(self) -> None:
        with self.lock:
            self.real += 1
            self._apply()

    def real_ended(self) -> None:
        with self.lock:
            self.real = max(0, self.real - 1)
            self._apply()

    def spec_started(self, output: str, pid: int) -> None:
        with self.lock:
            self.specs[output] = _Speculation(pid)
            self._apply()

    def spec_ended(self, output: str) -> None:
        with self.lock:
            self.specs.pop(output, None)

    def promote(self, output: str, nice: int = 0) -> bool:
        """go build waits for the speculation writing OUTPUT: let it run as a real compile,
        NICE nicer than this process (fgo.worker.runner.compile_nice): at 0 it took the
        core from the worker itself and from the real compiles beside it. False if it is
        not running here."""
        with self.lock:
            spec = self.specs.get(output)
            if spec is None:
                return False
            spec.wanted = True
            self._apply()
        _renice(spec.pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
        return True

    def _apply(self) -> None:
        for spec in self.specs.values():
            stop = not runs(self.real, self.threads, spec.wanted)
            if stop != spec.stopped:
                try:
                    os.kill(spec.pid, signal.SIGSTOP if stop else signal.SIGCONT)
                except ProcessLookupError:  # it has just ended
                    continue
                spec.stopped = stop


IDLE = IdleTime()  # this worker process's


def _renice(pid: int, value: int) -> None:
    """Every thread of process PID at niceness VALUE (niceness is per thread on Linux: the
    process's id alone names its first thread); a thread not permitted, or gone, is left."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # ended, or no /proc: its first thread at least
        threads = [str(pid)]
    for tid in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), value)
        except OSError:
            pass
