"""Runs one compile on a worker: store, sandbox, the pinned tool, outputs back.

This is the code a Dask task executes. It is a plain function of a
protocol.CompileTask so that it can be tested without a cluster. A task carries the
blobs the head node believes this worker's store lacks; if the store lacks more (wiped,
another disk), the task answers Status.MISSING and the head resends: one extra round
trip in a rare case instead of one on every action. The fields are documented in
fgo/worker/protocol.py.
"""

from __future__ import annotations

import functools
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from fgo import toolchain

from fgo.worker import compileargs, faults
from fgo.worker.idle import IDLE
from fgo.worker.blobs import CorruptBlob, Store, read_export_data
from fgo.worker.outputs import output_sha256, read_outputs
from fgo.worker.protocol import (CompileResult, CompileTask, ExportReady, ShardResult, Status,
                                 refuse_task)
from fgo.paths import cache_dir
from fgo.split import shard_task  # one way only: the shard task imports nothing of ours

__all__ = ["BadTask", "execute", "output_sha256", "read_outputs", "store_info", "worker_store"]

WAIT_FOR_INFLIGHT_S = 10.0  # a blob sent with a concurrent task lands within ms


class BadTask(Exception):
    """A task that would write outside its sandbox or is otherwise malformed."""


@functools.cache
def worker_store() -> Store:
    root = os.environ.get("FGO_STORE")
    return Store(Path(root) if root else cache_dir() / "store")


def store_info(host_token: tuple[str, str] | None = None) -> dict[str, Any]:
    """What the head node asks each worker once per build. HOST_TOKEN: (path, text) of a
    file the head just wrote; a worker that reads that text there shares the head's files
    (the same host, or the same filesystem view) and may take inputs and deliver outputs
    by path."""
    store = worker_store()
    return {"store_id": f"{os.uname().nodename}:{store.root.resolve()}:{store.identity()}",
            "identity": toolchain.identity().__dict__,
            "hashes": store.inventory(),
            "shares_files": host_token is not None and _reads(*host_token)}


def _reads(path: str, text: str) -> bool:
    try:
        return Path(path).read_text() == text
    except OSError:
        return False


def _worker_address() -> str:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _check_path(path: str) -> None:
    if not os.path.isabs(path) or os.path.normpath(path) != path or "/../" in path + "/":
        raise BadTask(f"path {path!r} is not a clean absolute path")


def _place(store: Store, sha: str, dest: str, made: set[str]) -> None:
    """Link blob SHA to DEST; MADE: the directories made so far (a compile has ~100 inputs
    in a few directories, and makedirs stats every component of every path)."""
    parent = os.path.dirname(dest)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    try:
        os.link(store.path(sha), dest)
    except OSError:  # another filesystem: copy
        shutil.copyfile(store.path(sha), dest)


def _admit(task: CompileTask, worker: str) -> CompileResult | None:
    """Refuse a task this worker cannot run faithfully; store its blobs. None: go ahead."""
    mine, theirs = toolchain.identity(), toolchain.Identity(**task.identity)
    if mine != theirs:
        return CompileResult(Status.REFUSED, worker,
                             reason=f"toolchain mismatch: head has {theirs.describe()}, "
                                    f"worker has {mine.describe()}")
    store = worker_store()
    try:
        for sha, data in task.blobs.items():
            store.put(sha, faults.damage("transfer", data))
        for sha, (path, export_only) in task.blob_paths.items():
            if not store.has(sha):
                store.put(sha, faults.damage("transfer", _read_blob(path, export_only)))
    except CorruptBlob as exc:
        return CompileResult(Status.CORRUPT, worker, reason=str(exc))
    except OSError as exc:  # a full or read-only store
        return CompileResult(Status.STORE_ERROR, worker,
                             reason=f"{exc.strerror or exc} in {store.root}")
    deadline = time.monotonic() + WAIT_FOR_INFLIGHT_S
    pending = [s for s in task.wait_for if not store.has(s)]
    while pending and time.monotonic() < deadline:
        time.sleep(0.005)
        pending = [s for s in pending if not store.has(s)]
    missing = sorted({s for s in task.inputs.values() if not store.has(s)})
    if missing:
        return CompileResult(Status.MISSING, worker, missing=missing)
    return None


