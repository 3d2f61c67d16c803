"""The head's own cores as execution slots, and dynamic execution (fgo.head.slots,
fgo.head.race): the decisions without processes, then real builds."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from conftest import RealCluster, oracle_build, run_fgo, sha
from fgo.head import policy
from fgo.head.race import InFlight, Racer, candidate, queue_waits, running_first
from fgo.head.slots import LocalSlots


# ------------------------------------------------------------------ decisions

def test_a_running_compile_is_raced_only_when_the_head_would_finish_first() -> None:
    on_time = [InFlight(1, elapsed=1.0, expected=2.0), InFlight(2, elapsed=0.5, expected=6.0)]
    assert candidate(on_time) is None                       # its worker finishes first
    assert candidate([InFlight(4, 9.0, 2.0), *on_time]) == 4  # late by more than the head takes
    assert candidate([InFlight(5, 2.2, 2.0)]) is None        # late, but the head needs 2.5 s
    assert candidate([InFlight(3, 0.4, 0.1)]) is None        # about to finish: not worth it
    assert candidate([InFlight(3, 0.4, 0.1)], slowdown=1.0, min_remaining=0.3) == 3
    assert candidate([]) is None


def test_a_compile_queued_at_its_worker_is_taken_before_one_is_raced() -> None:
    """Taking a queued compile runs nothing twice: it comes first, the longest expected."""
    running = InFlight(1, elapsed=1.0, expected=20.0)
    assert candidate([running, InFlight(2, 0.0, 3.0, queued=True, wait=19.0),
                      InFlight(3, 0.0, 8.0, queued=True, wait=22.0)]) == 3
    assert candidate([running, InFlight(2, 0.0, 0.2, queued=True, wait=19.0)]) is None  # short
    # its worker is about to start it: the head, slower, would finish later
    assert candidate([running, InFlight(7, 0.0, 16.0, queued=True, wait=1.0)]) is None
    assert running_first([5, 6, 7], threads=1) == {5}
    assert running_first([5, 6, 7], threads=2) == {5, 6}
    assert queue_waits([5.0], [3.0, 8.0], threads=1) == [5.0, 8.0]
    assert queue_waits([5.0], [3.0], threads=2) == [0.0]     # a thread is free
    assert queue_waits([-1.0], [2.0], threads=1) == [0.0]    # the one ahead is late


def test_the_slot_goes_to_the_compile_waiting_behind_another_on_its_worker() -> None:
    slots = LocalSlots(1)
    racer = Racer(slots, grace=0.01)
    mine = slots.take()
    first, second = object(), object()
    wake_first, wake_second = threading.Event(), threading.Event()
    racer.track(first, expected=30.0, wake=wake_first, worker="w", threads=1)
    racer.track(second, expected=10.0, wake=wake_second, worker="w", threads=1)
    slots.release(mine)
    assert wake_second.wait(2) and not wake_first.is_set()
    assert racer.wants(second, 0.5) and racer.takes(second) and not racer.takes(first)
    assert not racer.take_if_queued(first)                # it runs: a straggler race, no take
    racer.untrack(first)
    racer.done(second)
    racer.untrack(second)
    assert slots.available() == 1


def test_a_worker_is_probed_at_most_every_few_seconds_and_never_once_left_out() -> None:
    assert policy.probe_due(100.0, None, False)
    assert not policy.probe_due(100.0, 95.0, False)
    assert policy.probe_due(100.0, 100.0 - policy.PROBE_EVERY_S, False)
    assert not policy.probe_due(100.0, None, True)


def test_go_builds_parallelism_counts_the_slots_and_the_workers_that_add_capacity() -> None:
    assert policy.parallelism(2, 4, True) == 6              # head slots + remote threads
    assert policy.parallelism(1, 1, True, workers=1) == 3   # ... + one queued at each worker
    assert policy.parallelism(2, 2, False, workers=1) == 2
    assert policy.parallelism(0, 4, True, workers=2) == 4   # no slot to race a queued one
    assert policy.parallelism(2, 2, False) == 2             # an embedded cluster on the same cores
    assert policy.parallelism(0, 0, True) is None           # go's default
    assert policy.embedded_adds_capacity(0, False)          # a head that must not compile
    assert policy.embedded_adds_capacity(2, True)           # the user sized it (--workers)
    assert not policy.embedded_adds_capacity(2, False)


def test_on_one_machine_go_build_compiles_alone_unless_fgo_has_work() -> None:
    alone = policy.go_alone
    assert alone(None, 2, False, None, None)                 # the embedded default: no shim
    assert not alone("tcp://h:8786", 2, False, None, None)   # a cluster: the overflow goes there
    assert not alone(None, 0, False, None, None)              # a head that must not compile
    assert not alone(None, 2, True, None, None)               # --workers: the user sized it
    assert alone(None, 2, False, "auto", None)                # --split-large: never pays here
    assert alone(None, 2, False, "5", None)                   # nor a threshold's
    assert not alone(None, 2, False, "0", None)               # --split-large=0: split anyway
    assert not alone(None, 2, False, "auto", None, "2")       # --shards 2: the same
    assert not alone("tcp://h:8786", 2, False, "auto", None)  # other hosts: it may pay
    assert not alone(None, 2, False, None, True)              # --pipeline
    assert alone(None, 2, False, None, False)                 # --no-pipeline changes nothing


def test_a_free_slot_is_handed_to_the_remote_compile_go_waits_on() -> None:
    slots = LocalSlots(1)
    racer = Racer(slots, grace=0.01)
    mine = slots.take()
    assert mine == 0 and slots.take() is None
    short, long = object(), object()
    wake_short, wake_long = threading.Event(), threading.Event()
    racer.track(long, expected=0.01, wake=wake_long, worker="a")
    time.sleep(0.6)                                         # late by more than the head takes
    racer.track(short, expected=0.01, wake=wake_short, worker="b")
    slots.release(mine)                                     # go has nothing ready
    assert wake_long.wait(2) and not wake_short.is_set()
    assert racer.wants(long, 0.5) and not racer.wants(long, 0.6)   # raced once
    assert not racer.wants(short, 0.5) and slots.available() == 0
    racer.done(long)
    assert slots.available() == 1
    racer.untrack(long)
    racer.untrack(short)
    assert slots.available() == 1


def test_a_compile_late_after_the_slot_freed_is_raced_when_its_wait_polls() -> None:
    """The slot freed before the compile was even sent: no release comes to look again,
    so the waits poll; the compile is raced once it is late, not at its straggler
    deadline."""
    slots = LocalSlots(1)
    racer = Racer(slots, grace=0.01)
    slots.release(slots.take())                             # go's last local compile ended
    time.sleep(0.05)
    late, wake = object(), threading.Event()
    racer.track(late, expected=0.01, wake=wake, worker="w")
    racer.poll()
    assert not wake.is_set() and slots.available() == 1     # on schedule: left alone
    time.sleep(0.6)                                         # late by more than the head takes
    racer.poll()
    assert wake.is_set() and racer.wants(late, 0.6) and slots.available() == 0
    racer.done(late)
    racer.untrack(late)
    assert slots.available() == 1


def test_a_compile_queued_behind_a_long_one_takes_the_slot_before_a_newer_request() -> None:
    """go build's next request got the free slot; the compile sent earlier and still queued
    behind a long one on its worker takes it instead, when the head finishes it sooner than
    its worker would; a short one, or none queued, leaves the slot to the request."""
    slots = LocalSlots(1)
    racer = Racer(slots, grace=10.0)           # no offer on release: only the request asks
    running, queued = object(), object()
    wake_running, wake_queued = threading.Event(), threading.Event()
    racer.track(running, expected=20.0, wake=wake_running, worker="w", threads=1)
    assert not racer.yield_to_queued(0)         # nothing queued: the request keeps its slot
    racer.track(queued, expected=8.0, wake=wake_queued, worker="w", threads=1)
    slot = slots.take()
    assert slot == 0 and racer.yield_to_queued(slot)
    assert wake_queued.is_set() and not wake_running.is_set()
    assert racer.wants(queued, 0.5) and racer.takes(queued)
    racer.done(queued)
    racer.untrack(queued)
    assert slots.available() == 1
    short = object()
    racer.track(short, expected=0.2, wake=threading.Event(), worker="w", threads=1)
    assert not racer.yield_to_queued(slots.take())   # not worth a take: the request runs
    racer.untrack(short)
    racer.untrack(running)


def test_a_slot_handed_but_not_used_comes_back() -> None:
    slots = LocalSlots(1)
    racer = Racer(slots, grace=0.01)
    action, wake = object(), threading.Event()
    racer.track(action, expected=0.01, wake=wake)
    time.sleep(0.6)
    slots.release(slots.take())
    assert wake.wait(2) and slots.available() == 0
    racer.untrack(action)                                   # its remote answer came first
    assert slots.available() == 1


# ------------------------------------------------------------------ real builds

def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_on_one_machine_go_build_compiles_alone_and_no_cluster_starts(hello: Path) -> None:
    """The default on one machine: nothing to distribute, so go build runs every compile
    itself (no shim, no embedded cluster); the report still has every compile, timed by go;
    the binary is plain go build's."""
    report = hello.parent / "slots.json"
    proc = run_fgo("build", "--report", str(report), "--local-slots", "2", str(hello), "--",
                   "-a", "-o", str(hello / "fgo.bin"))
    assert proc.returncode == 0, proc.stderr
    rep = _report(report)
    t = rep["totals"]
    assert t["remote"] == 0 and t["by_go"] == t["local"] > 20 and t["fallbacks"] == 0, t
    assert rep["cluster"]["go_alone"] and rep["cluster"]["local_slots"] == 2
    assert all(a["duration_s"] for a in rep["actions"] if a["mode"] == "local")
    assert "by go build" in proc.stderr and "fgo-shim" not in proc.stderr
    assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")


