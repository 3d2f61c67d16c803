"""The head node's decisions (fgo/build/policy.py): every branch, no processes, no cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fgo.head import policy
from fgo.head.policy import Action, RemoteFailure, Verdict
from fgo.planner.decide import SplitPolicy, choose_shards
from fgo.report.record import ActionRecord
from fgo.compilecall import NotRemoteSafe
from fgo.wire import Status


# --- the straggler race ---

def test_source_bytes_counts_go_files_only() -> None:
    assert policy.source_bytes([("/a.go", 100), ("/b.go", 20), ("/w/importcfg", 999),
                                ("/cache/fmt.a", 5000)]) == 120
    assert policy.source_bytes([]) == 0


def _rec(mode: str, duration: float | None, source: int) -> ActionRecord:
    return ActionRecord(package="p", tool="compile", mode=mode, duration_s=duration,
                        source_bytes=source)


def test_remote_rates_take_measured_remote_compiles_only() -> None:
    actions = [_rec("remote", 2.0, 1000), _rec("local", 2.0, 1000), _rec("cached", 1.0, 10),
               _rec("split", 3.0, 1000), _rec("remote", None, 1000), _rec("remote", 0.0, 1000),
               _rec("remote", 1.0, 0), _rec("remote", 1.0, 4000)]
    assert policy.remote_rates(actions) == [2.0 / 1000, 1.0 / 4000]


def test_remote_rates_look_at_the_most_recent_window() -> None:
    old = [_rec("remote", 100.0, 1)] * 50
    recent = [_rec("remote", 1.0, 1000)] * policy.RATE_WINDOW
    assert policy.remote_rates(old + recent) == [1.0 / 1000] * policy.RATE_WINDOW


def test_straggler_deadline_is_at_least_the_minimum() -> None:
    # default rate 1e-5 s/byte: 100 kB of source is 1 s expected, 5 s x5: below the 10 s floor
    assert policy.straggler_deadline(100_000, []) == policy.STRAGGLER_MIN_S == 10.0


def test_straggler_deadline_is_five_times_the_expected_time_at_the_default_rate() -> None:
    # 1 MB at 1e-5 s/byte: 10 s expected, raced after 50 s
    assert policy.straggler_deadline(1_000_000, []) == pytest.approx(50.0)
    # fewer than MIN_RATE_SAMPLES measured compiles: still the default rate
    assert policy.straggler_deadline(1_000_000, [1.0] * (policy.MIN_RATE_SAMPLES - 1)) \
        == pytest.approx(50.0)


def test_straggler_deadline_uses_the_median_measured_rate() -> None:
    rates = [1e-4, 2e-4, 3e-4, 4e-4, 1.0]  # one outlier: the median ignores it
    assert len(rates) == policy.MIN_RATE_SAMPLES
    assert policy.straggler_deadline(100_000, rates) == pytest.approx(5 * 3e-4 * 100_000)
    assert policy.straggler_deadline(100, rates) == policy.STRAGGLER_MIN_S


def test_a_cross_check_waits_for_a_straggler_s_time_then_the_head_checks() -> None:
    assert policy.cross_check_deadline(1.0, 600.0) == policy.CROSS_MIN_S == 30.0
    assert policy.cross_check_deadline(20.0, 600.0) == 100.0        # 5 x the producer's time
    assert policy.cross_check_deadline(500.0, 600.0) == 600.0       # never past --timeout
    assert policy.cross_check_deadline(1.0, 5.0) == 5.0


def test_straggler_deadline_of_a_compile_without_go_source() -> None:
    assert policy.straggler_deadline(0, [1.0] * 5) == policy.STRAGGLER_MIN_S
    assert policy.straggler_deadline(0, [100.0] * 5) == pytest.approx(500.0)  # counted as 1 byte


@pytest.mark.parametrize("elapsed, can_race, racing, start", [
    (11.0, True, False, True),     # past the deadline, nothing racing yet: start
    (9.0, True, False, False),     # not yet
    (10.0, True, False, False),    # exactly at it: not yet (strictly after)
    (11.0, False, False, False),   # a split's task is never raced
    (11.0, True, True, False),     # already racing
])
def test_start_backup(elapsed: float, can_race: bool, racing: bool, start: bool) -> None:
    assert policy.start_backup(elapsed, 10.0, can_race, racing) is start


def test_start_backup_never_with_an_infinite_deadline() -> None:
    assert not policy.start_backup(1e9, float("inf"), True, False)


@pytest.mark.parametrize("elapsed, address, watch, live, why", [
    (1.0, "w1", (), {"w1", "w2"}, None),
    (1.0, "w1", ("w2",), {"w1", "w2"}, None),
    (1.0, "w1", (), {"w2"}, policy.WORKER_LOST),             # its worker is gone
    (1.0, "w1", ("w2", "w3"), {"w1", "w2"}, policy.WORKER_LOST),  # a watched shard's worker
    (1.0, "w1", (), set(), policy.WORKER_LOST),              # the scheduler is gone
    (61.0, "w1", (), {"w1"}, policy.REMOTE_TIMEOUT),
    (60.0, "w1", (), {"w1"}, None),                          # exactly the timeout: wait on
    (61.0, "w1", (), set(), policy.WORKER_LOST),             # lost is said before late
])
def test_wait_verdict(elapsed: float, address: str, watch: tuple[str, ...], live: set[str],
                      why: str | None) -> None:
    assert policy.wait_verdict(elapsed, 60.0, address, watch, live) == why


# --- a worker's answer ---

def test_an_ok_result_is_used() -> None:
    assert policy.judge(Status.OK) == Verdict(Action.USE)
    assert policy.judge("ok") == Verdict(Action.USE)  # the wire value reads the same


def test_missing_blobs_are_resent_once() -> None:
    first = policy.judge(Status.MISSING, missing=["a", "b"])
    assert first == Verdict(Action.RESEND, resend=("a", "b"))
    again = policy.judge(Status.MISSING, missing=["a"], resends=policy.MAX_RESENDS)
    assert again == Verdict(Action.FALL_BACK, "missing")
    assert not again.drop_worker  # a wiped store is no reason to stop using the worker


def test_missing_without_a_list_falls_back() -> None:
    assert policy.judge(Status.MISSING) == Verdict(Action.FALL_BACK, "missing")


@pytest.mark.parametrize("status", [Status.REFUSED, Status.PROTOCOL])
def test_a_refusing_worker_is_dropped(status: Status) -> None:
    v = policy.judge(status, "toolchain mismatch: head has go1.27, worker has go1.26")
    assert v.action is Action.FALL_BACK and v.drop_worker
    assert v.reason == f"{status.value}: toolchain mismatch: head has go1.27, worker has go1.26"


@pytest.mark.parametrize("status, reason, fallback", [
    (Status.CORRUPT, "blob abc: sha256 mismatch", "corrupt: blob abc: sha256 mismatch"),
    (Status.STORE_ERROR, "No space left on device in /s", "store-error: No space left on device in /s"),
    (Status.SHARD_FAILED, "RuntimeError: shard on w2: shard-failed: x",
     "shard-failed: RuntimeError: shard on w2: shard-failed: x"),
    (Status.MERGE_REFUSED, "digest mismatch", "merge-refused: digest mismatch"),
    (Status.MERGE_REFUSED, "", "merge-refused"),              # no reason: no trailing ": "
])
def test_other_failures_fall_back_for_this_compile_only(status: Status, reason: str,
                                                        fallback: str) -> None:
    v = policy.judge(status, reason, missing=["x"])
    assert v == Verdict(Action.FALL_BACK, fallback) and not v.drop_worker


def test_an_unknown_status_is_an_error() -> None:
    with pytest.raises(ValueError):
        policy.judge("exploded")


@pytest.mark.parametrize("exc, reason", [
    (NotRemoteSafe("flag -cpuprofile"), "not remote-safe: flag -cpuprofile"),
    (RemoteFailure("worker lost"), "worker lost"),
    (FileNotFoundError(2, "No such file or directory"), "input unreadable: No such file or directory"),
    (PermissionError(13, "Permission denied"), "input unreadable: Permission denied"),
    (KeyError("x"), "internal error: KeyError: 'x'"),
    (ValueError("bad"), "internal error: ValueError: bad"),
])
def test_fallback_reason(exc: BaseException, reason: str) -> None:
    assert policy.fallback_reason(exc) == reason


def test_a_compile_that_failed_elsewhere_is_run_by_the_shim() -> None:
    """Any non-zero exit away from the shim (a worker's, the head's sandbox's, a compiler
    killed: -9) sends the compile to go's own run; only a success is taken."""
    assert policy.failed_elsewhere(0, "tcp://w:1") is None
    for exit in (1, 2, -9):
        why = policy.failed_elsewhere(exit, "tcp://w:1")
        assert why is not None and why.startswith(policy.FAILED_ELSEWHERE)
        assert f"exit status {exit} on tcp://w:1" in why


