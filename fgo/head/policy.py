"""The head node's decisions, as pure functions: no I/O, no threads, no dask.

The executors (fgo/head/remote.py, split.py, slots.py) ask these and act on the answers;
tests/test_policy.py covers every branch.

- when a slow remote compile is also started locally (`straggler_deadline`);
- what a worker's answer means: use it, resend what its store lacks, or fall back
  locally and why, and whether that worker is ever used again (`judge`);
- when waiting for a remote compile stops (`wait_verdict`);
- which fallback reason the report gives for what went wrong (`fallback_reason`);
- which worker a compile that failed on it and then built in go's own run blames, and when
  such a worker is left out of the build (`host_at_fault`, `leave_out_failing`), and of
  the builds after it for a while (`backed_off`, `failing_after`);
- how many hosts a split compile may plan for (`split_hosts`), and where its leader runs
  (`leader_on_head`).
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fgo.compilecall import NotRemoteSafe

if TYPE_CHECKING:  # fgo.wire is the head's largest import: loaded once a worker answers
    from fgo.wire import Status

STRAGGLER_MIN_S = 10.0     # never race a compile that has run for less than this
STRAGGLER_FACTOR = 5.0     # ... or for less than this many times its expected duration
CROSS_MIN_S = 30.0         # a cross-check (run in its worker's idle time) waited for at least
DEFAULT_RATE_S_PER_BYTE = 1e-5  # ~1 s per 100 kB of source, until this build has measured
MIN_RATE_SAMPLES = 5       # remote compiles measured before their median rate is trusted
RATE_WINDOW = 200          # the most recent actions the rate is taken from
MAX_RESENDS = 1            # a task whose store lacks blobs is resent this many times

STRAGGLER_WON = "straggler: the local run finished first"
TAKEN_FAILED = "taken from its worker's queue: the head's run failed to start"
STREAM_BROKEN = "an output streamed in chunks came incomplete"
NO_WORKER = "no usable worker"
FAILED_ELSEWHERE = "failed away from the shim, run by go to see its own error"
CLUSTER_STARTING = "cluster starting"   # the embedded cluster's workers are not up yet
NO_SHARD_WORKER = "no usable worker for a shard"
NO_FREE_SHARD_WORKER = "no free worker for a shard"  # the hosts planned for took other work
NO_PATCHED_SHARD_WORKER = ("no free worker with the patched compiler for a shard "
                           "(`fgo worker-setup` builds it on every worker)")
SHARD_FAILED = "shard-failed"
WORKER_LOST = "worker lost"
REMOTE_TIMEOUT = "remote timeout"


class RemoteFailure(Exception):
    """The work elsewhere cannot be trusted or did not finish: the next executor is asked,
    in the end the shim runs the compile. REASON is what the report says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- the straggler race ---

def source_bytes(inputs: Iterable[tuple[str, int]]) -> int:
    """The Go source bytes among INPUTS (path, size)."""
    return sum(size for path, size in inputs if path.endswith(".go"))


def remote_rates(actions: Sequence[Any]) -> list[float]:
    """Seconds per source byte of the recent remote compiles among ACTIONS (ActionRecords)."""
    return [a.duration_s / a.source_bytes for a in actions[-RATE_WINDOW:]
            if a.mode == "remote" and a.duration_s and a.source_bytes]


def expected_seconds(source: int, rates: Sequence[float]) -> float:
    """A compile's expected time: SOURCE bytes of Go at the median of RATES (the build's
    remote compiles so far, once there are MIN_RATE_SAMPLES), else at the default rate."""
    rate = statistics.median(rates) if len(rates) >= MIN_RATE_SAMPLES else DEFAULT_RATE_S_PER_BYTE
    return rate * (source or 1)


def head_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


def local_slots(asked: int | None) -> int:
    """The head's local slots: --local-slots, else its cores."""
    return head_cores() if asked is None else asked


