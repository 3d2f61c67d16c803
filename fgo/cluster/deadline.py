"""Deadlines for calls into the cluster: no call fgo makes to Dask may wait forever.

A worker stopped by SIGSTOP (or a host that froze) keeps its TCP connections open, so
the scheduler still lists it and a broadcast to all workers (`Client.register_plugin`,
`Client.run`) waits for its answer forever; distributed gives most of these calls no
timeout of their own. Every such call goes through `within`: it runs in a daemon thread
(which may stay blocked; it never holds up the build or the process's exit) and raises
`Late` past its deadline. Calls that ask each worker go through `per_worker`, so that one
unresponsive worker is left out and reported while the others are used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

INSTALL_S = 10.0      # installing fgo's handlers on the workers (a broadcast)
HANDSHAKE_S = 10.0    # each worker's answer to the build's first question
SCHEDULER_S = 5.0     # a question only the scheduler answers
LIVENESS_S = 2.0      # the scheduler's list of live workers, asked while compiles wait


class Late(TimeoutError):
    """A call into the cluster did not return within its deadline."""


ABANDON_POLL_S = 0.25  # how often a wait with a give-up test looks at it


def within(seconds: float, fn: Callable[..., T], *args: Any, what: str = "",
           abandon: Callable[[], bool] | None = None, **kwargs: Any) -> T:
    """FN(*ARGS, **KWARGS), or Late after SECONDS, or as soon as ABANDON() is true (the
    worker it waits for was found unresponsive meanwhile). FN then runs on, unwaited, in a
    daemon thread. FN's own exception is raised as it is."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def call() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=call, name=f"fgo-deadline-{what or 'call'}", daemon=True).start()
    if not _wait(done, seconds, abandon):
        raise Late(f"{what or 'a cluster call'} did not answer within {seconds:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _wait(done: threading.Event, seconds: float, abandon: Callable[[], bool] | None) -> bool:
    """Whether DONE was set within SECONDS, and before ABANDON() turned true."""
    if abandon is None:
        return done.wait(seconds)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if done.wait(min(left, ABANDON_POLL_S)):
            return True
        if abandon():
            return False
    return done.is_set()


class LateWorkers:
    """The workers that missed a deadline during this build, or that a probe found
    stopped: every later call leaves them out instead of waiting for each in turn (a
    stopped worker cost its staging, a put, an adopt and a second put 30 s each: 100 s
    after hello's build). Shared by the threads that call the cluster."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: set[str] = set()

    def add(self, worker: str) -> None:
        with self._lock:
            self._workers.add(worker)

    def __contains__(self, worker: object) -> bool:
        with self._lock:
            return worker in self._workers

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._workers)


def per_worker(seconds: float, fn: Callable[[str], T], workers: Iterable[str]
               ) -> tuple[dict[str, T | BaseException], list[str]]:
    """FN(worker) for every worker at once, all within one deadline of SECONDS: (the answer
    or the exception of each worker that answered, the workers that did not answer)."""
    workers = list(workers)
    results: dict[str, T | BaseException] = {}
    lock = threading.Lock()
    all_done = threading.Event()
    left = len(workers)

    def call(worker: str) -> None:
        nonlocal left
        try:
            value: T | BaseException = fn(worker)
        except BaseException as exc:  # noqa: BLE001  (the caller reports it)
            value = exc
        with lock:
            results[worker] = value
            left -= 1
            if left == 0:
                all_done.set()

    if not workers:
        return {}, []
    for w in workers:
        threading.Thread(target=call, args=(w,), name="fgo-deadline-worker", daemon=True).start()
    all_done.wait(seconds)
    with lock:
        answered = dict(results)
    return answered, [w for w in workers if w not in answered]
