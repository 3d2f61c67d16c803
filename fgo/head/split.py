"""The split executor (`--split-large`): one package's compile as K-1 shards and a leader
on K different workers.

For a compile the planner finds worth splitting, the shards go to K-1 workers and the
leader runs on a free local slot of the head (fgo.head.headlead: go's own inputs, no
archive to send back), else on a K-th worker, all as one split id, with the same inputs
(each store gets each blob at most once). Each shard keeps its result on its worker; the
leader starts at once and fetches the shards' results as they finish (worker to worker,
or to the head), then merges. Anything short of a merged archive
(a refused or late shard, a lost worker, a digest or settings mismatch) cancels the split
and the package is compiled whole. A merged archive is checked against a stock compile on
the head node (fgo.head.verification): the first time its inputs are seen, or always
with --check; a mismatch fails the build and stops that package being split again by this
compiler series.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from fgo import compilecall, wire
from fgo.compiler import flags as fgoflags
from fgo.compiler import patched
from fgo.head import policy
from fgo.head.action import CompileAction, Outcome, new_task_id
from fgo.head.headlead import WORKER as HEAD
from fgo.head.headlead import HeadLeader
from fgo.head.policy import RemoteFailure
from fgo.head.pool import WorkerPool
from fgo.head.remote import POLL_S, RemoteExecutor
from fgo.head.slots import LocalSlots
from fgo.head.tasks import Tasks, head_job
from fgo.wire import Cancel, ShardDone, ShardFetch, ShardPeer, ShardResult, SplitRole


@dataclass
class SplitOptions:
    threshold: float | None = None   # --split-large=SECONDS; None: automatic; 0: every package
    shards: int | None = None        # --shards K; None: auto


class SplitExecutor:
    """Splits the compiles the planner finds worth it."""

    def __init__(self, pool: WorkerPool, tasks: Tasks, remote: RemoteExecutor,
                 options: SplitOptions, verifier: Any = None,
                 slots: LocalSlots | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        from fgo.planner.decide import SplitPolicy
        self.pool = pool
        self.slots = slots                                 # the head's: a leader runs there
        self.tasks = tasks
        self.remote = remote
        self.verifier = verifier
        self.speculator: Any = None
        self.policy = SplitPolicy(threshold=options.threshold, shards=options.shards)
        # built when the first split is decided: waited for when the user asked for splits
        self.compiler = patched.OnDemand(
            wait=options.threshold is not None or options.shards is not None, say=say)
        self.series = self.compiler.series
        self._failed: dict[str, str] = {}                 # split id -> a shard's failure
        self._in_flight = 0                                # processes of the splits running
        self._room = threading.Condition()                 # ... and their end
        self._head_leaders: dict[str, HeadLeader] = {}     # split id -> the head's leader

    def run(self, action: CompileAction) -> Outcome | None:
        """ACTION split, or None: not worth it (the record says why), or it fell back."""
        head_leads = self._head_may_lead()
        decided = self._decide(action, head_leads)
        if decided is None:
            return None
        k, plan_text = decided
        # the slot is taken only now, for a split that goes ahead (a compile not split then
        # takes it in the shim as before); one taken meanwhile: a worker leads instead
        slots = self.slots
        slot = slots.take() if head_leads and slots is not None else None
        if slots is None or slot is None:
            return self._run_on_workers(action, k, plan_text)
        try:  # its leader holds no worker's thread: no room to wait for
            return self._run(action, k, plan_text, head_leads=True)
        except RemoteFailure as exc:
            assert action.record.split is not None  # _decide wrote it
            action.record.split["fallback"] = exc.reason
            return None
        finally:
            slots.release(slot)

    def _head_may_lead(self) -> bool:
        """Whether a split's leader would run on a free local slot (policy.leader_on_head)."""
        if self.slots is None:
            return False
        early = self.speculator is not None and bool(self.speculator.early_export)
        return policy.leader_on_head(self.slots.available() > 0, early)

    def _decide(self, action: CompileAction, head_leads: bool) -> tuple[int, str] | None:
        """(K, the plan's text) for a split of ACTION worth making, HEAD_LEADS or not; else
        None, the record saying why."""
        rec = action.record
        call = action.parse()
        plan_started = time.perf_counter()
        _, first_file = compilecall.split_flags(call.args)
        choice = _Choice(self.policy, [compilecall.absolute(call.cwd, f)
                                       for f in call.args[first_file:]])
        try:
            if not self.pool.learned:
                # a scheduler still connecting (beside go build): a package that the cluster
                # the last build found could not split is decided without waiting for it
                k, rec.split, _ = choice.make(self._free_hosts(head_leads, known=False),
                                              self.pool.cores_per_compile(), plan_started)
                if k < 2:
                    return None
                self.pool.ensure()
            k, rec.split, plan_text = choice.make(self._free_hosts(head_leads),
                                                  self.pool.cores_per_compile(), plan_started)
        except RemoteFailure as exc:
            rec.split = {"decision": f"not split: {exc.reason}"}
            return None
        except Exception as exc:  # the planner must never break a build
            rec.split = {"decision": f"not split: planner failed: {exc}"}
            return None
        if k < 2:
            return None
        if self.verifier is not None and not self.verifier.split_wanted(self.series,
                                                                          call.package):
            rec.split["decision"] = "not split: a split of it once differed from stock"
            return None
        if head_leads and self.compiler.get() is None:  # (a worker's leader uses its own)
            rec.split["decision"] = ("not split: " + (
                f"no patched compiler: {self.compiler.error}" if self.compiler.error
                else "the patched compiler is being built, for the builds after this one"))
            return None
        return k, plan_text

    def _series_needed(self) -> str | None:
        """The patched compiler a worker must already hold to take a shard: an automatic
        split's (its workers do not build it for it); None for a split asked for."""
        return None if self.compiler.wait else self.series

    def _free_hosts(self, head_leads: bool, known: bool = True) -> int:
        """The hosts a split may plan for (policy.split_hosts): the free ones, a leader on
        the head counting the head's host once (its own workers add none); not KNOWN yet
        (still connecting): at most one per worker of the cluster's expected size."""
        free = self.pool.free_hosts(other_than_the_head=head_leads,
                                    series=self._series_needed()) \
            if known else self.pool.size()[0]
        return policy.split_hosts(free, self.policy.shards, head_slot=head_leads)

    def _run_on_workers(self, action: CompileAction, k: int, plan_text: str) -> Outcome | None:
        """ACTION's split with its leader on a worker, once the splits running leave room."""
        rec = action.record
        assert rec.split is not None
        with self._room:  # wait for the splits running to leave room (policy.split_may_start)
            if not self._room.wait_for(lambda: policy.split_may_start(
                    k, self._in_flight, self.pool.size()[1]), self.remote.task_timeout):
                rec.split["decision"] = (f"not split: the splits running held "
                                         f"{self._in_flight} of the workers' threads")
                return None
            self._in_flight += k
        try:
            return self._run(action, k, plan_text)
        except RemoteFailure as exc:
            rec.split["fallback"] = exc.reason
            return None
        finally:
            with self._room:
                self._in_flight -= k
                self._room.notify_all()

    def _run(self, action: CompileAction, k: int, plan_text: str,
             head_leads: bool = False) -> Outcome:
        pool, rec, call, env = self.pool, action.record, action.parse(), action.request.env
        inputs = action.inputs or {}
        needs = action.needs()
        on_workers = k - 1 if head_leads else k
        # an automatic split only onto workers free now (the hosts it planned for may have
        # taken whole compiles meanwhile); a forced --shards K may queue its extra shards
        # (an automatic split only onto workers holding the patched compiler: another refuses)
        chosen = pool.choose_distinct(needs, on_workers, free_only=not self.policy.forced,
                                      series=self._series_needed())
        if len(chosen) < on_workers:
            for a in chosen:
                pool.finished(a, [], [])
            lacking = not self.compiler.wait and pool.lacking_patched(self.series)
            raise RemoteFailure(policy.NO_SHARD_WORKER if self.policy.forced
                                else policy.NO_PATCHED_SHARD_WORKER if lacking
                                else policy.NO_FREE_SHARD_WORKER)
        # addresses[i] runs process i of the split; 0 is the leader
        addresses = [HEAD, *chosen] if head_leads else policy.leader_first(chosen)
        split_id = new_task_id()
        peers = [ShardPeer(i, addresses[i]) for i in range(1, k)]

        def fetch(peer: ShardPeer, ended: threading.Event) -> ShardResult:
            return self._fetch(peer, split_id, ended)
        lead_start = policy.lead_start(head_leads)
        leader = HeadLeader(action, k, str(self.compiler.get()), plan_text,
                            self.remote.task_timeout, peers, fetch, lead_start) \
            if head_leads else None
        if leader is not None:  # before any shard runs: a failed one stops it
            self._head_leaders[split_id] = leader

        def role(i: int) -> SplitRole:
            return SplitRole(k=i, n=k, series=self.series, plan=plan_text,
                             timeout=self.remote.task_timeout, split_id=split_id,
                             peers=peers if i == 0 else [], lead_start=lead_start,
                             wait_compiler=self.compiler.wait)

        sent: dict[str, list[str]] = {a: [] for a in chosen}
        shards: dict[int, concurrent.futures.Future[Any]] = {}
        ok = False
        try:
            for i in range(1, k):
                task, shard_sent = self.tasks.for_worker(addresses[i], call, env, inputs,
                                                         split=role(i), task_id=split_id)
                sent[addresses[i]] += shard_sent  # K > workers: an address comes twice
                rec.bytes_in += Tasks.bytes_sent(task, inputs)
                rec.goroot_bytes += Tasks.bytes_from_goroot(task, inputs)
                shards[i] = pool.submit(addresses[i], wire.OP_COMPILE, task)
                shards[i].add_done_callback(
                    lambda f, i=i: self._shard_ended(f, split_id, addresses, i))
            if leader is not None:
                result = leader.run()
                if not result.ok:
                    raise RemoteFailure(self._failed.pop(
                        split_id, f"{result.status.value}: {result.reason}"))
            else:
                if policy.leader_waits_on_itself(addresses, pool.threads_of(addresses[0])):
                    self._await_shards_beside_leader(shards, addresses, split_id)
                task, leader_sent = self.tasks.for_worker(addresses[0], call, env, inputs,
                                                          split=role(0), task_id=split_id)
                if self.speculator is not None and self.speculator.early_export:
                    task = replace(task, early_export=True)
                sent[addresses[0]] += leader_sent
                try:
                    result = self.remote.run_task(action, task, addresses[0],
                                                  sent[addresses[0]],
                                                  watch=tuple(addresses[1:]))
                except RemoteFailure as exc:  # a shard's own failure is the better reason
                    raise RemoteFailure(self._failed.pop(split_id, exc.reason)) from None
            ok = True
        finally:
            self._head_leaders.pop(split_id, None)
            self._failed.pop(split_id, None)
            if not ok:
                self._cancel(split_id, addresses)
            for a in chosen:
                pool.finished(a, sent[a], list(needs) if ok else [])
        self._record(rec.split or {}, addresses, result)
        if rec.split is not None:
            rec.split["lead_start"] = lead_start
        whole = replace(task, split=None, task_id=new_task_id())

        def checked(matched: bool, split_sha: str, stock_sha: str) -> None:
            if rec.split is not None:
                rec.split["check"] = {"ok": matched, "split_sha256": split_sha,
                                      "stock_sha256": stock_sha}

        return Outcome(result, "split", result.worker, task=whole,
                       local_job=head_job(whole, inputs),
                       split_check={"series": self.series, "k": k,
                                    "workers": "+".join(addresses), "done": checked})

    def _fetch(self, peer: ShardPeer, split_id: str, ended: threading.Event) -> ShardResult:
        """Shard PEER's result for the head's leader: waited for while its worker is live,
        up to the task timeout, and no longer than the leader runs (RemoteFailure)."""
        timeout = self.remote.task_timeout
        future = self.pool.submit(peer.address, wire.OP_FETCH,
                                  ShardFetch(split_id, peer.k, timeout))
        started = time.monotonic()
        try:
            while True:
                try:
                    return wire.decode(future.result(timeout=POLL_S), ShardResult)
                except concurrent.futures.TimeoutError:
                    pass
                if ended.is_set():
                    raise RemoteFailure("the leader ended first")
                elapsed = time.monotonic() - started
                if elapsed > policy.STRAGGLER_MIN_S:
                    self.pool.probe(peer.address)  # stopped, or only busy?
                why = policy.wait_verdict(elapsed, timeout, peer.address, (), self.pool.live())
                if why:
                    raise RemoteFailure(why)
        finally:
            if not future.done():
                future.cancel()

    @staticmethod
    def _record(split: dict[str, Any], addresses: list[str], result: wire.CompileResult) -> None:
        """What the report says of a merged split: its workers, the leader's phases, the
        shards the leader fetched."""
        stats = result.stats or wire.CompilerStats()
        split.update({
            "workers": addresses,
            "leader": {"on": addresses[0],
                       "tool_s": round(result.tool_done - result.tool_start, 3),
                       "frontend_s": stats.frontend_s, "backend_s": stats.backend_s,
                       "wait_s": stats.wait_s, "merge_s": stats.inject_s},
            "shards": {f"fgo-shard-{s.k}.res": {
                "worker": s.worker, "bytes": s.bytes, "tool_s": s.tool_s,
                "start_lag_s": round(s.tool_start - result.tool_start, 3)
                if s.tool_start and result.tool_start else None,
                "result_s": s.result_s, "stats": asdict(s.stats)}
                       for s in result.shards},
            "shard_bytes": result.shard_bytes,
        })

    def _await_shards_beside_leader(self, shards: dict[int, concurrent.futures.Future[Any]],
                                    addresses: list[str], split_id: str) -> None:
        """Wait for the shards that share the leader's worker (policy.leader_waits_on_itself):
        their results wait there for the leader, which then runs alone."""
        beside = [f for i, f in shards.items() if addresses[i] == addresses[0]]
        timeout = self.remote.task_timeout
        concurrent.futures.wait(beside, timeout=timeout)
        if not all(f.done() and (done := _shard_done(f)) is not None and done.ok
                   for f in beside):
            raise RemoteFailure(self._failed.get(
                split_id, f"{policy.SHARD_FAILED}: a shard beside its leader on "
                          f"{addresses[0]} did not end well within {timeout:g}s"))

    def _shard_ended(self, future: concurrent.futures.Future[Any], split_id: str,
                     addresses: list[str], i: int) -> None:
        """A shard answered: one that failed stops the whole split at once (its leader
        would otherwise wait for a result that never comes)."""
        done = _shard_done(future)
        if done is None or not done.ok:
            self._failed[split_id] = (f"{policy.SHARD_FAILED}: shard {i} on {addresses[i]}: "
                                      + (f"{done.status}: {done.reason}" if done else "lost"))
            self._cancel(split_id, addresses)

    def _cancel(self, split_id: str, addresses: list[str]) -> None:
        if (leader := self._head_leaders.get(split_id)) is not None:
            leader.cancel()
        for a in dict.fromkeys(addresses):
            if a != HEAD:
                self.pool.tell(a, wire.OP_CANCEL, Cancel(split_id))