def test_with_a_cluster_the_head_compiles_on_its_slots_first(hello: Path, tmp_path: Path) -> None:
    """With a cluster (--workers sizes the embedded one), the shim runs compiles on the
    head's slots first; the binary is plain go build's."""
    report = hello.parent / "slots-cluster.json"
    proc = run_fgo("build", "--report", str(report), "--local-slots", "2", "--workers", "1",
                   str(hello), "--", "-a", "-o", str(hello / "fgo2.bin"))
    assert proc.returncode == 0, proc.stderr
    t = _report(report)["totals"]
    assert t["slot"] > 0 and t["by_go"] == 0, t        # the shim ran them, on the head's slots
    assert "on slots" in proc.stderr
    assert oracle_build(hello, "-a", "-o", str(hello / "go2.bin")).returncode == 0
    assert sha(hello / "fgo2.bin") == sha(hello / "go2.bin")


def test_the_head_races_what_go_build_waits_on(hello: Path, tmp_path: Path, faults) -> None:
    """One worker that takes 20 s to start each compile, and one local slot: whenever go
    build has nothing else ready, the slot runs the remote compile it waits on, and the
    first result wins. Without the race every remote compile would cost 20 s."""
    os.environ["FGO_FAULT"] = "slow:20"  # read by the workers of this cluster only
    try:
        cluster = RealCluster(tmp_path / "c", workers=1)
    finally:
        del os.environ["FGO_FAULT"]
    report = tmp_path / "race.json"
    with cluster:
        t0 = time.monotonic()
        proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address,
                       "--no-shared-cache", "--local-slots", "1", str(hello), "--", "-a", "-o",
                       str(hello / "fgo.bin"))
        took = time.monotonic() - t0
    faults.injected()
    assert proc.returncode == 0, proc.stderr
    rep = _report(report)
    won = [a for a in rep["actions"] if (a.get("race") or {}).get("winner") == "head"]
    assert any(a["race"]["why"] == "critical path" for a in won), rep["totals"]
    assert all(a["mode"] == "local" for a in won)
    assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
    ok = sha(hello / "fgo.bin") == sha(hello / "go.bin")
    faults.outcome(ok)
    assert ok
    assert took < 20 * max(1, rep["totals"]["remote"]) + 120, took
