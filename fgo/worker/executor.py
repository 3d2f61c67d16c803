"""One compile task on a worker: admit it (toolchain, blobs into the store), lay out its
sandbox, run the pinned compiler (or a split role), answer with its outputs.

A plain function of a fgo.wire.CompileTask, so that it is tested without a cluster; the
worker's service (fgo.worker.service) decodes the task and encodes the answer. A task
carries the blobs the head believes this worker's store lacks; if the store lacks more
(wiped, another disk), the answer is Status.MISSING and the head resends: one extra round
trip in a rare case instead of one on every compile.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

from fgo import compilecall, toolchain
from fgo.cache import held
from fgo.blobs import CorruptBlob, Store, store_root
from fgo.compiler import flags as fgoflags
from fgo.goarchive import read_export_data
from fgo.wire import CompileResult, CompileTask, ExportReady, OutputChunk, ShardDone, ShardFetch, \
    ShardResult, Status
from fgo.worker import faults, goroot, runner, sandbox, shard

WAIT_FOR_INFLIGHT_S = 10.0  # a blob sent with a concurrent task lands within ms

# What a split's leader uses to get shard K's result from the worker that ran it.
Fetch = Callable[[str, ShardFetch], ShardResult]


@functools.cache
def worker_store() -> Store:
    return Store(store_root())


def execute(task: CompileTask, worker: str = "local",
            on_export: Callable[[ExportReady], None] | None = None,
            fetch: Fetch | None = None,
            on_chunk: Callable[[OutputChunk], None] | None = None) -> CompileResult | ShardDone:
    """Run TASK on this host (WORKER names it in the answer): a whole compile or a split's
    leader (a CompileResult), or one shard (a ShardDone; its result stays here until the
    leader fetches it). With task.early_export, ON_EXPORT is given the package's export
    data while the backend still runs; FETCH gets a leader its shards' results; ON_CHUNK
    is sent a whole compile's outputs above task.stream_above, a chunk at a time."""
    started = time.time()
    split = task.split
    problem, own = _admit(task)
    if problem is not None:
        status, reason, missing = problem
        if split is not None and not split.leader:  # its leader must not wait for it
            shard.RESULTS.put(split.split_id, split.k, ShardResult(status, worker, reason))
            return ShardDone(status, worker, reason=reason)
        return CompileResult(status, worker, reason=reason, missing=missing)
    call = task.call
    sandbox.check_paths([*task.inputs, *call.outputs, call.cwd])
    with sandbox.lease(call) as box:
        # in place: the head's files, where go build's compile reads them, the outputs
        # written beside go's (nothing laid out, read back or copied)
        staged = sandbox.staged_names(call.outputs) if task.in_place else None
        if staged is not None:
            args, cwd = compilecall.with_outputs(call.args, call.cwd, staged), call.cwd
        else:
            args = sandbox.materialize(worker_store(), task.inputs, call, box, task.head_goroot,
                                       own)
            cwd = box + call.cwd
        env = tool_env(task.env)
        # a worker's compilers, a split's included, run nicer than the worker (the head's
        # own runs take a local slot)
        nice = runner.compile_nice(os.environ.get("FGO_COMPILE_NICE")) if worker != "head" else 0
        if split is not None:
            return shard.run(task, split, args, env, box, worker, started,
                             on_export=on_export, fetch=fetch, nice=nice)
        return _compile(task, args, env, box, cwd, worker, started, on_export, on_chunk, nice,
                        staged)