def parallelism(slots: int, worker_threads: int, workers_add_capacity: bool,
                workers: int = 0) -> int | None:
    """go build's -p: the head's local SLOTS, plus, when the workers add capacity (an
    embedded cluster on the head's own cores adds none unless asked for), their
    WORKER_THREADS, and, when the head has slots, one compile queued at each of the WORKERS:
    it starts there as the one before it ends, instead of a round trip later (go build ->
    shim -> head -> worker: 25 ms idle per remote compile, measured by experiment 8). Only
    with slots: a queued compile stuck behind a long one is then raced by the first slot
    that frees (fgo.head.race); without, it would wait there while another worker idles
    (placement is final: nothing steals it). None (go's default) when that is nothing."""
    queued = workers if slots else 0
    return (slots + (worker_threads + queued if workers_add_capacity else 0)) or None


def embedded_adds_capacity(slots: int, workers_given: bool) -> bool:
    """Whether an embedded cluster's workers count as capacity beside the head's SLOTS: only
    when the head runs nothing itself, or the user sized the cluster (--workers)."""
    return slots == 0 or workers_given


def go_alone(scheduler: str | None, slots: int, workers_given: bool, split_large: str | None,
             pipeline: bool | None, shards: str | None = None) -> bool:
    """Whether go build runs every compile itself, without fgo's shim in the way: on the
    embedded default (no --scheduler) with the head's cores as its slots, nothing would go to
    a worker (they would share those cores), unless pipelining is asked for, the user sized
    the cluster (--workers), or a split must happen whatever it pays (`split_required`).
    The shim would only add a round trip per compile (distcc's rule: localhost compiles are
    plain compiles); an automatic or threshold split never pays on one host, whose cores
    go's -c already uses (fgo.planner.decide), so bare --split-large leaves go build alone."""
    return (scheduler is None and slots > 0 and not workers_given
            and not split_required(split_large, shards) and not pipeline)


def split_required(split_large: str | None, shards: str | None) -> bool:
    """--split-large=0 (every package split, for testing) or --shards K: splits the user
    wants even where they do not pay, e.g. on one host."""
    if split_large is None:
        return False
    try:
        forced = split_large != "auto" and float(split_large) <= 0
    except ValueError:  # the settings check its value; here it only decides the path
        forced = False
    return forced or shards not in (None, "auto")


def connect_beside_go(scheduler: str | None,
                      last: dict[str, Any] | None) -> tuple[int, int] | None:
    """(workers, threads per worker) when go build may start before the cluster is
    connected, sized as the LAST build on SCHEDULER found it (scheduler, workers, threads):
    go loads its packages (0.2 s for gin, 8 s for aws-sdk-go) while the head imports Dask
    and connects (0.3-0.5 s). A split's decision waits for the connect only for a package
    that a cluster of that size could split (fgo.head.split). None: connect first, as go's
    -p needs the cluster's size, which only a build on the same scheduler remembers."""
    if not scheduler or not last:
        return None
    workers, threads = last.get("workers"), last.get("threads")
    if last.get("scheduler") != scheduler or not isinstance(workers, int) \
            or not isinstance(threads, int) or workers < 1 or threads < workers:
        return None
    return workers, threads // workers


def go_before_head(beside: bool, split_large: str | None) -> bool:
    """Whether go build starts before the head has built what serves its shim (executors,
    verification, speculation: 0.03 s of a two-core head's imports and wiring, an eighth of
    a no-op's cost over go's own, spent instead while go loads its packages): when the
    cluster is connected BESIDE go build (its -p is then the remembered size's either way)
    and the head builds nothing slow first (a split's patched compiler, built on first
    use). The shim's first calls wait in its socket's backlog meanwhile."""
    return beside and split_large is None


PUBLISH, DEFER, NOTHING = "publish", "defer", "nothing"


