"""`--split-large` on the head node: plan a package's shards and run them on Dask.

For a compile the planner finds worth splitting, K-1 shard tasks and one
leader task go to K different workers with the same inputs (each store gets
each blob at most once). The leader starts at once and merges the shard
results as they arrive, fetching them worker to worker. Anything short of a
verified merge (a refused or late shard, a lost worker, a digest mismatch)
falls back to the package's normal compile. A merged archive is then checked
against a stock compile on the head node (build/verification.py): the first
time its inputs are seen, or always with --check; a mismatch fails the build
and stops that package from being split again by this compiler series.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from fgo.worker import compileargs
from fgo.worker.blobs import Blob
from fgo.worker.protocol import SplitRole
from fgo.build import policy
from fgo.build.coordinator import Coordinator, RemoteFailure, buildid_of
from fgo.build.deadline import SCHEDULER_S, Late, within
from fgo.split import compiler as compiler_patch
from fgo.report.record import ActionRecord


@dataclass
class SplitOptions:
    threshold: float | None = None   # --split-large=SECONDS; None: automatic; 0: every package
    shards: int | None = None        # --shards K; None: auto


class Splitter:
    def __init__(self, coordinator: Coordinator, options: SplitOptions) -> None:
        from fgo.planner.decide import SplitPolicy
        self.coordinator = coordinator
        self.options = options
        self.policy = SplitPolicy(threshold=options.threshold, shards=options.shards)
        self.series = compiler_patch.ensure_compiler().series  # built once, up front

    def try_split(self, call: compileargs.CompileCall, env: dict[str, str],
                  inputs: dict[str, Blob], rec: ActionRecord, t0: float) -> dict[str, Any] | None:
        """The shim's reply for a split compile, or None to compile normally."""
        from fgo import planner
        plan_started = time.perf_counter()
        _, first_file = compileargs.split_flags(call.args)
        go_files = [compileargs.absolute(call.cwd, f) for f in call.args[first_file:]]
        try:
            scan = planner.scan_files(go_files)
        except Exception as exc:  # the planner must never break a build
            rec.split = {"decision": f"not split: planner failed: {exc}"}
            return None
        free = policy.split_hosts(self.coordinator.free_hosts(), self.policy.shards)
        plan = planner.plan(scan, free, self.policy)
        plan_s = time.perf_counter() - plan_started
        rec.split = {"decision": plan.reason, "k": plan.k, "plan_s": round(plan_s, 4),
                     "predicted_whole_s": round(plan.predicted_whole, 3),
                     "predicted_split_s": round(plan.predicted_split, 3),
                     "predicted_shard_backend_s": [round(x, 3) for x in plan.shard_loads]}
        if not plan.split:
            return None
        verifier = self.coordinator.verifier
        if verifier is not None and not verifier.split_wanted(self.series, call.package):
            rec.split["decision"] = "not split: a split of it once differed from stock"
            return None
        try:
            return self._run(call, env, inputs, rec, t0, scan, plan)
        except RemoteFailure as exc:
            rec.split["fallback"] = exc.reason
            return None

    def _run(self, call: compileargs.CompileCall, env: dict[str, str], inputs: dict[str, Blob],
             rec: ActionRecord, t0: float, scan: Any, plan: Any) -> dict[str, Any]:
        c = self.coordinator
        needs = {b.sha: b.size for b in inputs.values()}
        addresses = c.choose_distinct(needs, plan.k)
        if len(addresses) < plan.k:
            for a in addresses:
                c.finished(a, [], [])
            raise RemoteFailure(policy.NO_SHARD_WORKER)
        plan_text = compiler_patch.format_plan(
            (shard, scan.units[i].file, scan.units[i].line, "")
            for shard, units in enumerate(plan.shards) for i in units)

        # with pipelining the leader sends its export data early (from its frontend)
        topic = c.export_topic() if c.speculator is not None and c.speculator.early_export \
            else None

        def role(k: int, queue: str | None = None) -> SplitRole:
            return SplitRole(k=k, n=plan.k, series=self.series, plan=plan_text,
                             timeout=c.task_timeout, queue=queue,
                             export_topic=topic if k == 0 else None)

        sent: dict[str, list[str]] = {a: [] for a in addresses}
        ok = False
        futures = []
        queue = c.open_queue("fgo-shards")
        try:
            for k in range(1, plan.k):
                task, shard_sent = c.prepare(addresses[k], call, env, inputs, split=role(k))
                sent[addresses[k]] += shard_sent  # K > workers: an address comes twice
                rec.bytes_in += sum(len(d) for d in task.blobs.values())
                futures.append(c.submit_async(task, addresses[k], f"shard-{k}-{uuid.uuid4().hex[:12]}"))
                # the leader takes them from here, in shard order
                try:
                    within(SCHEDULER_S, queue.put, futures[-1], what="the shard queue")
                except Late as exc:
                    raise RemoteFailure(str(exc)) from None
            task, leader_sent = c.prepare(addresses[0], call, env, inputs,
                                          split=role(0, queue.name))
            sent[addresses[0]] += leader_sent
            result = c.run_task(task, addresses[0], inputs, rec, sent[addresses[0]],
                                watch=tuple(addresses[1:]))
            ok = True
        finally:
            if not ok and futures:
                # Forced, so the leader's copies are cancelled too: its fetcher then stops
                # its compile at once instead of holding a worker thread until the timeout.
                c.cancel(futures)
            for f in futures:
                f.release()
            try:
                within(SCHEDULER_S, queue.close, what="closing the shard queue")
            except Late:
                pass
            for a in addresses:
                c.finished(a, sent[a], list(needs) if ok else [])
        stats = result.stats
        rec.split.update({
            "workers": addresses,
            "leader": {"tool_s": round(result.tool_done - result.tool_start, 3),
                       "frontend_s": stats.get("frontend_s"), "backend_s": stats.get("backend_s"),
                       "wait_s": stats.get("wait_s"), "merge_s": stats.get("inject_s")},
            "shards": result.shards,
            "shard_bytes": result.shard_bytes,
        })
        rec.mode, rec.worker = "split", result.worker
        reply = c.reply(call, result, rec, t0)
        if c.verifier is not None and result.exit == 0:
            split_info = rec.split

            def record(ok: bool, split_sha: str, stock_sha: str) -> None:
                split_info["check"] = {"ok": ok, "split_sha256": split_sha,
                                       "stock_sha256": stock_sha}

            c.verifier.after_split(self.series, call.package or rec.package, plan.k,
                                   "+".join(addresses), task.inputs, result.outputs,
                                   buildid_of(call), c.local_job(task, inputs), record)
        return reply
