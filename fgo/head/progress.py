"""The live progress line of `fgo build` on a terminal, and -v's per-action lines."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO


class Progress:
    """Redraws one status line (on a TTY) from the front's state, 5 times a second."""

    def __init__(self, front: Any, stream: TextIO = sys.stderr, interval: float = 0.2) -> None:
        self.front = front
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fgo-progress", daemon=True)

    def line(self) -> str:
        running = self.front.running_records()
        with self.front.recorder.lock:
            done = Counter(a.mode for a in self.front.recorder.actions)
        now = time.time()
        slowest = max(running, key=lambda r: now - (r.start or now), default=None)
        parts = [f"fgo: {sum(done.values())} compiled ({done['remote']} remote, "
                 f"{done['local']} local), {len(running)} running"]
        if slowest is not None:
            parts.append(f"slowest {slowest.package} {now - (slowest.start or now):.1f}s")
        parts.append(f"{time.monotonic() - self.started:.0f}s")
        return " | ".join(parts)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write("\r\x1b[K" + self.line()[:200])
            self.stream.flush()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()