def test_only_a_failure_that_go_then_built_on_a_worker_blames_the_worker() -> None:
    """go's run wrote the archive: the worker's failure was its host's; no archive: the
    user's error (both failed), which blames nobody; nor does the head's own run."""
    assert policy.host_at_fault("remote", "tcp://w:1", 1234) == "tcp://w:1"
    assert policy.host_at_fault("speculative", "tcp://w:1", 1) == "tcp://w:1"
    assert policy.host_at_fault("remote", "tcp://w:1", -1) is None   # go's run failed too
    assert policy.host_at_fault("remote", "tcp://w:1", 0) is None    # nothing written
    assert policy.host_at_fault("head", "head", 1234) is None
    assert policy.host_at_fault("split", "tcp://w:1", 1234) is None  # which shard's host?


def test_a_worker_is_left_out_at_its_second_host_fault() -> None:
    assert not policy.leave_out_failing(0)
    assert not policy.leave_out_failing(1)  # one may be an accident (out of memory)
    assert policy.leave_out_failing(policy.HOST_FAULTS_TO_LEAVE_OUT)
    assert policy.leave_out_failing(policy.HOST_FAULTS_TO_LEAVE_OUT + 5)


def test_a_failing_worker_is_backed_off_twice_as_long_each_time_up_to_the_cap() -> None:
    assert policy.backoff_s(1) == policy.BACKOFF_FIRST_S
    assert policy.backoff_s(2) == 2 * policy.BACKOFF_FIRST_S
    assert policy.backoff_s(3) == 4 * policy.BACKOFF_FIRST_S
    assert policy.backoff_s(50) == policy.BACKOFF_MAX_S


