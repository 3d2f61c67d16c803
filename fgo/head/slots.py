"""The head's own cores as execution slots: a compile on a free slot runs in the shim,
with nothing but the compiler in its path (distcc's localhost slots: remote work is for
the overflow).

The shim holds its connection to the head open while the compiler it exec'd runs (the
socket is inherited by the compiler process), so the head sees a slot free the moment
that process exits, even when it crashed. A slot is also taken by the head's own run of a
compile it races (fgo.head.race).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LocalSlots:
    """N slots; `take` gives a free one's number or None."""

    def __init__(self, n: int) -> None:
        self.n = max(0, n)
        self.free = list(range(self.n))
        self.lock = threading.Condition()
        self.freed_at = 0.0                           # time.monotonic() of the last release
        self.on_release: list[Callable[[], None]] = []  # e.g. the racer's look for a candidate
        self.taken_total = 0

    def take(self, wait: float = 0.0) -> int | None:
        """A free slot's number, waiting up to WAIT seconds for one; None if none."""
        with self.lock:
            if not self.free and wait > 0:
                self.lock.wait_for(lambda: bool(self.free), wait)
            if not self.free:
                return None
            self.taken_total += 1
            return self.free.pop(0)

    def release(self, slot: int | None) -> None:
        if slot is None:
            return
        with self.lock:
            if slot not in self.free:
                self.free.append(slot)
                self.free.sort()
            self.freed_at = time.monotonic()
            self.lock.notify()
        for listener in self.on_release:
            listener()

    def available(self) -> int:
        with self.lock:
            return len(self.free)