def _read_blob(path: str, export_only: bool) -> bytes:
    """A blob from the head's file (a worker sharing the head's files)."""
    return read_export_data(path) if export_only else Path(path).read_bytes()


def _deliver(outputs: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    """Write OUTPUTS beside where go build expects them: path -> (staged file, size). The
    head moves a staged file into place only if it takes this result: a result it gave up
    on (timed out, raced) must never overwrite what go build has since rewritten."""
    delivered = {}
    for path, data in outputs.items():
        staged = f"{path}.fgo-{uuid.uuid4().hex[:12]}"
        with open(staged, "wb") as f:
            f.write(data)
        delivered[path] = (staged, len(data))
    return delivered


def _materialize(task: CompileTask, call: compileargs.CompileCall, sandbox: str) -> list[str]:
    """Lay the inputs out under SANDBOX; the compile's arguments for running there."""
    store = worker_store()
    made: set[str] = set()
    for path, sha in task.inputs.items():
        _place(store, sha, sandbox + path, made)
    # configs name absolute paths: rewrite them to point into the sandbox
    if call.importcfg:
        text = store.path(task.inputs[call.importcfg]).read_text()
        _rewrite(sandbox + call.importcfg, compileargs.sandbox_importcfg(text, sandbox).encode())
    if call.embedcfg:
        data = store.path(task.inputs[call.embedcfg]).read_bytes()
        _rewrite(sandbox + call.embedcfg, compileargs.sandbox_embedcfg(data, sandbox))
    for out in call.outputs:
        os.makedirs(os.path.dirname(sandbox + out), exist_ok=True)
    os.makedirs(sandbox + call.cwd, exist_ok=True)
    return compileargs.sandbox_args(call, sandbox, task.head_goroot)


def execute(task: CompileTask, worker: str | None = None,
            on_export: Callable[[ExportReady], None] | None = None) -> CompileResult | ShardResult:
    """Run TASK: a compile, or with task.split one shard (a ShardResult) or the leader of
    a split compile. A message that is not a CompileTask of this protocol version is
    answered with Status.PROTOCOL (see fgo/worker/protocol.py for the fields). WORKER
    names this worker in the result (default: the Dask worker running this task).
    With task.early_export, ON_EXPORT is given the package's export data while the
    backend still runs (once, if the patched compiler wrote it)."""
    started = time.time()
    worker = worker or _worker_address()
    problem = refuse_task(task, worker) or _admit(task, worker)
    if problem:
        return problem
    call = compileargs.CompileCall(**task.call)
    for path in [*task.inputs, *call.outputs, call.cwd]:
        _check_path(path)
    sandbox_root = cache_dir() / "sandbox"
    sandbox_root.mkdir(parents=True, exist_ok=True)
    sandbox = tempfile.mkdtemp(dir=sandbox_root, prefix="t")
    try:
        args = _materialize(task, call, sandbox)
        env = {k: v for k, v in task.env.items() if k.startswith("GO")}
        env.update(GOROOT=str(toolchain.goroot()), PATH=os.environ.get("PATH", "/usr/bin:/bin"))
        tool = str(toolchain.tool_path("compile"))
        if task.split is not None:
            IDLE.real_started()
            try:
                return shard_task.run(task, task.split, call, args, env, sandbox, worker, started)
            finally:
                IDLE.real_ended()
        argv = [tool, *faults.compile_args(args)]
        early = sandbox + "/fgo-early-export.a"
        if task.early_export and on_export is not None:
            argv = _with_early_export(argv, early)
        tool_start = time.time()
        proc = _run_compile(argv, sandbox + call.cwd, env,
                            call.outputs[0] if task.speculative and call.outputs else None,
                            early if argv[0] != tool else None, on_export)
        tool_done = time.time()
        outputs = {}
        if proc.returncode == 0:
            outputs = read_outputs(call, sandbox)
        digest = output_sha256(call, outputs)
        delivered = _deliver(outputs) if task.deliver else {}
        return CompileResult(Status.OK, worker, exit=proc.returncode,
                             output=proc.stdout.replace(sandbox.encode(), b""),
                             outputs={} if task.deliver else outputs, delivered=delivered,
                             output_sha256=digest,
                             started=started, tool_start=tool_start, tool_done=tool_done,
                             returned=time.time())
    finally:
        _remove_later(sandbox)


SPECULATIVE_NICE = 10  # a speculative compile yields the CPU to the worker's real ones


def _with_early_export(argv: list[str], early: str) -> list[str]:
    """ARGV run by the patched compiler writing its early export data to EARLY; ARGV as it
    was while this worker has no patched compiler (it is then built in the background,
    once: a compile never waits for it)."""
    patched = _patched_compiler()
    if patched is None:
        return argv
    from fgo.split import compiler as compiler_patch
    from fgo.split import early_export
    return compiler_patch.with_flags(argv, early_export.flags(early), compiler=patched)


_patched: Path | None = None
_building = threading.Lock()


def _patched_compiler() -> Path | None:
    global _patched
    if _patched is not None:
        return _patched
    from fgo.split import compiler as compiler_patch
    try:
        _patched = compiler_patch.built_compiler()
    except Exception:  # noqa: BLE001  (no patch series here: no early export data)
        return None
    if _patched is not None:
        return _patched
    if _building.acquire(blocking=False):  # never released: one try per process
        threading.Thread(target=_build_quietly, name="fgo-build-patched-compiler",
                         daemon=True).start()
    return None


def _build_quietly() -> None:
    from fgo.split import compiler as compiler_patch
    try:
        compiler_patch.ensure_compiler()
    except Exception:  # noqa: BLE001  (then this worker compiles stock, without pipelining)
        pass


def _run_compile(argv: list[str], cwd: str, env: dict[str, str], speculative: str | None,
                 early: str | None, on_export: Callable[[ExportReady], None] | None
                 ) -> subprocess.CompletedProcess[bytes]:
    """Run the compile ARGV; while it runs, hand EARLY (once written) to ON_EXPORT. A
    SPECULATIVE one (the -o it writes) runs niced, in the worker's idle time only
    (fgo.worker.idle)."""
    if not speculative:
        IDLE.real_started()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                preexec_fn=(lambda: os.nice(SPECULATIVE_NICE)) if speculative
                                else None)
        if speculative:
            IDLE.spec_started(speculative, proc.pid)
        return _wait_compile(argv, proc, early, on_export)
    finally:
        if speculative:
            IDLE.spec_ended(speculative)
        else:
            IDLE.real_ended()