def after_go_build(connecting: bool, puts: int, hits_to_check: bool = False) -> str:
    """What a build does with its cluster once go build has ended. PUBLISH: connected, its
    puts go to the cluster tier as usual. A connect still running (or never asked for: the
    cluster is connected on demand) means the build sent nothing to the workers, as a
    compile for them waits for it: then DEFER its puts, all the head's own, to the next
    build that connects (an edit's few; waiting would add Dask's import and the connect,
    0.3-0.5 s, to a rebuild go finishes in as much), or NOTHING to publish (a no-op). But
    go given a worker's entry before the cluster's revocations were read (HITS_TO_CHECK)
    makes the build wait for them (PUBLISH): it succeeds only once they are checked."""
    if not connecting or hits_to_check:
        return PUBLISH
    return DEFER if puts else NOTHING


def straggler_deadline(source: int, rates: Sequence[float]) -> float:
    """Seconds after which a remote compile of SOURCE bytes of Go also starts locally:
    STRAGGLER_FACTOR times its expected time (SOURCE at the median of RATES, the build's
    remote compiles so far, once there are MIN_RATE_SAMPLES of them), at least
    STRAGGLER_MIN_S."""
    return max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * expected_seconds(source, rates))


PROBE_EVERY_S = 10.0       # a worker answering a probe is not asked again sooner than this


def probe_due(now: float, last: float | None, left_out: bool) -> bool:
    """Whether to ask a worker whether it is alive now: not one already left out, nor one
    asked within PROBE_EVERY_S (a slow worker's compiles would otherwise ask it on every
    poll)."""
    return not left_out and (last is None or now - last >= PROBE_EVERY_S)


def cross_check_deadline(producer_s: float, timeout: float) -> float:
    """Seconds to wait for a cross-check of a compile its producer ran in PRODUCER_S: the
    straggler factor over that, at least CROSS_MIN_S (it waits for its worker's idle
    time), at most the remote TIMEOUT. Past it the head checks instead: a stopped worker
    must not hold the link for the whole remote timeout."""
    return min(timeout, max(CROSS_MIN_S, STRAGGLER_FACTOR * max(producer_s, 0.0)))


def start_backup(elapsed: float, deadline: float, can_race: bool, racing: bool) -> bool:
    """Whether to start the local run of a remote compile ELAPSED seconds in."""
    return can_race and not racing and elapsed > deadline


def wait_verdict(elapsed: float, timeout: float, address: str, watch: Iterable[str],
                 live: set[str]) -> str | None:
    """Why to stop waiting for a task on ADDRESS (whose result needs the WATCHed workers
    too), given the LIVE workers; None: keep waiting."""
    if address not in live or not live.issuperset(watch):
        return WORKER_LOST
    if elapsed > timeout:
        return REMOTE_TIMEOUT
    return None


# --- a worker's answer ---

class Action(enum.Enum):
    USE = "use"              # the result is good: write its outputs
    RESEND = "resend"        # resend `Verdict.resend` to the same worker, once
    FALL_BACK = "fall back"  # compile locally, for `Verdict.reason`


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str = ""                    # FALL_BACK: the report's fallback reason
    resend: tuple[str, ...] = ()        # RESEND: the blobs (sha256) to send again
    drop_worker: bool = False           # never send this worker anything again this build


def judge(status: Status | str, reason: str = "", missing: Sequence[str] = (),
          resends: int = 0) -> Verdict:
    """What to do with a worker's answer of STATUS (after RESENDS resends of this task).

    A store that lacks blobs (wiped between builds, or a blob still riding with a queued
    task) gets them resent MAX_RESENDS times. A refusal (another toolchain or patch series)
    or a message of another protocol version also retires the worker for this build. Every
    other failure falls back for this compile only, with reason "STATUS: REASON"."""
    from fgo.wire import Status
    status = Status(status)
    if status is Status.OK:
        return Verdict(Action.USE)
    if status is Status.MISSING and missing and resends < MAX_RESENDS:
        return Verdict(Action.RESEND, resend=tuple(missing))
    why = f"{status.value}: {reason}".rstrip(": ")
    return Verdict(Action.FALL_BACK, why,
                   drop_worker=status in (Status.REFUSED, Status.PROTOCOL))


