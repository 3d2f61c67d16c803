"""The tasks the head sends: a compile's call with its inputs by hash, and the blobs the
chosen worker's store lacks riding along (as bytes, or as paths for a worker that shares
the head's files), but for the standard library's sources, which a worker takes from its
own toolchain (fgo.worker.goroot). Also the head's own recompile of a task, which
verification runs.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import replace

from fgo import toolchain, wire
from fgo.blobs import Blob
from fgo.compilecall import CompileCall
from fgo.head.action import LocalJob, new_task_id
from fgo.head.policy import RemoteFailure
from fgo.head.pool import WorkerPool
from fgo.wire import Cancel, CompileResult, CompileTask, Promote, SplitRole

CrossJob = Callable[[str], Callable[[], CompileResult]]


class Tasks:
    """Builds the tasks of one build for its POOL's workers."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.checking: list[tuple[str, str]] = []  # cross-checks sent: (worker, their -o)

    def whole(self, call: CompileCall, env: dict[str, str], inputs: dict[str, Blob],
              task_id: str | None = None) -> CompileTask:
        """CALL as a task carrying no blobs."""
        return CompileTask(task_id=task_id or new_task_id(), identity=self.pool.identity,
                           call=call, inputs={p: b.sha for p, b in inputs.items()}, blobs={},
                           wait_for=[], env=env,
                           head_goroot=env.get("GOROOT") or str(toolchain.goroot()))

    def for_worker(self, address: str, call: CompileCall, env: dict[str, str],
                   inputs: dict[str, Blob], split: SplitRole | None = None,
                   task_id: str | None = None, now: bool = True) -> tuple[CompileTask, list[str]]:
        """A task for ADDRESS carrying the blobs its store lacks; and the blobs it carries.
        NOW: it runs while go build waits for it, its inputs as they are now: a whole
        compile for a worker of the embedded cluster then reads the head's files in place
        (a speculation or a cross-check runs later, when they may be gone)."""
        if now and split is None and self.pool.in_place(address):
            return replace(self.whole(call, env, inputs, task_id), in_place=True,
                           deliver=True), []
        whole = self.whole(call, env, inputs, task_id)
        own = goroot_sources(inputs, whole.head_goroot) if self.pool.takes_goroot(address) \
            else set()
        needs = {b.sha: b.size for b in inputs.values() if b.sha not in own}
        by_sha = {b.sha: b for b in inputs.values()}
        sent, wait_for = self.pool.transfer(address, needs, own)
        near = self.pool.shares(address)
        task = replace(
            whole,
            blobs={} if near else {sha: by_sha[sha].read() for sha in sent},
            blob_paths={sha: (by_sha[sha].path, by_sha[sha].export_only) for sha in sent}
            if near else {},
            deliver=near and split is None,
            wait_for=wait_for,
            split=split,
            from_goroot=sorted(own),
        )
        return task, sent

    @staticmethod
    def with_bytes(task: CompileTask, inputs: dict[str, Blob], shas: list[str]) -> CompileTask:
        """TASK resending SHAS as bytes (a store that lacked them, or could not read them
        by path)."""
        by_sha = {b.sha: b for b in inputs.values()}
        resent = set(shas)
        return replace(task, blobs={sha: by_sha[sha].read() for sha in shas}, blob_paths={},
                       wait_for=[], in_place=False,
                       from_goroot=[s for s in task.from_goroot if s not in resent])

    @staticmethod
    def bytes_sent(task: CompileTask, inputs: dict[str, Blob]) -> int:
        """The bytes TASK brings to its worker's store, as bytes or as paths to read."""
        sizes = {b.sha: b.size for b in inputs.values()}
        return sum(len(d) for d in task.blobs.values()) + sum(sizes[s] for s in task.blob_paths)

    @staticmethod
    def bytes_from_goroot(task: CompileTask, inputs: dict[str, Blob]) -> int:
        """The bytes of TASK's inputs its worker takes from its own GOROOT (not sent)."""
        sizes = {b.sha: b.size for b in inputs.values()}
        return sum(sizes[s] for s in task.from_goroot)

    def cross_job(self, call: CompileCall, env: dict[str, str], inputs: dict[str, Blob],
                  timeout: float) -> CrossJob:
        """How another worker than the producer compiles CALL again, to cross-check it:
        calling the result with the producer's address picks the worker and snapshots the
        inputs as bytes at once (go build may remove its work directory); calling what that
        returns runs it there, in that worker's idle time, and waits for its answer at most
        TIMEOUT seconds (policy.cross_check_deadline; then RemoteFailure: the head checks)."""
        pool = self.pool

        def pick(avoid: str) -> Callable[[], CompileResult]:
            needs = {b.sha: b.size for b in inputs.values()}
            address = pool.choose_check(needs, avoid)
            if address is None:
                raise RemoteFailure("no other worker to cross-check on")
            task, sent = self.for_worker(address, call, env, inputs, now=False)
            task = replace(Tasks.with_bytes(task, inputs, sent), deliver=False,
                           early_export=False, speculative=True)
            self.checking.append((address, call.outputs[0] if call.outputs else ""))

            def run() -> CompileResult:
                ok = False
                future = pool.submit(address, wire.OP_COMPILE, task)
                try:
                    try:
                        data = future.result(timeout)
                    except concurrent.futures.TimeoutError:  # a stopped worker: the head checks
                        future.cancel()
                        pool.tell(address, wire.OP_CANCEL, Cancel(task.task_id))
                        raise RemoteFailure(f"cross-check on {address}: no answer within "
                                            f"{timeout:g}s") from None
                    result = wire.decode(data, CompileResult)
                    ok = result.ok
                    return result
                finally:
                    pool.finished(address, sent, list(needs) if ok else [], speculative=True)
            return run
        return pick

    def promote_checks(self) -> None:
        """go build waits for the checks now (the link): no longer below real compiles."""
        for address, output in list(self.checking):
            self.pool.tell(address, wire.OP_PROMOTE, Promote(output))


def head_job(task: CompileTask, inputs: dict[str, Blob]) -> LocalJob:
    """TASK (whole, never split) to compile on the head from its own store: calling the
    result reads the inputs that store lacks, at once (go build may remove its work
    directory before the compile runs); calling what that returns compiles."""
    def snapshot() -> Callable[[], CompileResult]:
        from fgo.worker import executor
        store = executor.worker_store()
        own = set(task.from_goroot)  # GOROOT's own files: never removed under a build
        blobs = {b.sha: b.read() for b in inputs.values()
                 if b.sha not in own and not store.has(b.sha)}
        whole = replace(task, blobs=blobs, blob_paths={}, deliver=False, wait_for=[],
                        split=None, early_export=False, speculative=False, in_place=False)

        def run() -> CompileResult:
            result = executor.execute(whole, "head")
            assert isinstance(result, CompileResult)
            return result
        return run
    return snapshot


def goroot_sources(inputs: dict[str, Blob], goroot: str) -> set[str]:
    """The sha256s of INPUTS under GOROOT's src/ (the standard library's sources and
    files; not export data): a worker of the same toolchain holds them as they are, unless
    its GOROOT was edited (it then answers them missing)."""
    prefix = goroot.rstrip("/") + "/src/"
    return {b.sha for path, b in inputs.items() if path.startswith(prefix) and not b.export_only}