def test_the_builds_after_one_leave_its_failing_worker_out_until_the_back_off_ends() -> None:
    now = 1000.0
    first = policy.failing_after({}, {"tcp://w:1"}, {"tcp://w:2"}, now)
    assert first == {"tcp://w:1": {"times": 1, "until": now + policy.BACKOFF_FIRST_S}}
    assert policy.backed_off(first, now + 1) == {"tcp://w:1": now + policy.BACKOFF_FIRST_S}
    assert policy.backed_off(first, now + policy.BACKOFF_FIRST_S + 1) == {}  # tried again
    # a build in its back-off: nobody used it, nothing changes
    assert policy.failing_after(first, set(), {"tcp://w:2"}, now + 10) == first
    # tried again, failing again: twice as long
    later = now + policy.BACKOFF_FIRST_S + 60
    again = policy.failing_after(first, {"tcp://w:1"}, set(), later)
    assert again == {"tcp://w:1": {"times": 2, "until": later + 2 * policy.BACKOFF_FIRST_S}}
    # tried again, a whole build without a fault: forgotten
    assert policy.failing_after(again, set(), {"tcp://w:1"}, later + 10_000) == {}


def test_a_long_expired_failing_worker_is_forgotten() -> None:
    remembered = {"tcp://w:1": {"times": 3, "until": 100.0}}
    assert policy.failing_after(remembered, set(), set(), 100.0 + policy.BACKOFF_MAX_S - 1) \
        == remembered
    assert policy.failing_after(remembered, set(), set(), 100.0 + policy.BACKOFF_MAX_S + 1) == {}
    # ... and starts from its first back-off when it fails again
    assert policy.failing_after(remembered, {"tcp://w:1"}, set(), 10_000.0)["tcp://w:1"]["times"] == 1


def test_remote_error() -> None:
    failure = policy.remote_error(OSError("connection reset"))
    assert isinstance(failure, RemoteFailure)
    assert failure.reason == "remote error: OSError: connection reset"


# --- the split's K ---

@pytest.mark.parametrize("free, shards, hosts", [
    (0, None, 1),    # nobody free: still this compile's own host
    (1, None, 1),
    (5, None, 5),
    (0, 4, 4),       # an explicit --shards K beyond the free hosts: extra shards queue
    (2, 4, 4),
    (6, 4, 6),       # more free than asked: the planner caps K at --shards itself
])
def test_split_hosts(free: int, shards: int | None, hosts: int) -> None:
    assert policy.split_hosts(free, shards) == hosts


@pytest.mark.parametrize("free, shards, hosts", [
    (0, None, 1),    # the head's slot alone: nobody to shard onto (K = 1, not split)
    (1, None, 2),    # one free worker beside the head's leader: K = 2
    (3, 2, 4),
])
def test_split_hosts_count_the_head_leading(free: int, shards: int | None, hosts: int) -> None:
    assert policy.split_hosts(free, shards, head_slot=True) == hosts


@pytest.mark.parametrize("slot_free, early, on_head", [
    (True, False, True),     # go's inputs are in place: nothing sent, no archive back
    (False, False, False),   # the head's slots are busy: a worker leads
    (True, True, False),     # pipelining: only a worker's leader exports early
])
def test_leader_on_head(slot_free: bool, early: bool, on_head: bool) -> None:
    assert policy.leader_on_head(slot_free, early) is on_head


def test_a_head_leader_takes_more_than_its_share() -> None:
    """The head's leader starts below its even share (each shard still writes and sends its
    result); a worker's keeps the compiler's default."""
    assert policy.lead_start(True) is not None and policy.lead_start(True) < 0
    assert policy.lead_start(False) is None


