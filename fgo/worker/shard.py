"""The worker side of a split compile: one shard, or the leader that merges.

A shard runs the patched compiler in shard mode and keeps its result in this worker's
memory (`RESULTS`) until its leader fetches it or the split is cancelled; the head gets a
small ShardDone. The leader starts its own compile at once (frontend, then its own shard)
and meanwhile fetches the other shards' results straight from their workers (worker to
worker, never through the head), writing each where the compiler polls for it. With
pipelining the leader sends the package's export data from its frontend on its own
connection, as a whole compile does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fgo.compiler import flags as fgoflags
from fgo.compiler import early_export, leader, patched
from fgo.wire import (CompileResult, CompileTask, ExportReady, ShardDone, ShardFetch,
                      ShardPeer, ShardResult, SplitRole, Status)
from fgo.worker import faults, runner, sandbox
from fgo.worker.idle import IDLE

KEEP_S = 900.0  # a shard result nobody fetched is dropped after this


class Results:
    """Shard results kept for their leaders: (split id, k) -> result, with a wait."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.results: dict[tuple[str, int], tuple[ShardResult, float]] = {}

    def put(self, split_id: str, k: int, result: ShardResult) -> None:
        with self.cond:
            now = time.monotonic()
            for key in [key for key, (_, at) in self.results.items() if now - at > KEEP_S]:
                del self.results[key]
            self.results[(split_id, k)] = (result, now)
            self.cond.notify_all()

    def take(self, split_id: str, k: int, timeout: float) -> ShardResult | None:
        """Shard K's result once it is there (and forgotten here), or None after TIMEOUT."""
        with self.cond:
            if not self.cond.wait_for(lambda: (split_id, k) in self.results, timeout):
                return None
            return self.results.pop((split_id, k))[0]

    def drop(self, split_id: str) -> None:
        with self.cond:
            for key in [key for key in self.results if key[0] == split_id]:
                del self.results[key]


RESULTS = Results()


def fetch_here(request: ShardFetch, worker: str) -> ShardResult:
    """The answer to a leader's ShardFetch on this worker."""
    got = RESULTS.take(request.split_id, request.k, request.timeout)
    if got is None:
        return ShardResult(Status.SHARD_FAILED, worker,
                           reason=f"shard {request.k} gave no result within {request.timeout:g}s")
    return got


def _patched(split: SplitRole) -> patched.Patched | None:
    """The patched compiler for SPLIT: built first if the split was asked for (it waits);
    else (an automatic split, which a build of cmd/compile would never pay) only if this
    worker has it, its build started in the background if not."""
    if split.wait_compiler:
        return patched.ensure_compiler()
    path = runner.patched_compiler()  # not None: this worker has a patch series
    return None if path is None else patched.Patched(path, runner.on_demand().series, False, 0.0)


def run(task: CompileTask, split: SplitRole, args: list[str], env: dict[str, str], box: str,
        worker: str, started: float, on_export: Callable[[ExportReady], None] | None = None,
        fetch: Callable[[str, ShardFetch], ShardResult] | None = None, nice: int = 0
        ) -> CompileResult | ShardDone:
    """TASK's shard (a ShardDone; the result kept here) or, for the leader, the merged
    compile (a CompileResult), run in BOX (laid out by the executor) with ARGS, NICE nicer
    than this worker. Every process of a split runs under its split id: one Cancel stops
    them all."""
    compiler = _patched(split)
    if compiler is None:  # this split falls back; the worker stays in use (not REFUSED)
        reason = "no patched compiler on this worker yet: it is being built, for later splits"
        if split.leader:
            return CompileResult(Status.SHARD_FAILED, worker, reason=reason)
        RESULTS.put(split.split_id, split.k, ShardResult(Status.SHARD_FAILED, worker, reason))
        return ShardDone(Status.SHARD_FAILED, worker, reason=reason)
    if compiler.series != split.series:
        reason = (f"patch series mismatch: head {split.series[:12]}, "
                  f"worker {compiler.series[:12]}")
        if split.leader:
            return CompileResult(Status.REFUSED, worker, reason=reason)
        return ShardDone(Status.REFUSED, worker, reason=reason)
    plan = os.path.join(box, "fgo-plan.txt")
    Path(plan).write_text(split.plan)
    stats = os.path.join(box, "fgo-stats.json")
    cwd = box + task.call.cwd
    if split.leader:
        return _lead(task, split, str(compiler.path), args, env, box, plan, stats, worker,
                     started, on_export, fetch, nice)
    out = os.path.join(box, f"fgo-shard-{split.k}.res")
    argv = fgoflags.with_flags([str(compiler.path), *args],
                               fgoflags.shard_flags(split.k, split.n, out, plan, stats,
                                                    lead_start=split.lead_start))
    tool_start = time.time()
    proc = runner.run(split.split_id, argv, cwd, faults.shard_env(env), nice=nice)
    tool_done = time.time()
    if proc.cancelled:
        return ShardDone(Status.CANCELLED, worker, reason="cancelled by the head")
    if proc.returncode != 0 or not os.path.exists(out):
        result = ShardResult(Status.SHARD_FAILED, worker, reason=leader.refusal(proc.output, box))
    else:
        result = ShardResult(Status.OK, worker,
                             result=faults.damage("shard", Path(out).read_bytes()),
                             stats=leader.stats(stats), tool_start=tool_start, tool_done=tool_done)
    RESULTS.put(split.split_id, split.k, result)
    return ShardDone(result.status, worker, reason=result.reason, bytes=len(result.result),
                     tool_start=tool_start, tool_done=tool_done)


