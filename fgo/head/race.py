"""Dynamic execution: a local slot that frees while go build waits on remote compiles runs
the one expected to finish last as well; the first result wins (Bazel's dynamic execution:
clean build 2895 s local / 487 s remote / 454 s dynamic, incremental 23 / 143 / 22 s:
never worse than local).

go build asks for its next compile as soon as one returns, so a slot that stays free for
GRACE_S after a compile ended means go has nothing ready: the build waits on what runs
remotely. Then a compile still queued at its worker (go build's -p counts one queued compile
per worker) is taken: the head runs it and its worker drops it and moves on, so nothing is
done twice (experiment 8, aws-sdk-go: three giant services queued on one host while the
head raced the one already running there and lost 15 of 16 races). With none queued, the
running compile with the longest expected remaining time is raced on that slot, if it is
expected to run at least MIN_REMAINING_S more (a head run of a compile about to finish
would only take the slot from go's next request).

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
    elapsed: float          # seconds it has run on its worker (0 while queued there)
    expected: float         # its expected duration, seconds
    queued: bool = False    # waiting at its worker behind other compiles


def candidate(inflight: Sequence[InFlight], min_remaining: float = MIN_REMAINING_S) -> int | None:
    """The key of the remote compile to take: a queued one first, the longest expected (its
    worker drops it: nothing runs twice), if it is expected to take at least MIN_REMAINING;
    else the running one with the longest expected remaining time, if that is at least
    MIN_REMAINING; a compile past its expected time counts as about to finish no sooner than
    its own elapsed time again (a straggler is worth racing)."""
    queued = [f for f in inflight if f.queued and f.expected >= min_remaining]
    if queued:
        return max(queued, key=lambda f: f.expected).key
    best, best_left = None, min_remaining
    for f in inflight:
        if f.queued:
            continue
        left = f.expected - f.elapsed if f.elapsed < f.expected else f.elapsed
        if left >= best_left:
            best, best_left = f.key, left
    return best


def running_first(order: Sequence[int], threads: int) -> set[int]:
    """Of the compiles sent to one worker in ORDER (oldest first, still in flight), those
    it runs now: the first THREADS (its executor takes them in order); the rest wait."""
    return set(order[:max(1, threads)])


@dataclass
class _Entry:
    action: Any
    sent: float                 # when it was sent to its worker
    expected: float
    wake: threading.Event
    worker: str = ""
    threads: int = 1            # its worker's threads
    running_since: float | None = None  # when its worker started it, as far as we know
    slot: int | None = None     # the slot handed to it, until its race ends
    raced: bool = False
    take: bool = False          # handed while queued: its worker is told to drop it


class Racer:
    """The remote compiles in flight; races one of them when a local slot stays free."""

    def __init__(self, slots: LocalSlots, grace: float = GRACE_S) -> None:
        self.slots = slots
        self.grace = grace
        self.lock = threading.Lock()
        self.inflight: dict[int, _Entry] = {}
        self.races = 0
        slots.on_release.append(self._slot_freed)

    def track(self, action: Any, expected: float, wake: threading.Event, worker: str = "",
              threads: int = 1) -> None:
        """ACTION was sent to WORKER (of THREADS threads), expected to take EXPECTED seconds;
        WAKE is set when it is handed a slot to race on."""
        with self.lock:
            self.inflight[id(action)] = _Entry(action, time.monotonic(), expected, wake,
                                               worker, threads)
            self._started(worker)

    def untrack(self, action: Any) -> None:
        """ACTION is done remotely; a slot handed to it and not used is free again."""
        with self.lock:
            entry = self.inflight.pop(id(action), None)
            unused = entry.slot if entry is not None and not entry.raced else None
            if entry is not None:
                self._started(entry.worker)
        self.slots.release(unused)

    def takes(self, action: Any) -> bool:
        """Whether ACTION's race is a take: it was queued at its worker, which drops it."""
        with self.lock:
            entry = self.inflight.get(id(action))
            return entry is not None and entry.take

    def take_if_queued(self, action: Any) -> bool:
        """ACTION is raced as a straggler: if it still waits at its worker, it is taken
        (its worker drops it) instead of run twice; whether it was."""
        with self.lock:
            entry = self.inflight.get(id(action))
            if entry is None or entry.running_since is not None:
                return False
            entry.take = entry.raced = True
            return True

    def _started(self, worker: str) -> None:
        """Mark the compiles WORKER runs now (under the lock): a taken one is not there."""
        mine = sorted((e for e in self.inflight.values() if e.worker == worker and not e.take),
                      key=lambda e: e.sent)
        if not mine:
            return
        running = running_first([id(e.action) for e in mine], mine[0].threads)
        now = time.monotonic()
        for e in mine:
            if id(e.action) in running and e.running_since is None:
                e.running_since = now

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
            key = candidate([InFlight(k, now - e.running_since if e.running_since else 0.0,
                                      e.expected, queued=e.running_since is None)
                             for k, e in entries.items()])
            if key is None:
                return
            slot = self.slots.take()
            if slot is None:
                return
            entry = entries[key]
            entry.slot, entry.take = slot, entry.running_since is None
        entry.wake.set()
