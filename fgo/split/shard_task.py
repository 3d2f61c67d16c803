"""The worker side of a split compile: one shard, or the leader that merges.

A shard task runs the patched compiler in shard mode and returns its shard
result; Dask keeps it in that worker's memory. The leader task starts its own
compile at once (frontend, then its own shard) and, in a thread, fetches the
other shards' results from their workers as they finish (worker to worker,
never through the head node), writing each where the compiler polls for it.
The leader never runs a second frontend after the shards finish.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from fgo.worker import compileargs, faults

from fgo.split import compiler as compiler_patch
from fgo.split import early_export
from fgo.worker.outputs import output_sha256, read_outputs
from fgo.worker.protocol import CompileResult, CompileTask, ShardResult, SplitRole, Status, mismatch


def _stats(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _refusal(output: bytes, sandbox: str) -> str:
    """The patched compiler's one-line 'fgo: ...' reason, if it gave one (sandbox-relative,
    so that the same reason reads the same in every build's summary)."""
    output = output.replace(sandbox.encode() + b"/", b"")
    for line in output.decode(errors="replace").splitlines():
        if line.startswith("fgo: "):
            return line[5:]
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


def run(task: CompileTask, split: SplitRole, call: compileargs.CompileCall, args: list[str],
        env: dict[str, str], sandbox: str, worker: str, started: float
        ) -> CompileResult | ShardResult:
    """TASK's shard (a ShardResult) or, for the leader, the merged compile (a CompileResult),
    run in SANDBOX (laid out by the executor) with the compile's sandboxed ARGS."""
    patched = compiler_patch.ensure_compiler()
    if patched.series != split.series:
        reason = (f"patch series mismatch: head {split.series[:12]}, "
                  f"worker {patched.series[:12]}")
        if split.leader:
            return CompileResult(Status.REFUSED, worker, reason=reason)
        return ShardResult(Status.REFUSED, worker, reason=reason)
    plan = os.path.join(sandbox, "fgo-plan.txt")
    Path(plan).write_text(split.plan)
    stats = os.path.join(sandbox, "fgo-stats.json")
    k, n = split.k, split.n
    cwd = sandbox + call.cwd
    if k > 0:  # a shard
        out = os.path.join(sandbox, f"fgo-shard-{k}.res")
        argv = compiler_patch.with_flags([str(patched.path), *args],
                                         compiler_patch.shard_flags(k, n, out, plan, stats))
        tool_start = time.time()
        proc = subprocess.run(argv, cwd=cwd, env=faults.shard_env(env), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        tool_done = time.time()
        if proc.returncode != 0 or not os.path.exists(out):
            return ShardResult(Status.SHARD_FAILED, worker, reason=_refusal(proc.stdout, sandbox))
        return ShardResult(Status.OK, worker, result=faults.damage("shard", Path(out).read_bytes()),
                           stats=_stats(stats), tool_start=tool_start, tool_done=tool_done)

    # the leader
    files = [os.path.join(sandbox, f"fgo-shard-{i}.res") for i in range(1, n)]
    early = os.path.join(sandbox, "fgo-early-export.a")
    argv = compiler_patch.with_flags(
        [str(patched.path), *args],
        compiler_patch.leader_flags(n, files, plan, timeout=int(split.timeout), stats=stats)
        + (early_export.flags(early) if split.export_topic else []))
    tool_start = time.time()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    fetched: dict[str, Any] = {"bytes": 0, "error": None, "shards": {}}
    from distributed import get_client, get_worker
    client = get_client()  # here: a thread of our own would not find the worker
    if split.export_topic:
        threading.Thread(target=_send_early_export,
                         args=(get_worker(), split.export_topic, call.package, early, proc),
                         name="fgo-early-export", daemon=True).start()
    fetcher = threading.Thread(target=_fetch_shards,
                               args=(client, split.queue, files, proc, fetched),
                               name="fgo-shard-fetch", daemon=True)
    fetcher.start()
    output, _ = proc.communicate()
    tool_done = time.time()
    fetcher.join(timeout=5)
    if fetched["error"]:
        return CompileResult(Status.SHARD_FAILED, worker, reason=fetched["error"])
    if proc.returncode != 0:
        # a refused merge (exit 2) or a genuine compile error: the caller compiles normally
        return CompileResult(Status.MERGE_REFUSED, worker, reason=_refusal(output, sandbox),
                             exit=proc.returncode)
    outputs = read_outputs(call, sandbox)
    return CompileResult(Status.OK, worker, exit=0,
                         output=output.replace(sandbox.encode(), b""), outputs=outputs,
                         output_sha256=output_sha256(call, outputs),
                         stats=_stats(stats), shards=fetched["shards"],
                         shard_bytes=fetched["bytes"], started=started,
                         tool_start=tool_start, tool_done=tool_done, returned=time.time())


def _send_early_export(worker: Any, topic: str, package: str, early: str,
                       proc: subprocess.Popen[bytes]) -> None:
    """The leader's export data to the head as a Dask event, as soon as the compiler wrote
    it, while the backend still runs."""
    written = early_export.when_written(proc, early)
    if written is not None:
        worker.log_event(topic, {"package": package, "data": written[0], "at": written[1]})


def _fetch_shards(client: Any, queue: str, files: list[str],
                  proc: subprocess.Popen[bytes], fetched: dict[str, Any]) -> None:
    """Write each shard's result where the leader's compiler polls for it, as they finish.

    The head node hands the shard futures over a distributed.Queue, in shard
    order: a future passed that way is known to the scheduler as wanted by
    this worker's client (one made from a bare key is not, and never resolves).
    """
    try:
        from distributed import Queue, as_completed
        q = Queue(queue, client=client)
        futures = {q.get(timeout=60): path for path in files}
        for future in as_completed(list(futures)):
            if proc.poll() is not None:
                return
            result = future.result()
            wrong = mismatch(result, ShardResult)
            if wrong:
                raise RuntimeError(f"shard: {Status.PROTOCOL}: {wrong}")
            if result.status is not Status.OK:
                raise RuntimeError(f"shard on {result.worker}: {result.status}: {result.reason}")
            path = futures[future]
            tmp = path + ".part"
            Path(tmp).write_bytes(result.result)
            os.replace(tmp, path)  # the compiler sees a whole file or none
            fetched["bytes"] += len(result.result)
            fetched["shards"][os.path.basename(path)] = {
                "worker": result.worker, "stats": result.stats,
                "bytes": len(result.result),
                "tool_s": round(result.tool_done - result.tool_start, 3)}
    except Exception as exc:  # a lost or failed shard: stop the leader, fall back
        fetched["error"] = f"{type(exc).__name__}: {exc}"
        if proc.poll() is None:
            proc.kill()