@dataclass(frozen=True)
class Cost:
    F: float
    B: float
    D: float


# split(K) = F + B/K + D + 0.2 + (K-1) * 0.6: with B = 20 its argmin is K = 6
BIG = Cost(F=1.0, B=20.0, D=0.5)


@pytest.mark.parametrize("free, policy_, k", [
    (10, SplitPolicy(), 6),                      # auto: the cost model's argmin
    (3, SplitPolicy(), 3),                       # ... capped by the free hosts
    (0, SplitPolicy(), 1),                       # no other host free: whole
    (1, SplitPolicy(shards=4), 4),               # --shards 4 beyond the free hosts
    (0, SplitPolicy(threshold=0), 2),            # forced mode splits even on one host
])
def test_k_from_the_free_hosts(free: int, policy_: SplitPolicy, k: int) -> None:
    got, why = choose_shards(BIG, 100, policy.split_hosts(free, policy_.shards), policy_)
    assert got == k, why
    if k == 1:
        assert why == "1 free host(s): go's -c already uses its cores"


def test_a_split_decided_without_the_scan_is_the_one_the_scan_gives() -> None:
    """decided_unscanned answers only where choose_shards, given the package's true count
    of functions (at least the lower bound), answers the same K whatever the cost: no other
    host free (unless forced), or a forced split with its K given and 4 functions a shard."""
    from fgo.planner.decide import decided_unscanned
    costs = [BIG, Cost(F=0.1, B=0.1, D=0.0)]
    answered = 0
    for free in range(7):
        for shards in (None, 1, 2, 3, 5):
            for threshold in (None, 0.0, 5.0):
                pol = SplitPolicy(threshold=threshold, shards=shards)
                hosts = policy.split_hosts(free, shards)
                for funcs in (0, 1, 7, 8, 12, 40):
                    known = decided_unscanned(hosts, funcs, pol)
                    if known is None:
                        continue
                    answered += 1
                    for cost in costs:
                        for n in (funcs, funcs + 3, 10 * funcs + 1):
                            assert choose_shards(cost, n, hosts, pol)[0] == known[0], \
                                (free, shards, threshold, funcs, n, known)
    assert answered > 50
    assert decided_unscanned(1, 10_000, SplitPolicy()) == \
        (1, "1 free host(s): go's -c already uses its cores")
    assert decided_unscanned(2, 16_000, SplitPolicy(threshold=0, shards=2))[0] == 2
    assert decided_unscanned(2, 7, SplitPolicy(threshold=0, shards=2)) is None  # few: scan
    assert decided_unscanned(4, 16_000, SplitPolicy()) is None                  # auto: scan


# --- go build started while the cluster connects ---

def test_go_build_starts_beside_the_connect_only_as_remembered() -> None:
    last = {"scheduler": "tcp://h:8786", "workers": 2, "threads": 4}
    assert policy.connect_beside_go("tcp://h:8786", last) == (2, 2)  # a split's too
    assert policy.connect_beside_go("tcp://other:8786", last) is None
    assert policy.connect_beside_go(None, last) is None              # embedded
    assert policy.connect_beside_go("tcp://h:8786", None) is None    # never built
    for bad in ({**last, "workers": 0}, {**last, "threads": 1}, {**last, "workers": "2"},
                {"scheduler": "tcp://h:8786"}):
        assert policy.connect_beside_go("tcp://h:8786", bad) is None, bad


def test_go_starts_before_the_head_only_beside_a_connect_and_without_a_split() -> None:
    assert policy.go_before_head(True, None)
    assert not policy.go_before_head(False, None)     # connected first: -p from the cluster
    assert not policy.go_before_head(True, "auto")    # a split's compiler may be built first
    assert not policy.go_before_head(True, "0")


def test_after_go_build_a_build_publishes_only_what_it_connected_for() -> None:
    """After go build: connected, the build publishes; a connect still running (or never
    asked for) means nothing went to the workers: an edit's puts are deferred to the next
    build that connects, a no-op has nothing to publish; neither waits."""
    assert policy.after_go_build(connecting=False, puts=3) == policy.PUBLISH
    assert policy.after_go_build(connecting=False, puts=0) == policy.PUBLISH
    assert policy.after_go_build(connecting=True, puts=1) == policy.DEFER      # an edit
    assert policy.after_go_build(connecting=True, puts=0) == policy.NOTHING    # a no-op
    # go was given workers' entries before the cluster's revocations were read: they are
    # checked before the build succeeds, so it waits for the connect
    assert policy.after_go_build(connecting=True, puts=0, hits_to_check=True) == policy.PUBLISH
    assert policy.after_go_build(connecting=True, puts=2, hits_to_check=True) == policy.PUBLISH