def _wait_compile(argv: list[str], proc: subprocess.Popen[bytes], early: str | None,
                  on_export: Callable[[ExportReady], None] | None
                  ) -> subprocess.CompletedProcess[bytes]:
    if early is None or on_export is None:
        out, _ = proc.communicate()
        return subprocess.CompletedProcess(argv, proc.returncode, out)
    # stdout is drained by a thread: a chatty compile must not block on a full pipe
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()),  # type: ignore[union-attr]
                              name="fgo-compile-output", daemon=True)
    reader.start()
    from fgo.split import early_export
    written = early_export.when_written(proc, early)
    if written is not None:
        on_export(ExportReady(*written))
    proc.wait()
    reader.join()
    return subprocess.CompletedProcess(argv, proc.returncode, b"".join(chunks))


_cleanup: queue.SimpleQueue[str] | None = None
_cleanup_lock = threading.Lock()


def _remove_later(sandbox: str) -> None:
    """Delete a finished sandbox off the task's critical path (one cleaner thread)."""
    global _cleanup
    with _cleanup_lock:
        if _cleanup is None:
            _cleanup = queue.SimpleQueue()
            threading.Thread(target=_cleaner, args=(_cleanup,), name="fgo-sandbox-cleaner",
                             daemon=True).start()
    _cleanup.put(sandbox)


def _cleaner(q: queue.SimpleQueue[str]) -> None:
    while True:
        shutil.rmtree(q.get(), ignore_errors=True)


def _rewrite(path: str, data: bytes) -> None:
    """Replace a placed (hard-linked) file without touching the store's copy."""
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)
