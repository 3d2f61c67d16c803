"""Deadlines on cluster calls (fgo.cluster.deadline): a call that never returns is Late, the
others' answers are kept."""

from __future__ import annotations

import threading
import time

import pytest

from fgo.cluster.deadline import Late, LateWorkers, per_worker, within


def test_within_returns_and_raises_as_the_call_does() -> None:
    assert within(1, lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(KeyError):
        within(1, lambda: {}["x"])


def test_within_is_late_on_a_call_that_never_returns() -> None:
    never = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(Late, match="the frozen worker did not answer within 0.2s"):
        within(0.2, never.wait, what="the frozen worker")
    assert time.monotonic() - t0 < 2


def test_per_worker_leaves_out_who_does_not_answer() -> None:
    never = threading.Event()

    def ask(w: str) -> str:
        if w == "stopped":
            never.wait()
        if w == "broken":
            raise OSError("refused")
        return w.upper()

    answers, late = per_worker(0.3, ask, ["a", "stopped", "broken", "b"])
    assert late == ["stopped"]
    assert answers["a"] == "A" and answers["b"] == "B"
    assert isinstance(answers["broken"], OSError)
    assert per_worker(0.1, ask, []) == ({}, [])


def test_a_wait_stops_once_its_worker_is_found_late() -> None:
    """A publish waiting on a worker that a probe meanwhile found stopped gives up then,
    not at its own deadline; a worker found late once is skipped by every later call."""
    never = threading.Event()
    late = LateWorkers()
    threading.Timer(0.3, late.add, ("w1",)).start()
    t0 = time.monotonic()
    with pytest.raises(Late):
        within(30, never.wait, abandon=lambda: "w1" in late)
    assert time.monotonic() - t0 < 5
    assert "w1" in late and "w2" not in late and late.snapshot() == {"w1"}
    assert within(1, lambda: 7, abandon=lambda: False) == 7
