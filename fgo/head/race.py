"""Dynamic execution: a local slot that frees while go build waits on remote compiles runs
the one expected to finish last as well; the first result wins (Bazel's dynamic execution:
clean build 2895 s local / 487 s remote / 454 s dynamic, incremental 23 / 143 / 22 s:
never worse than local).

go build asks for its next compile as soon as one returns, so a slot that stays free for
GRACE_S after a compile ended means go has nothing ready: the build waits on what runs
remotely. Then the remote compile with the longest expected remaining time is raced on
that slot, if it is expected to run at least MIN_REMAINING_S more (a head run of a compile
about to finish would only take the slot from go's next request).

`candidate` is the decision (pure); `Racer` keeps the compiles in flight and hands a slot
to the chosen one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fgo.head.slots import LocalSlots

GRACE_S = 0.05          # a slot free this long: go build has nothing ready
MIN_REMAINING_S = 0.5   # race only what is expected to run at least this much longer


@dataclass(frozen=True)
class InFlight:
    """A remote compile go build waits for."""

    key: int
    elapsed: float          # seconds it has run
    expected: float         # its expected duration, seconds


def candidate(inflight: Sequence[InFlight], min_remaining: float = MIN_REMAINING_S) -> int | None:
    """The key of the remote compile to race: the longest expected remaining time, if that
    is at least MIN_REMAINING; a compile past its expected time counts as about to finish
    no sooner than its own elapsed time again (a straggler is worth racing)."""
    best, best_left = None, min_remaining
    for f in inflight:
        left = f.expected - f.elapsed if f.elapsed < f.expected else f.elapsed
        if left >= best_left:
            best, best_left = f.key, left
    return best


@dataclass
class _Entry:
    action: Any
    started: float
    expected: float
    wake: threading.Event
    slot: int | None = None     # the slot handed to it, until its race ends
    raced: bool = False


class Racer:
    """The remote compiles in flight; races one of them when a local slot stays free."""

    def __init__(self, slots: LocalSlots, grace: float = GRACE_S) -> None:
        self.slots = slots
        self.grace = grace
        self.lock = threading.Lock()
        self.inflight: dict[int, _Entry] = {}
        self.races = 0
        slots.on_release.append(self._slot_freed)

    def track(self, action: Any, expected: float, wake: threading.Event) -> None:
        """ACTION runs remotely now, expected to take EXPECTED seconds; WAKE is set when it
        is handed a slot to race on."""
        with self.lock:
            self.inflight[id(action)] = _Entry(action, time.monotonic(), expected, wake)

    def untrack(self, action: Any) -> None:
        """ACTION is done remotely; a slot handed to it and not used is free again."""
        with self.lock:
            entry = self.inflight.pop(id(action), None)
            unused = entry.slot if entry is not None and not entry.raced else None
        self.slots.release(unused)

    def wants(self, action: Any, elapsed: float) -> bool:
        """Whether ACTION was handed a slot to race on (the remote executor asks); it then
        races on it."""
        with self.lock:
            entry = self.inflight.get(id(action))
            if entry is None or entry.slot is None or entry.raced:
                return False
            entry.raced = True
            self.races += 1
            return True

    def done(self, action: Any) -> None:
        """ACTION's race ended: its slot is free again."""
        with self.lock:
            entry = self.inflight.get(id(action))
            slot = entry.slot if entry is not None else None
            if entry is not None:
                entry.slot, entry.raced = None, True  # never raced twice
        self.slots.release(slot)

    def _slot_freed(self) -> None:
        timer = threading.Timer(self.grace, self._offer)
        timer.daemon = True
        timer.start()

    def _offer(self) -> None:
        """A slot freed GRACE ago: if go has not taken it, race the best candidate on it."""
        now = time.monotonic()
        with self.lock:
            entries = {k: e for k, e in self.inflight.items() if not e.raced and e.slot is None}
            key = candidate([InFlight(k, now - e.started, e.expected) for k, e in entries.items()])
            if key is None:
                return
            slot = self.slots.take()
            if slot is None:
                return
            entry = entries[key]
            entry.slot = slot
        entry.wake.set()
