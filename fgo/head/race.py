"""Dynamic execution: a local slot that frees while go build waits on remote compiles runs
the one expected to finish last as well; the first result wins (Bazel's dynamic execution:
clean build 2895 s local / 487 s remote / 454 s dynamic, incremental 23 / 143 / 22 s:
never worse than local).

go build asks for its next compile as soon as one returns, so a slot that stays free for
GRACE_S after a compile ended means go has nothing ready: the build waits on what runs
remotely. Then the slot goes where the head is expected to finish first, a compile taking
HEAD_SLOWDOWN times as long there (the head's core also carries fgo, go build, the
cacheprog and the checks):
- a compile still queued at its worker (go build's -p counts one queued compile per
  worker) is taken if the head finishes it before its worker would have: the head runs it,
  its worker drops it and moves on, nothing runs twice (experiment 8, aws-sdk-go: three
  giant services queued on one host while the head raced the one already running there and
  lost 15 of 16 races);
- a running compile is raced only when it is late: past its expected time by more than the
  head would take (a stopped or slow worker). A race of one on schedule only takes CPU from
  the head's other work (the same runs: 5-6 races lost per build, 1 won).
Either must be expected to take at least MIN_REMAINING_S (a head run of a compile about to
finish would only take the slot from go's next request).

`candidate` is the decision (pure); `Racer` keeps the compiles in flight and hands a slot
to the chosen one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fgo.head.slots import LocalSlots

GRACE_S = 0.05          # a slot free this long: go build has nothing ready
MIN_REMAINING_S = 0.5   # race only what is expected to run at least this much longer
# A compile on the head's slot against one on a worker: experiment 8 (aws-sdk-go, the head
# pinned to one core) charged 17% of the head core to fgo's own processes and go build,
# besides the checks: 1 / (1 - 0.2).
HEAD_SLOWDOWN = 1.25


@dataclass(frozen=True)
class InFlight:
    """A remote compile go build waits for."""

    key: int
    elapsed: float          # seconds it has run on its worker (0 while queued there)
    expected: float         # its expected duration, seconds
    queued: bool = False    # waiting at its worker behind other compiles
    wait: float = 0.0       # queued: expected seconds until its worker starts it


def candidate(inflight: Sequence[InFlight], min_remaining: float = MIN_REMAINING_S,
              slowdown: float = HEAD_SLOWDOWN) -> int | None:
    """The key of the remote compile the head's free slot should run, or None.
    A queued one first (its worker drops it: nothing runs twice) if the head, SLOWDOWN
    times slower, finishes it before its worker would (its wait plus its time): the
    longest expected. Else a running one that is late, the latest: one past its expected
    time counts as about to finish no sooner than its own elapsed time again, so it is
    raced once that exceeds what the head would take. Each only if expected to take at
    least MIN_REMAINING."""
    def here(f: InFlight) -> float:
        return slowdown * f.expected
    queued = [f for f in inflight if f.queued and f.expected >= min_remaining
              and here(f) < f.wait + f.expected]
    if queued:
        return max(queued, key=lambda f: f.expected).key
    best, best_left = None, min_remaining
    for f in inflight:
        if f.queued:
            continue
        left = f.expected - f.elapsed if f.elapsed < f.expected else f.elapsed
        if left >= best_left and here(f) < left:
            best, best_left = f.key, left
    return best


def queue_waits(running_left: Sequence[float], queued_expected: Sequence[float],
                threads: int) -> list[float]:
    """Expected seconds until each of a worker's queued compiles starts (in its queue's
    order, each QUEUED_EXPECTED long), given what its RUNNING compiles have left and its
    THREADS: each starts on the thread that frees first."""
    free = sorted([max(0.0, x) for x in running_left] + [0.0] * max(0, threads - len(running_left)))
    free = free[:max(1, threads)]
    waits = []
    for d in queued_expected:
        free.sort()
        start = free[0]
        waits.append(start)
        free[0] = start + d
    return waits


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

    def _at(self, worker: str) -> list[_Entry]:
        """WORKER's compiles in the order it got them (under the lock): a taken one is not
        there any more."""
        return sorted((e for e in self.inflight.values() if e.worker == worker and not e.take),
                      key=lambda e: e.sent)

    def _waits(self, now: float) -> dict[int, float]:
        """Each queued compile's expected wait at its worker (under the lock)."""
        out: dict[int, float] = {}
        workers = {e.worker for e in self.inflight.values() if e.running_since is None}
        for w in workers:
            mine = self._at(w)
            running = [e.expected - (now - e.running_since) for e in mine if e.running_since]
            queued = [e for e in mine if e.running_since is None]
            for e, wait in zip(queued, queue_waits(running, [q.expected for q in queued],
                                                    mine[0].threads if mine else 1)):
                out[id(e.action)] = wait
        return out

    def _started(self, worker: str) -> None:
        """Mark the compiles WORKER runs now (under the lock)."""
        mine = self._at(worker)
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

    def yield_to_queued(self, slot: int) -> bool:
        """A compile go build just asked for got SLOT: an older one still queued at its
        worker takes it instead if the head finishes that one before its worker would
        (`candidate`), and the new one goes to a worker. The oldest request first, as go
        build's own queue has it; a new request took the slot whenever go had one ready,
        so a compile queued behind a long one waited for it (experiment 8, aws-sdk-go: ec2
        8.8 s behind another service while the head ran newer, smaller compiles). Whether
        the slot was handed on."""
        return self._hand(lambda: slot, queued_only=True)

    def poll(self) -> None:
        """Look again while a slot is free (a waiting compile asks every POLL_S): a compile
        that became late after the slot freed, with go build waiting on it and nothing else
        to run, is raced now rather than at its straggler deadline (experiment 8: compiles
        sent as the head's slot went idle waited 10-15 s at their worker while the head had
        nothing to do)."""
        if self.slots.available() and time.monotonic() - self.slots.freed_at >= self.grace:
            self._offer()

    def _slot_freed(self) -> None:
        timer = threading.Timer(self.grace, self._offer)
        timer.daemon = True
        timer.start()

    def _offer(self) -> None:
        """A slot freed GRACE ago: if go has not taken it, race the best candidate on it."""
        self._hand(self.slots.take)

    def _hand(self, slot_for: Callable[[], int | None], queued_only: bool = False) -> bool:
        """The `candidate` among the compiles in flight not raced yet (QUEUED_ONLY: those
        still queued at their worker) gets the slot SLOT_FOR gives (a take if it is queued)
        and is woken to race on it; whether one did."""
        now = time.monotonic()
        with self.lock:
            waits = self._waits(now)
            entries = {k: e for k, e in self.inflight.items() if not e.raced and e.slot is None
                       and not (queued_only and e.running_since is not None)}
            key = candidate([InFlight(k, now - e.running_since if e.running_since else 0.0,
                                      e.expected, queued=e.running_since is None,
                                      wait=waits.get(k, 0.0))
                             for k, e in entries.items()])
            if key is None:
                return False
            slot = slot_for()
            if slot is None:
                return False
            entry = entries[key]
            entry.slot, entry.take = slot, entry.running_since is None
        entry.wake.set()
        return True