def _lead(task: CompileTask, split: SplitRole, compiler: str, args: list[str],
          env: dict[str, str], box: str, plan: str, stats: str, worker: str, started: float,
          on_export: Callable[[ExportReady], None] | None,
          fetch: Callable[[str, ShardFetch], ShardResult] | None, nice: int = 0
          ) -> CompileResult:
    call = task.call
    files = {p.k: os.path.join(box, f"fgo-shard-{p.k}.res") for p in split.peers}
    early = os.path.join(box, "fgo-early-export.a")
    argv = fgoflags.with_flags(
        [compiler, *args],
        fgoflags.leader_flags(split.n, [files[k] for k in sorted(files)], plan,
                              timeout=int(split.timeout), stats=stats,
                              lead_start=split.lead_start)
        + (fgoflags.early_export(early) if task.early_export and on_export else []))
    tool_start = time.time()
    proc = runner.start(split.split_id, argv, box + call.cwd, env, nice=nice)
    if proc is None:
        return CompileResult(Status.CANCELLED, worker, reason="cancelled by the head")
    IDLE.real_started()
    try:
        if task.early_export and on_export is not None:
            threading.Thread(target=_send_early_export, args=(proc, early, on_export),
                             name="fgo-early-export", daemon=True).start()
        def get(peer: ShardPeer) -> ShardResult:
            if fetch is None:
                raise RuntimeError("no way to fetch shard results here")
            return fetch(peer.address, ShardFetch(split.split_id, peer.k, split.timeout))

        def stop() -> None:
            if proc.poll() is None:
                proc.kill()
        fetched = leader.fetch_in_background(split.peers, files, get,
                                             lambda: proc.poll() is not None, stop)
        done = runner.finish(split.split_id, proc)
        tool_done = time.time()
        got = fetched()
    finally:
        IDLE.real_ended()
    if done.cancelled:
        return CompileResult(Status.CANCELLED, worker, reason="cancelled by the head")
    if got.error:
        return CompileResult(Status.SHARD_FAILED, worker, reason=got.error)
    if done.returncode != 0:
        # a refused merge (exit 2) or a genuine compile error: the head compiles it whole
        return CompileResult(Status.MERGE_REFUSED, worker, reason=leader.refusal(done.output, box),
                             exit=done.returncode)
    outputs = sandbox.read_outputs(call, box)
    return CompileResult(Status.OK, worker, exit=0,
                         output=done.output.replace(box.encode(), b""), outputs=outputs,
                         output_sha256=sandbox.output_sha256(call, outputs),
                         stats=leader.stats(stats), shards=got.shards,
                         shard_bytes=got.bytes, started=started,
                         tool_start=tool_start, tool_done=tool_done, returned=time.time())


def _send_early_export(proc: Any, early: str, on_export: Callable[[ExportReady], None]) -> None:
    """The leader's export data to the head as soon as the compiler wrote it."""
    written = early_export.when_written(proc, early)
    if written is not None:
        on_export(ExportReady(*written))
