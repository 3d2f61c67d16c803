"""The workers of one build: who they are (the handshake), where a compile goes
(placement, under one lock), what their stores hold, and the calls that reach them.

The pool learns its workers once, with a Hello to each, all at once and within one
deadline: a worker that does not answer is left out and reported, one of another fgo
protocol or toolchain is refused with a line naming both sides. An embedded cluster
starts in the background on first use; until its workers are up, compiles run elsewhere
(RemoteFailure CLUSTER_STARTING): go build never waits for worker processes. A scheduler
may still be connecting when go build starts (fgo.cluster.connect.BackgroundCluster): a
compile for the workers waits for it, a fraction of a second.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fgo import toolchain, wire
from fgo.cluster import channel, rpc
from fgo.cluster.connect import CONNECT_S
from fgo.cluster.deadline import HANDSHAKE_S, LIVENESS_S, SCHEDULER_S, Late, per_worker, within
from fgo.head import policy
from fgo.head.placement import Placement
from fgo.head.policy import RemoteFailure
from fgo.wire import Hello, HelloReply

LATE_LIVENESS = 3  # liveness answers missed in a row before the scheduler counts as gone
# How often the waits of remote compiles ask the scheduler for its live workers (all
# waiters share one answer): a call the scheduler runs a pickled function for, and a
# thread; at once a second it was ~0.2 ms of the head's CPU per compile of a cold gin
# build. A worker that dies closes its channel at once, one that stops is probed: this
# is the slow path.
LIVE_EVERY_S = 2.0
# glibc's malloc gives each thread that allocates beside another an arena of its own (up
# to 8 a core), and keeps what a freed buffer leaves in it: with a compile channel's reader
# and the dispatch threads framing tasks and 4 MB output chunks, the head's peak grew by a
# fifth (aws-sdk-go's service/ec2 on one worker, by hand: 105 MB, 87 over Dask's comms,
# 76 with one arena from the start). The head's threads take turns at the GIL anyway.
MALLOC_ARENAS = 1
M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)


def share_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most ARENAS malloc arenas in this process from now on (glibc); whether it took."""
    try:
        import ctypes  # here: a build that uses no cluster never imports it
        return bool(ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc
        return False


class WorkerPool:
    """One build's view of its cluster (a fgo.cluster.connect Cluster or EmbeddedCluster)."""

    def __init__(self, cluster: Any, token_dir: str) -> None:
        self.cluster = cluster
        self.identity = toolchain.identity()
        self.placement = Placement()
        self.lock = threading.Lock()               # guards placement
        self.learned = False
        self._learn_lock = threading.Lock()
        self._starter: threading.Thread | None = None
        self.start_failed = False                  # the cluster never came: no workers
        self.stopped = False                       # go build has ended
        self.lazy_start = True                     # an embedded cluster may start on demand
        self.refused: set[str] = set()             # another toolchain/protocol, or excluded
        self.unresponsive: set[str] = set()        # no answer to the handshake or a probe
        self.host_faults: dict[str, int] = {}      # compiles failed there that go then built
        self.failing: set[str] = set()             # left out for them (policy.leave_out_failing)
        # Workers an earlier build on this scheduler left out as failing (-> their record,
        # policy.backed_off), set before the handshake; those left out for it now.
        self.remembered_failing: dict[str, dict[str, float]] = {}
        self.backed_off: dict[str, float] = {}     # worker -> until when (time.time())
        self._probed: dict[str, float] = {}        # worker -> when its last probe was asked
        self.shares_files: set[str] = set()        # read the head's token: paths, not bytes
        self.goroot_sources: set[str] = set()      # take std sources from their own GOROOT
        self._goroot_shas: set[str] = set()        # ... those sources (never in their stores)
        self.patched_series: dict[str, str] = {}   # worker -> its patched compiler's series
        # Compile channels (fgo.cluster.channel): those open, and the workers whose channel
        # failed to open or broke (their compiles go over Dask's comms); FGO_CHANNEL=off: none.
        self.channels: dict[str, channel.Channel] = {}
        self.channel_failed: set[str] = set()
        self.use_channels = os.environ.get("FGO_CHANNEL", "on") != "off"
        # FGO_GOROOT_SOURCES=off: every source sent, as to a worker of an older fgo
        self.use_goroot_sources = os.environ.get("FGO_GOROOT_SOURCES", "on") != "off"
        # A worker that reads this file's text shares the head's files.
        self.host_token = (os.path.join(token_dir, "host-token"), uuid.uuid4().hex)
        self.on_learned: list[Callable[[int, int], None]] = []  # (hosts, threads)
        self.on_free: list[Callable[[], None]] = []             # a worker thread came free
        self.on_unresponsive: list[Callable[[str], None]] = []  # a worker was left out
        self._live: set[str] = set()
        self._live_at = 0.0
        self._late = 0
        self._live_lock = threading.Lock()

    # --- membership ---

    @property
    def client(self) -> Any:
        """The distributed.Client (thread-safe); an embedded cluster starts on first use."""
        return self.cluster.client

    def ensure(self) -> None:
        """Learn the workers once. An embedded cluster not started yet starts in the
        background, and until its workers are up RemoteFailure(CLUSTER_STARTING); a
        scheduler still connecting is waited for (within its deadlines)."""
        with self._learn_lock:
            if self.learned:
                return
            if getattr(self.cluster, "started", True):
                self._learn()
                return
            if not self.lazy_start:  # the embedded cluster would add nothing to an overflow
                raise RemoteFailure(policy.NO_WORKER)
            self._start_in_background()
            if self.start_failed:
                raise RemoteFailure(policy.NO_WORKER)
            starter = self._starter
        if self.cluster.local or starter is None:
            raise RemoteFailure(policy.CLUSTER_STARTING)
        # a scheduler still connecting (or not yet: this compile is the first need of it):
        # its workers are a fraction of a second away, and running this here would put
        # more compiles on the head than its slots
        self.cluster.start()
        starter.join(CONNECT_S + HANDSHAKE_S)
        if not self.learned or self.start_failed:
            raise RemoteFailure(policy.NO_WORKER)

    def start_soon(self) -> None:
        """Learn the workers in the background, once the cluster is there (a scheduler
        still connecting): the head's slots compile meanwhile, a compile for the workers
        waits (`ensure`)."""
        with self._learn_lock:
            if not self.learned:
                self._start_in_background()

    def _start_in_background(self) -> None:
        if self._starter is None:
            self._starter = threading.Thread(target=self._start_and_learn,
                                             name="fgo-cluster-start", daemon=True)
            self._starter.start()

    def start_now(self) -> None:
        """Start (an embedded cluster) and learn the workers now, waiting for them."""
        self.client  # noqa: B018
        with self._learn_lock:
            if not self.learned:
                self._learn()

    def _start_and_learn(self) -> None:
        # a scheduler connected on demand: learn once something asked for it
        begun = getattr(self.cluster, "wait_begun", None)
        if begun is not None and not begun():
            return  # abandoned: the build ended without it
        try:
            self.client  # noqa: B018  (starts the embedded cluster)
        except Exception as exc:  # no workers, then: every compile runs elsewhere
            self.start_failed = True
            # (a scheduler's connect failing is the driver's to report)
            if self.cluster.local and not self.stopped:  # a build that ended first says nothing
                print(f"fgo: the embedded cluster did not start: {exc}", file=sys.stderr)
            return
        with self._learn_lock:
            if not self.stopped and not self.learned:  # (an `ensure` may have learned first)
                self._learn()

    def _learn(self) -> None:
        self.learned = True
        try:
            warnings = self.handshake()
        except Exception as exc:
            warnings = [f"the workers cannot be asked: {exc}"]
        for warning in warnings:
            print(f"fgo: {warning}; its compiles run elsewhere", file=sys.stderr)

    def handshake(self) -> list[str]:
        """A Hello to every worker at once; the workers that answer as this fgo speaks and
        with this toolchain are used. One warning per worker left out or refused."""
        share_malloc_arenas()  # before its channels' threads; not when the pool is made:
        # every build makes one, and a no-op, which never asks its workers, would pay for it
        Path(self.host_token[0]).write_text(self.host_token[1])
        client = self.client
        workers = sorted(within(SCHEDULER_S, client.nthreads, what="the scheduler's worker list"))
        hello = Hello(self.identity, self.host_token)
        answers, late = per_worker(
            HANDSHAKE_S, lambda w: rpc.ask(client, w, wire.OP_HELLO, hello, HANDSHAKE_S), workers)
        late += [w for w, a in answers.items() if isinstance(a, TimeoutError)]
        answers = {w: a for w, a in answers.items() if w not in late}
        warnings = [f"worker {w} did not answer within {HANDSHAKE_S:g}s: left out" for w in late]
        with self.lock:
            self.unresponsive.update(late)
        self._left_out(late)
        backing_off = policy.backed_off(self.remembered_failing, time.time())
        with self.lock:
            for address, answer in sorted(answers.items()):
                why, info = _judge_hello(answer, self.identity)
                if info is None:
                    self.refused.add(address)
                    warnings.append(f"worker {address} {why}")
                    continue
                if address in backing_off:
                    until = self.backed_off[address] = backing_off[address]
                    warnings.append(f"worker {address} failed compiles that go then built in "
                                    "an earlier build: left out until "
                                    f"{time.strftime('%H:%M:%S', time.localtime(until))}")
                    continue
                self.placement.add_worker(address, info.nthreads, info.store_id,
                                          set(info.hashes), info.cores)
                if info.shares_files:
                    self.shares_files.add(address)
                if info.goroot_sources and self.use_goroot_sources:
                    self.goroot_sources.add(address)
                self.patched_series[address] = info.patched_series
                if info.channel[1] and self.use_channels:
                    self._open_channel_soon(address, info.channel)
            hosts = len({w.store_id for w in self.placement.workers.values()})
            threads = self.placement.total_threads()
        for listener in self.on_learned:
            listener(hosts, threads)
        return warnings

    def exclude(self, address: str) -> None:
        """Use ADDRESS no more in this build (its output failed verification, or it speaks
        another protocol)."""
        with self.lock:
            self.refused.add(address)
            self.placement.remove_worker(address)
            self.shares_files.discard(address)

    def host_fault(self, address: str) -> None:
        """ADDRESS failed a compile that go's own run then built: its host's fault, not the
        user's. Enough of them leave it out of the rest of the build (not as a wrong worker:
        what it built passed verification as any worker's does, and stays in the cache)."""
        with self.lock:
            faults = self.host_faults[address] = self.host_faults.get(address, 0) + 1
            if address in self.failing or not policy.leave_out_failing(faults):
                return
            self.failing.add(address)
        self.exclude(address)
        print(f"fgo: worker {address} failed {faults} compiles that go then built here: "
              "left out; its compiles run elsewhere", file=sys.stderr)

    def host_records(self, remote_workers: set[str]) -> tuple[set[str], set[str]]:
        """The workers this build left out as failing, and those proven good: of
        REMOTE_WORKERS, which compiled for it, those without a host fault."""
        with self.lock:
            return set(self.failing), {a for a in remote_workers if not self.host_faults.get(a)}

    def probe(self, address: str) -> None:
        """ADDRESS has not answered a compile for STRAGGLER_MIN_S: ask whether it is alive,
        in the background (at most once per PROBE_EVERY_S); no new work goes there until it
        answers (a round trip on its event loop: milliseconds when it is alive). Silence
        within HANDSHAKE_S leaves it out of the rest of the build, as a worker that missed
        the handshake: its compiles in flight fall back (it is no longer `live`), nothing is
        published to it, the report names it. (A SIGSTOPped worker cost 10-70 s a compile,
        and 30 s at the publish.)"""
        with self.lock:
            if not policy.probe_due(time.monotonic(), self._probed.get(address),
                                    address in self.unresponsive):
                return
            self._probed[address] = time.monotonic()
            self.placement.pause(address)
        threading.Thread(target=self._probe, args=(address,), name="fgo-probe",
                         daemon=True).start()

    def _probe(self, address: str) -> None:
        alive = self._answers(address)
        with self.lock:
            if alive:
                self.placement.resume(address)
                return
            self.unresponsive.add(address)
            self.placement.remove_worker(address)
            self.shares_files.discard(address)
        self._left_out([address])
        print(f"fgo: worker {address} did not answer within {HANDSHAKE_S:g}s: left out; "
              "its compiles run elsewhere", file=sys.stderr)

    def _left_out(self, addresses: list[str]) -> None:
        for address in addresses:
            for listener in self.on_unresponsive:
                listener(address)

    def _answers(self, address: str) -> bool:
        return rpc.alive(self.client, address, HANDSHAKE_S)

    def threads_of(self, address: str) -> int:
        with self.lock:
            w = self.placement.workers.get(address)
            return w.threads if w is not None else 1

    def paths_unshared(self, address: str) -> None:
        """ADDRESS could not read a file by the head's path after all: send it bytes."""
        with self.lock:
            self.shares_files.discard(address)

    def takes_goroot(self, address: str) -> bool:
        """Whether ADDRESS takes the sources under the head's GOROOT from its own
        (CompileTask.from_goroot)."""
        with self.lock:
            return address in self.goroot_sources

    def goroot_unshared(self, address: str) -> None:
        """ADDRESS's GOROOT lacked a source the head's has (another release, or edited
        there): send it every source from now on."""
        with self.lock:
            self.goroot_sources.discard(address)

    def live(self) -> set[str]:
        """The scheduler's current workers, asked at most once a second for all waiters. A
        scheduler that does not answer within LIVENESS_S keeps the last answer, until it
        has missed LATE_LIVENESS answers in a row: then nobody is alive."""
        with self._live_lock:
            if time.monotonic() - self._live_at > LIVE_EVERY_S:
                try:
                    self._live = set(within(LIVENESS_S, self.client.run_on_scheduler,
                                            _worker_addresses, what="the scheduler"))
                    self._late = 0
                except Late:
                    self._late += 1
                    if self._late >= LATE_LIVENESS:
                        self._live = set()
                except Exception:  # the scheduler itself is gone: nobody is alive
                    self._live = set()
                self._live_at = time.monotonic()
            return self._live - self.unresponsive

    def size(self) -> tuple[int, int]:
        """Workers and threads: as learned, or as the embedded cluster will start them."""
        if self.learned:
            with self.lock:
                return len(self.placement.workers), self.placement.total_threads()
        return self.cluster.workers, self.cluster.workers * self.cluster.threads

    # --- placement (each takes the lock) ---

    def choose(self, needs: dict[str, int]) -> str | None:
        with self.lock:
            return self.placement.choose(needs)

    def choose_distinct(self, needs: dict[str, int], k: int, free_only: bool = False,
                        series: str | None = None) -> list[str]:
        """Up to K different workers for a compile needing NEEDS (sha -> size), now busy
        (FREE_ONLY: of those with a free thread; SERIES: of those whose patched compiler,
        built when they answered the hello, is of that series)."""
        with self.lock:
            return self.placement.choose_distinct(needs, k, free_only, self._patched(series))

    def _patched(self, series: str | None) -> set[str] | None:
        """The workers holding the patched compiler of SERIES (None: no filter)."""
        if series is None:
            return None
        return {a for a, s in self.patched_series.items() if s == series}

    def lacking_patched(self, series: str) -> bool:
        """Whether a worker in use lacked the patched compiler of SERIES at its hello."""
        with self.lock:
            return any(self.patched_series.get(a) != series for a in self.placement.workers)

    def choose_speculative(self, needs: dict[str, int]) -> str | None:
        with self.lock:
            return self.placement.choose_speculative(needs)

    def choose_check(self, needs: dict[str, int], avoid: str) -> str | None:
        with self.lock:
            return self.placement.choose_check(needs, avoid)

    def has_other(self, worker: str) -> bool:
        """Whether a worker besides WORKER is in use (one that could cross-check it)."""
        with self.lock:
            return any(a != worker for a in self.placement.workers)

    def transfer(self, address: str, needs: dict[str, int],
                 from_goroot: Iterable[str] = ()) -> tuple[list[str], list[str]]:
        """(blobs to send to ADDRESS, blobs another task is already carrying there) of
        NEEDS; FROM_GOROOT: those it takes from its own GOROOT instead (not stored there)."""
        with self.lock:
            self._goroot_shas.update(from_goroot)
            return self.placement.transfer(address, needs)

    def lacks(self, address: str, missing: list[str]) -> None:
        with self.lock:
            self.placement.lacks(address, missing)

    def finished(self, address: str, sent: list[str], confirmed: list[str],
                 speculative: bool = False) -> None:
        """ADDRESS is free again; of the blobs SENT to it, CONFIRMED are in its store (but
        those it took from its own GOROOT)."""
        with self.lock:
            if address in self.goroot_sources:
                confirmed = [s for s in confirmed if s not in self._goroot_shas]
            self.placement.finished(address, sent, confirmed, speculative)
        for listener in self.on_free:
            listener()

    def peak_rss_mb(self) -> dict[str, float]:
        """Each worker process's peak resident memory (MB), when the cluster ran; {} when it
        never started or does not answer in time (a figure for the report, never a wait)."""
        if not self.learned:
            return {}
        from fgo.worker.service import peak_rss_mb
        try:
            with self.lock:
                answering = sorted(self.placement.workers)  # not one left out as stopped
            return dict(within(SCHEDULER_S, self.client.run, peak_rss_mb, workers=answering,
                               what="peak memory")) if answering else {}
        except Exception:  # noqa: BLE001 - a worker gone by now: no figure, the build stands
            return {}

    def free_hosts(self, other_than_the_head: bool = False, series: str | None = None) -> int:
        """Hosts with a free thread; OTHER_THAN_THE_HEAD: not counting the head's own host
        (its workers share the head's files), where a leader on the head runs; SERIES: only
        workers holding the patched compiler of that series (`choose_distinct`)."""
        with self.lock:
            besides = frozenset(self.shares_files) if other_than_the_head else frozenset()
            return self.placement.free_hosts(besides, self._patched(series))

    def cores_per_compile(self) -> int:
        with self.lock:
            return self.placement.cores_per_compile()

    def free_threads(self) -> int:
        with self.lock:
            return self.placement.free_threads()

    def shares(self, address: str) -> bool:
        with self.lock:
            return address in self.shares_files

    def in_place(self, address: str) -> bool:
        """Whether ADDRESS compiles from the head's files in place (CompileTask.in_place):
        a worker of the embedded cluster, the head's own child process, that read the
        head's token. A worker of another cluster on this host may see other files at
        the same paths (a container, another mount namespace): it gets paths to hash."""
        return bool(self.cluster.local) and self.shares(address)

    # --- calls ---

    def submit(self, address: str, op: str, message: Any,
               on_stream: Callable[[Any], None] | None = None
               ) -> concurrent.futures.Future[Any]:
        """MESSAGE to ADDRESS's handler OP, answered in a future (plain data); a compile
        over the worker's channel when it has one (streamed messages decoded, as
        fgo.cluster.rpc hands them on)."""
        link = self._channel(address) if op == wire.OP_COMPILE else None
        if link is None:
            return rpc.submit(self.client, address, op, message, on_stream)

        def streamed(data: Any) -> None:
            message = rpc.streamed(data)
            if message is not None and on_stream is not None:
                on_stream(message)
        return link.submit(op, wire.encode(message), streamed)

    def _channel(self, address: str) -> channel.Channel | None:
        """ADDRESS's compile channel while it is open; None before it is (its compiles go
        over Dask's comms meanwhile), or once it broke (a worker that died fails there as
        well; one whose channel alone broke goes on working)."""
        link = self.channels.get(address)
        if link is None or link.closed is None:
            return link
        with self.lock:
            self.channels.pop(address, None)
            self.channel_failed.add(address)
        return None

    def _open_channel_soon(self, address: str, offer: tuple[str, int, str]) -> None:
        """Connect to the channel ADDRESS offered, in the background: a port a firewall
        drops (only Dask's may be open between hosts) must not hold a compile up."""
        def connect() -> None:
            host, port, secret = offer
            try:
                link = channel.Channel(host, port, secret, timeout=channel.CONNECT_S)
            except OSError:
                with self.lock:
                    self.channel_failed.add(address)
                return
            with self.lock:
                self.channels[address] = link
        threading.Thread(target=connect, name="fgo-channel-connect", daemon=True).start()

    def tell(self, address: str, op: str, message: Any) -> None:
        """MESSAGE to ADDRESS's handler OP, not waited for (Cancel, Promote)."""
        try:
            rpc.submit(self.client, address, op, message)
        except Exception:  # noqa: BLE001  (a worker gone: nothing to stop there)
            pass


def _judge_hello(answer: Any, identity: toolchain.Identity) -> tuple[str, HelloReply | None]:
    """(why a worker is refused, or its HelloReply when it is usable)."""
    if isinstance(answer, BaseException):
        return f"cannot be used: {type(answer).__name__}: {answer}", None
    try:
        info = wire.decode(answer, HelloReply)
    except wire.ProtocolMismatch as exc:
        return f"refused: protocol mismatch: {exc}", None
    if info.identity != identity:
        return (f"refused: toolchain mismatch: head has {identity.describe()}, worker has "
                f"{info.identity.describe()}"), None
    return "", info


def _worker_addresses(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.workers)