def tool_env(env: dict[str, str]) -> dict[str, str]:
    """The compiler's environment on this host: go build's GO* settings, this toolchain."""
    out = {k: v for k, v in env.items() if k.startswith("GO")}
    out.update(GOROOT=str(toolchain.goroot()), PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    return out


def _compile(task: CompileTask, args: list[str], env: dict[str, str], box: str, cwd: str,
             worker: str, started: float, on_export: Callable[[ExportReady], None] | None,
             on_chunk: Callable[[OutputChunk], None] | None = None,
             nice: int = 0, staged: dict[str, str] | None = None) -> CompileResult:
    call = task.call
    tool = str(toolchain.tool_path("compile"))
    argv = [tool, *faults.compile_args(args, task.task_id)]
    early = box + "/fgo-early-export.a"
    patched = runner.patched_compiler() if task.early_export and on_export else None
    if patched is not None:
        argv = fgoflags.with_flags(argv, fgoflags.early_export(early), compiler=patched)
    if staged is None:  # (in place, the inputs are the head's own files: never removed)
        faults.lose_input(box, call.inputs, task.task_id)
    if faults.delay():  # the fault's slow host (a cancel ends the wait)
        runner.RUNNING.wait_cancelled(task.task_id, faults.delay())
    tool_start = time.time()
    run = runner.run(task.task_id, argv, cwd, env, nice=nice,
                     speculative=call.outputs[0] if task.speculative and call.outputs else None,
                     early=early if patched is not None else None,
                     on_export=(lambda data, at: on_export(ExportReady(data, at)))  # type: ignore[misc]
                     if patched is not None else None)
    tool_done = time.time()
    if run.cancelled:
        if staged is not None:  # what the killed compiler left beside go's outputs
            sandbox.staged_outputs(call, staged, ok=False)
        return CompileResult(Status.CANCELLED, worker, reason=runner.RUNNING.reason(task.task_id))
    streamed: dict[str, int] = {}
    outputs: dict[str, bytes] = {}
    if staged is not None:  # in place, for the embedded cluster's head: no cache tier to
        # publish to, nothing held
        delivered, digest = sandbox.staged_outputs(call, staged, run.returncode == 0)
    else:
        digest = None
        if run.returncode == 0 and on_chunk is not None and task.stream_above and \
                not task.deliver:
            streamed, digest = sandbox.stream_outputs(call, box, task.stream_above, on_chunk)
        outputs = sandbox.read_outputs(call, box, skip=streamed) if run.returncode == 0 else {}
        digest = digest or sandbox.output_sha256(call, outputs)
        if digest and call.outputs and compilecall.buildid_of(call) and worker != "head":
            # its cache entry is published from here (not a head's check: nothing publishes
            # from it, its archives stay on disk)
            held.keep(sandbox.output_paths(box, call)[call.outputs[0]], digest)
        delivered = sandbox.deliver(outputs) if task.deliver else {}
    return CompileResult(Status.OK, worker, exit=run.returncode,
                         output=run.output.replace(box.encode(), b""),
                         outputs={} if task.deliver else outputs, delivered=delivered,
                         streamed=streamed, output_sha256=digest, started=started,
                         tool_start=tool_start, tool_done=tool_done, returned=time.time())


def receive(task: CompileTask) -> tuple[Status, str] | None:
    """Store the blobs TASK brings (bytes, or paths of the head's files this host reads),
    each once; the problem (status, reason) if the store refused one, else None. The
    worker's service calls it as the task arrives, before it queues for a thread: a task
    told to wait for blobs riding with this one (`wait_for`) finds them whatever order the
    two run in (a task queued behind the one waiting for its blobs held them back until the
    wait's deadline: 10 s stalls in experiment 8's builds)."""
    store = worker_store()
    try:
        for sha, data in task.blobs.items():
            if not store.has(sha):
                store.put(sha, faults.damage("transfer", data))
        for sha, (path, export_only) in task.blob_paths.items():
            if store.has(sha):
                continue
            try:  # a head's file this host does not see after all, or sees with other
                # contents (a partly shared filesystem), is missing, not an error: the head
                # then resends it as bytes
                data = read_export_data(path) if export_only else Path(path).read_bytes()
                store.put(sha, faults.damage("transfer", data))
            except (FileNotFoundError, NotADirectoryError, CorruptBlob):
                continue
    except CorruptBlob as exc:
        return Status.CORRUPT, str(exc)
    except OSError as exc:  # a full or read-only store, or a head's file not shared after all
        return Status.STORE_ERROR, f"{exc.strerror or exc} in {store.root}"
    return None


def _admit(task: CompileTask) -> tuple[tuple[Status, str, list[str]] | None, dict[str, str]]:
    """Why this worker cannot run TASK faithfully (status, reason, missing blobs), having
    stored the blobs it brings (if its arrival did not already), or None: go ahead; and
    the inputs its own GOROOT holds (path -> the file to link: fgo.worker.goroot)."""
    mine = toolchain.identity()
    if mine != task.identity:
        return (Status.REFUSED, f"toolchain mismatch: head has {task.identity.describe()}, "
                                f"worker has {mine.describe()}", []), {}
    if task.in_place:  # it brings nothing and needs nothing of the store
        return None, {}
    refused = receive(task)
    if refused is not None:
        return (*refused, []), {}
    store = worker_store()
    own = goroot.sources(task.inputs, task.from_goroot, task.head_goroot, store,
                         str(sandbox.sandboxes()))
    deadline = time.monotonic() + WAIT_FOR_INFLIGHT_S
    pending = [s for s in task.wait_for if not store.has(s)]
    while pending and time.monotonic() < deadline:
        time.sleep(0.005)
        pending = [s for s in pending if not store.has(s)]
    missing = sorted({s for p, s in task.inputs.items() if p not in own and not store.has(s)})
    if missing:
        return (Status.MISSING, "", missing), own
    return None, own