def failed_elsewhere(exit: int, worker: str) -> str | None:
    """Why a compile whose compiler exited with EXIT away from the shim (on WORKER, or in
    the head's own sandbox) is run again by the shim, as go build would run it; None when
    it succeeded. A failure there is not proof of the user's error: an input missing from a
    sandbox, a compiler killed or out of memory on its host fail a good compile too, and
    go build must not stop for them. A real error costs one more (failing) compile and is
    shown as go's own run of it shows it (distcc retries a failed remote compile locally
    for the same reason)."""
    if exit == 0:
        return None
    return f"{FAILED_ELSEWHERE}: exit status {exit} on {worker}"


HOST_FAULTS_TO_LEAVE_OUT = 2  # a worker's compiles go's own run then built, before it is left out


def host_at_fault(mode: str, worker: str, output_size: int) -> str | None:
    """The worker to blame for a compile whose compiler failed where MODE's executor ran it
    on WORKER, once go's own run of it has ended having written OUTPUT_SIZE bytes (-1: no
    output): go built it, so the failure was the host's (the compiler writes its archive
    only when it succeeds). None for a user's error, or a failure on the head itself."""
    if mode not in ("remote", "speculative") or worker == "head" or output_size <= 0:
        return None
    return worker


def leave_out_failing(host_faults: int) -> bool:
    """Whether a worker with HOST_FAULTS compiles failed that go's own run built is used no
    more in this build: one may be a passing accident (a compiler killed when its host ran
    out of memory), a second says the host is broken (a lost input, a damaged toolchain);
    every compile it still got would cost a round trip and then go's own run."""
    return host_faults >= HOST_FAULTS_TO_LEAVE_OUT


# A worker a build left out as failing is left out of the builds on the same scheduler
# after it, as distcc backs off a failing host: each of them would pay its two failures and
# what it had in flight again. Doubled each time it is left out again, up to BACKOFF_MAX_S;
# one that later compiles a whole build without a fault is forgotten. By the worker's
# address: a worker restarted (once its host is repaired) is a new one, tried at once.
BACKOFF_FIRST_S = 300.0
BACKOFF_MAX_S = 3600.0


def backoff_s(times: int) -> float:
    """How long the builds after it leave out a worker left out as failing TIMES times in
    a row."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** max(0, times - 1))


def backed_off(remembered: dict[str, dict[str, float]], now: float) -> dict[str, float]:
    """Of the REMEMBERED failing workers (address -> {"times", "until"}), those a build
    starting at NOW leaves out, and until when."""
    return {host: r["until"] for host, r in remembered.items() if r.get("until", 0) > now}


def failing_after(remembered: dict[str, dict[str, float]], failing: set[str],
                  proven: set[str], now: float) -> dict[str, dict[str, float]]:
    """The failing workers to remember after a build that ended at NOW, having left
    FAILING out and seen PROVEN compile without a host fault: one left out again is left
    out for twice as long, one proven good is forgotten; a record whose back-off ended
    longer than BACKOFF_MAX_S ago is forgotten too (it is not known broken any more, and
    the file must not grow with every worker ever seen)."""
    out = {host: dict(r) for host, r in remembered.items()
           if host not in proven and r.get("until", 0) + BACKOFF_MAX_S > now}
    for host in failing:
        times = int(out.get(host, {}).get("times", 0)) + 1
        out[host] = {"times": times, "until": now + backoff_s(times)}
    return out


def fallback_reason(exc: BaseException) -> str:
    """The report's fallback reason for a compile that EXC sent back to go build."""
    if isinstance(exc, NotRemoteSafe):
        return f"not remote-safe: {exc}"
    if isinstance(exc, RemoteFailure):
        return exc.reason
    if isinstance(exc, OSError):
        return f"input unreadable: {exc.strerror}"
    return f"internal error: {type(exc).__name__}: {exc}"  # a bug of ours: a local compile