def _shard_done(future: concurrent.futures.Future[Any]) -> ShardDone | None:
    """A shard's answer (FUTURE done), or None if it was lost, cancelled or unreadable."""
    try:
        return wire.decode(future.result(), ShardDone)
    except Exception:  # noqa: BLE001  (lost, cancelled or another protocol)
        return None


class _Choice:
    """One compile's split decision for a number of free hosts: the package's files are
    scanned (lark, on the head's core) at most once, and only when the answer needs it."""

    def __init__(self, policy_: Any, go_files: list[str]) -> None:
        self.policy = policy_
        self.go_files = go_files
        self.scan: Any = None
        self.funcs: int | None = None

    def make(self, free: int, cores_per_compile: int,
             started: float) -> tuple[int, dict[str, Any], str]:
        """(K, the record's split section, the plan's text) for FREE hosts."""
        from fgo import planner
        from fgo.planner import decide, gosource
        if self.funcs is None:  # counted only where decided_unscanned uses it (a forced
            self.funcs = gosource.func_lines(self.go_files) \
                if self.policy.forced and self.policy.shards is not None else 0  # K given)
        known = decide.decided_unscanned(free, self.funcs, self.policy)
        if known is not None:  # the compiler deals the functions: no plan
            return known[0], {"decision": known[1], "k": known[0], "scanned": False,
                              "plan_s": round(time.perf_counter() - started, 4)}, ""
        if self.scan is None:
            self.scan = planner.scan_files(self.go_files)
        scan = self.scan
        overheads = decide.Overheads(backend_speedup=decide.backend_speedup(cores_per_compile))
        plan = planner.plan(scan, free, self.policy, overheads)
        record = {
            "decision": plan.reason, "k": plan.k, "scanned": True,
            "plan_s": round(time.perf_counter() - started, 4),
            "predicted_whole_s": round(plan.predicted_whole, 3),
            "predicted_split_s": round(plan.predicted_split, 3),
            "predicted_shard_backend_s": [round(x, 3) for x in plan.shard_loads]}
        plan_text = fgoflags.format_plan(
            (shard, scan.units[i].file, scan.units[i].line, "")
            for shard, units in enumerate(plan.shards) for i in units)
        return plan.k, record, plan_text
