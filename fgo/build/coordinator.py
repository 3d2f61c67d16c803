"""The fgo process's side of the shim: decide, ship, run remotely, answer.

One coordinator serves one `fgo build`. The shim connects over a unix
socket once per compile; a thread per connection decides where the compile
runs, sends the inputs the chosen worker's store lacks inside the task itself
(no extra round trip), waits for the result, writes the outputs where go
build expects them and answers with the exit status and output. Whatever
goes wrong remotely, the answer is "run it locally": the build is never lost.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socketserver
import statistics
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fgo import toolchain

from fgo.worker import compileargs

from fgo.worker import executor
from fgo.worker.blobs import Blob, BlobIndex
from fgo.build.placement import Placement
from fgo.report.record import ActionRecord, Recorder


STRAGGLER_MIN_S = 10.0   # never race a compile that has run for less than this
STRAGGLER_FACTOR = 5.0   # ... or for less than this many times its expected duration


class RemoteFailure(Exception):
    """The remote run cannot be trusted or did not finish; fall back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Coordinator:
    def __init__(self, client: Any, recorder: Recorder, socket_path: str,
                 task_timeout: float = 600.0) -> None:
        self.client = client                   # distributed.Client (thread-safe)
        self.recorder = recorder
        self.socket_path = socket_path
        self.task_timeout = task_timeout       # a remote compile slower than this runs locally
        self.blobs = BlobIndex()
        self.placement = Placement()
        self.lock = threading.Lock()           # guards placement
        self.identity = toolchain.identity()
        self.refused: set[str] = set()         # workers whose toolchain differs
        self.running: dict[int, ActionRecord] = {}  # compiles in flight (for progress)
        self.splitter: Any = None              # split.Splitter with --split-large
        self._backups = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fgo-backup")
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._live: set[str] = set()
        self._live_at = 0.0
        self._live_lock = threading.Lock()

    # --- cluster view ---

    def learn_workers(self) -> list[str]:
        """Ask every worker for its store inventory and toolchain (once per build).

        Returns one warning per worker refused for a different toolchain."""
        infos = self.client.run(executor.store_info, on_error="return")
        threads = self.client.nthreads()
        warnings = []
        with self.lock:
            for addr, info in infos.items():
                if isinstance(info, BaseException):
                    warnings.append(f"worker {addr} cannot be used: {type(info).__name__}: {info}")
                    continue
                theirs = toolchain.Identity(**info["identity"])
                if theirs != self.identity:
                    self.refused.add(addr)
                    warnings.append(f"worker {addr} refused: toolchain mismatch: head has "
                                    f"{self.identity.describe()}, worker has {theirs.describe()}")
                    continue
                self.placement.add_worker(addr, threads.get(addr, 1), info["store_id"],
                                          set(info["hashes"]))
        return warnings

    def live_workers(self) -> set[str]:
        """The scheduler's current workers, asked at most once a second for all waiters."""
        with self._live_lock:
            if time.monotonic() - self._live_at > 1.0:
                try:
                    self._live = set(self.client.run_on_scheduler(_worker_addresses))
                except Exception:  # the scheduler itself is gone: nobody is alive
                    self._live = set()
                self._live_at = time.monotonic()
            return self._live

    # --- socket server ---

    def start(self) -> None:
        coordinator = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.read())
                reply = coordinator.handle(request)
                self.wfile.write(json.dumps(reply).encode())

        self._server = socketserver.ThreadingUnixStreamServer(self.socket_path, Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fgo-shim-server",
                         daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # --- one compile ---

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        t0 = time.time()
        argv, cwd, env = request["argv"], request["cwd"], request["env"]
        package = env.get("TOOLEXEC_IMPORTPATH", "?")
        rec = ActionRecord(package=package, tool=os.path.basename(argv[0]), mode="local", start=t0)
        with self.lock:
            self.running[id(rec)] = rec
        inputs: dict[str, Blob] = {}
        try:
            call = compileargs.parse(argv[1:], cwd)
            inputs = self._input_blobs(call)
            rec.source_bytes = sum(b.size for p, b in inputs.items() if p.endswith(".go"))
            reply = None
            if self.splitter is not None:
                reply = self.splitter.try_split(call, env, inputs, rec, t0)
            if reply is None:
                reply = self._run_remote(call, env, inputs, rec, t0)
        except compileargs.NotRemoteSafe as exc:
            rec.fallback = f"not remote-safe: {exc}"
            reply = {"local": True}
        except RemoteFailure as exc:
            rec.fallback = exc.reason
            reply = {"local": True}
        except OSError as exc:
            rec.fallback = f"input unreadable: {exc.strerror}"
            reply = {"local": True}
        except Exception as exc:  # a bug of ours must cost a local compile, not the build
            rec.fallback = f"internal error: {type(exc).__name__}: {exc}"
            reply = {"local": True}
        with self.lock:
            self.running.pop(id(rec), None)
        self.recorder.add(rec, {b.sha: b.size for b in inputs.values()})
        return reply

    def _input_blobs(self, call: compileargs.CompileCall) -> dict[str, Blob]:
        blobs = {p: self.blobs.blob(p) for p in call.inputs}
        for archive in call.archives:
            blobs[archive] = self.blobs.blob(archive, export_only=True)
        return blobs

    def _prepare(self, address: str, call: compileargs.CompileCall, env: dict[str, str],
                 inputs: dict[str, Blob], split: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], list[str]]:
        """A task for ADDRESS carrying the blobs its store lacks; and the blobs it carries."""
        needs = {b.sha: b.size for b in inputs.values()}
        by_sha = {b.sha: b for b in inputs.values()}
        with self.lock:
            sent, wait_for = self.placement.transfer(address, needs)
        task = {
            "identity": asdict(self.identity),
            "call": asdict(call),
            "inputs": {p: b.sha for p, b in inputs.items()},
            "blobs": {sha: by_sha[sha].read() for sha in sent},
            "wait_for": wait_for,
            "env": env,
            "head_goroot": env.get("GOROOT") or str(toolchain.goroot()),
            "split": split,
        }
        return task, sent

    def _run_remote(self, call: compileargs.CompileCall, env: dict[str, str],
                    inputs: dict[str, Blob], rec: ActionRecord, t0: float) -> dict[str, Any]:
        needs = {b.sha: b.size for b in inputs.values()}
        with self.lock:
            address = self.placement.choose(needs)
        if address is None:
            raise RemoteFailure("no usable worker")
        sent: list[str] = []
        confirmed: list[str] = []
        try:
            task, sent = self._prepare(address, call, env, inputs)
            result = self.run_task(task, address, inputs, rec, sent)
            confirmed = list(needs)
            rec.mode = "local" if result["worker"] == "local" else "remote"
            rec.worker = result["worker"]
            return self.reply(call, result, rec, t0)
        finally:
            with self.lock:
                self.placement.finished(address, sent, confirmed)

    def run_task(self, task: dict[str, Any], address: str, inputs: dict[str, Blob],
                 rec: ActionRecord, sent: list[str], watch: tuple[str, ...] = ()) -> dict[str, Any]:
        """Run TASK on ADDRESS; resend once what its store turns out to lack (wiped, or a
        blob still riding with a queued task). Returns an "ok" result or raises RemoteFailure."""
        rec.bytes_in += sum(len(d) for d in task["blobs"].values())
        backup = None if task.get("split") else (lambda: self._local_task(task, inputs))
        result = self._submit(task, address, watch, backup, self._straggler_deadline(inputs))
        if result.get("worker") == "local":
            rec.fallback = "straggler: the local run finished first"
        if result["status"] == "missing":
            by_sha = {b.sha: b for b in inputs.values()}
            with self.lock:
                self.placement.lacks(address, result["missing"])
            task = {**task, "blobs": {sha: by_sha[sha].read() for sha in result["missing"]},
                    "wait_for": []}
            sent += result["missing"]
            rec.bytes_in += sum(len(d) for d in task["blobs"].values())
            result = self._submit(task, address, watch)
        self.check_result(address, result)
        return result

    def check_result(self, address: str, result: dict[str, Any]) -> None:
        """Raise RemoteFailure unless RESULT is usable; stop using a refusing worker."""
        if result["status"] == "refused":
            self.refused.add(address)
            with self.lock:
                self.placement.remove_worker(address)
        if result["status"] != "ok":
            raise RemoteFailure(f"{result['status']}: {result.get('reason', '')}".rstrip(": "))

    def reply(self, call: compileargs.CompileCall, result: dict[str, Any], rec: ActionRecord,
              t0: float) -> dict[str, Any]:
        """Write RESULT's outputs where go build expects them; the shim's answer."""
        rec.bytes_out = self._write_outputs(call, result, rec)
        now = time.time()
        rec.duration_s, rec.end = round(now - t0, 4), now
        rec.dispatch_s = round((result["tool_start"] - t0) + (now - result["tool_done"]), 4)
        return {"local": False, "exit": result["exit"], "output": _b64(result["output"])}

    def submit_async(self, task: dict[str, Any], address: str, key: str) -> Any:
        return self.client.submit(executor.execute, task, workers=[address],
                                  allow_other_workers=False, pure=False, key=key)

    def _straggler_deadline(self, inputs: dict[str, Blob]) -> float:
        """Seconds after which a remote compile also starts locally: 5x its expected time
        (source bytes at the median rate of this build's remote compiles), at least 10 s."""
        source = sum(b.size for p, b in inputs.items() if p.endswith(".go")) or 1
        with self.recorder.lock:
            rates = [a.duration_s / a.source_bytes for a in self.recorder.actions[-200:]
                     if a.mode == "remote" and a.duration_s and a.source_bytes]
        rate = statistics.median(rates) if len(rates) >= 5 else 1e-5  # ~1 s per 100 kB
        return max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * rate * source)

    def _local_task(self, task: dict[str, Any], inputs: dict[str, Blob]) -> dict[str, Any]:
        """TASK run by this process, in a sandbox of its own store (first result wins)."""
        store = executor.worker_store()
        blobs = {b.sha: b.read() for b in inputs.values() if not store.has(b.sha)}
        return executor.execute({**task, "blobs": blobs, "wait_for": []})

    def _submit(self, task: dict[str, Any], address: str, watch: tuple[str, ...] = (),
                backup: Any = None, straggle_after: float = float("inf")) -> dict[str, Any]:
        """Run TASK on ADDRESS and wait; RemoteFailure if it or a WATCHed worker is lost.

        After STRAGGLE_AFTER seconds BACKUP (a local run of the same task) starts too,
        and whichever finishes first with a usable result is taken."""
        future = self.submit_async(task, address, f"compile-{uuid.uuid4().hex[:12]}")
        started = time.monotonic()
        deadline = started + self.task_timeout
        local: concurrent.futures.Future[dict[str, Any]] | None = None
        try:
            while True:
                try:
                    return future.result(timeout=0.5)
                except TimeoutError:
                    if local is None and backup and time.monotonic() - started > straggle_after:
                        local = self._backups.submit(backup)
                    if local is not None and local.done():
                        result = local.result()
                        if result["status"] == "ok":
                            return result
                        local = None  # the local try failed too: keep waiting remotely
                    live = self.live_workers()
                    if address not in live or not live.issuperset(watch):
                        raise RemoteFailure("worker lost") from None
                    if time.monotonic() > deadline:
                        raise RemoteFailure("remote timeout") from None
                except RemoteFailure:
                    raise
                except Exception as exc:  # the task raised, or the worker died under it
                    raise RemoteFailure(f"remote error: {type(exc).__name__}: {exc}") from None
        finally:
            if not future.done():
                future.cancel()

    def _write_outputs(self, call: compileargs.CompileCall, result: dict[str, Any],
                       rec: ActionRecord) -> int:
        total = 0
        for path, data in result["outputs"].items():
            if path not in call.outputs:
                raise RemoteFailure(f"unexpected output {path}")
            tmp = f"{path}.fgo-{uuid.uuid4().hex[:8]}"
            Path(tmp).write_bytes(data)
            os.replace(tmp, path)
            total += len(data)
        rec.output_sha256 = result.get("output_sha256")  # hashed by the worker, off our CPU
        return total


def _worker_addresses(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.workers)


def _b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode()