def remote_error(exc: BaseException) -> RemoteFailure:
    """The failure for a task that raised, or whose worker died under it."""
    return RemoteFailure(f"remote error: {type(exc).__name__}: {exc}")


# --- the split ---

def split_may_start(k: int, in_flight: int, threads: int) -> bool:
    """Whether a split of K processes may start while splits holding IN_FLIGHT processes
    run, on workers of THREADS threads in all. A leader holds its worker's thread while it
    waits for its shards, and a worker runs its tasks in order: two splits whose K add up
    to more than the threads can each hold a thread the other's shard is queued behind
    (a deadlock: 2 workers, two K = 3 splits). Alone, a split may queue extra shards: a
    leader that could take the thread they queue for is sent only once they have ended
    (leader_waits_on_itself)."""
    return in_flight == 0 or in_flight + k <= threads


def leader_on_head(slot_free: bool, early_export: bool) -> bool:
    """Whether a split's leader runs on the head (a SLOT_FREE there): it has go's inputs in
    place, so nothing is sent to the leader and no archive comes back (aws-sdk-go's ec2:
    7.7 MB of sources out, a 64 MB archive back), and its merge takes no worker's thread.
    Not while pipelining sends EARLY_EXPORT data: only a worker's leader sends its package's
    export data before its backend; the head's own compiles export nothing early."""
    return slot_free and not early_export


# A head-led split's leader starts the function assignment this far below its even share
# (per mille; for K = 2 it takes 55% of the weight): each shard also writes its result
# (ec2: 1.0-1.5 s) and sends it over the network before the merge can start, while the
# leader's merge comes after the wait whatever its share. At the compiler's default start
# the leaders of experiment 8's giant splits waited several seconds for their shards.
HEAD_LEAD_START = -200


def lead_start(head_leads: bool) -> int | None:
    """The leader's starting load for the compiler's assignment (-fgoleadstart, per mille
    of one shard's even share), or None for the compiler's default (a seventh of the
    others' share: a worker's leader, whose balance has not been measured against it)."""
    return HEAD_LEAD_START if head_leads else None


def leader_first(addresses: list[str]) -> list[str]:
    """ADDRESSES (a split's workers, leader first) with the leader on a worker none of its
    shards shares when one exists: a shard queued behind its own leader on a worker of one
    thread never runs (tasks reach a worker over several connections, in either order)."""
    alone = [a for a in addresses if addresses.count(a) == 1]
    if not alone or addresses[0] == alone[0]:
        return list(addresses)
    rest = list(addresses)
    rest.remove(alone[0])
    return [alone[0], *rest]


def leader_waits_on_itself(addresses: list[str], leader_threads: int) -> bool:
    """Whether a split placed on ADDRESSES (leader first) could wait for ever if sent at
    once: its leader's worker, of LEADER_THREADS threads, is to run more of its processes
    than it has threads, so the leader may take the last one while a shard it waits for
    queues behind it (tasks reach a worker in either order: a head that knew one 1-thread
    worker yet, the other still connecting, put both halves of a forced split there).
    Such a split sends its leader only once those shards have ended."""
    return addresses.count(addresses[0]) > leader_threads


def split_hosts(free_hosts: int, shards: int | None, head_slot: bool = False) -> int:
    """The hosts a split compile may plan K for: the free ones, counting this compile's own
    (so at least 1), and the head when its leader takes a HEAD_SLOT there; an explicit
    --shards K is honoured even beyond them (extra shards queue). The planner then caps K
    by this and takes the cost model's argmin below it."""
    free = max(1, free_hosts + (1 if head_slot else 0))
    if shards:
        free = max(free, shards)
    return free
