"""The fgo process's side of the shim: decide, ship, run remotely, answer.

One coordinator serves one `fgo build`. The shim connects over a unix
socket once per compile; a thread per connection decides where the compile
runs, sends the inputs the chosen worker's store lacks inside the task itself
(no extra round trip), waits for the result, writes the outputs where go
build expects them and answers with the exit status and output. Whatever
goes wrong remotely, the answer is "run it locally": the build is never lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Protocol

from fgo import toolchain

from fgo.worker import compileargs

from fgo.worker import executor
from fgo.worker.blobs import Blob, BlobIndex
from fgo.worker.protocol import CompileResult, CompileTask, SplitRole, Status, mismatch
from fgo.build import policy
from fgo.build.deadline import (HANDSHAKE_S, LIVENESS_S, SCHEDULER_S, Late, per_worker,
                                within)
from fgo.build.placement import Placement
from fgo.build.verification import Verifier
from fgo.build.policy import RemoteFailure
from fgo.report.record import ActionRecord, Recorder

__all__ = ["Coordinator", "RemoteFailure", "ShimServer", "SplitterLike"]

LATE_LIVENESS = 3  # liveness answers missed in a row before the scheduler counts as gone


class SplitterLike(Protocol):
    """What the coordinator asks of `--split-large` (fgo.split.dispatch.Splitter)."""

    def try_split(self, call: compileargs.CompileCall, env: dict[str, str],
                  inputs: dict[str, Blob], rec: ActionRecord, t0: float
                  ) -> dict[str, Any] | None:
        """The shim's reply for a split compile, or None to compile normally."""


class ShimServer:
    """The unix socket the shim connects to, once per compile: a thread per connection
    reads one JSON request, asks HANDLE for the JSON reply and writes it."""

    def __init__(self, socket_path: str, handle: Callable[[dict[str, Any]], dict[str, Any]]
                 ) -> None:
        self.socket_path = socket_path
        self._handle = handle
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self) -> None:
        handle = self._handle

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.read())
                reply = handle(request)
                self.wfile.write(json.dumps(reply).encode())

        self._server = socketserver.ThreadingUnixStreamServer(self.socket_path, Handler)
        self._server.daemon_threads = True
        # a short poll: stop() waits for the loop to notice (0.5 s by default, at the end
        # of every build)
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         name="fgo-shim-server", daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


class Coordinator:
    """Decides where each compile runs, ships it, waits and writes its outputs.

    The split (fgo.split.dispatch) uses the public methods below (`prepare`, `run_task`,
    `run_remote`, `reply`, `submit_async`, `choose_distinct`, `finished`, `free_hosts`,
    `open_queue`, `cancel`) and is attached with `set_splitter` (or the constructor)."""

    def __init__(self, cluster: Any, recorder: Recorder, socket_path: str,
                 task_timeout: float = 600.0, splitter: SplitterLike | None = None,
                 verifier: Verifier | None = None) -> None:
        self.cluster = cluster                 # cluster.Cluster, or an EmbeddedCluster
        self.learned = False                   # learn_workers has run
        self._learn_lock = threading.Lock()
        self._starter: threading.Thread | None = None  # starts an embedded cluster
        self.stopped = False                   # go build has ended
        self.recorder = recorder
        self.task_timeout = task_timeout       # a remote compile slower than this runs locally
        self.blobs = BlobIndex()
        self.placement = Placement()
        self.lock = threading.Lock()           # guards placement and running
        self.identity = toolchain.identity()
        self.refused: set[str] = set()         # workers whose toolchain differs
        self.running: dict[int, ActionRecord] = {}  # compiles in flight (for progress)
        self.splitter: SplitterLike | None = splitter  # with --split-large
        self.verifier = verifier               # checks remote/split outputs against local ones
        if verifier is not None:
            verifier.on_exclude = self.exclude
        self.server = ShimServer(socket_path, self.handle)
        self._backups = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="fgo-backup")
        self._live: set[str] = set()
        self._live_at = 0.0
        self._live_lock = threading.Lock()
        self._late = 0                         # liveness questions in a row not answered
        self.unresponsive: set[str] = set()    # workers left out: no answer to the handshake
        # Workers that read this file's text share the head's files (fgo.worker.executor
        # store_info): their tasks carry paths, not bytes, and they deliver outputs.
        self.host_token = (os.path.join(os.path.dirname(socket_path), "host-token"),
                           uuid.uuid4().hex)
        self.shares_files: set[str] = set()
        self.speculator: Any = None            # with pipelining (fgo.build.speculation)
        self._export_topic: str | None = None  # split leaders' early export data

    def exclude(self, address: str) -> None:
        """Use ADDRESS no more in this build (its output failed verification)."""
        self.refused.add(address)
        with self.lock:
            self.placement.remove_worker(address)

    def set_speculator(self, speculator: Any) -> None:
        """Pipeline with SPECULATOR (a fgo.build.speculation.Speculator of this coordinator)."""
        self.speculator = speculator

    def set_splitter(self, splitter: SplitterLike | None) -> None:
        """Split large compiles with SPLITTER (built with this coordinator) from now on."""
        self.splitter = splitter

    # --- cluster view ---

    @property
    def client(self) -> Any:
        """The distributed.Client (thread-safe); an embedded cluster starts on first use."""
        return self.cluster.client

    def ensure_workers(self) -> None:
        """Learn the workers once (warnings printed). An embedded cluster not started yet
        starts in the background, and until its workers are up compiles run locally
        (RemoteFailure CLUSTER_STARTING): go build never waits for worker processes."""
        with self._learn_lock:
            if self.learned:
                return
            if getattr(self.cluster, "started", True):
                self._learn()
                return
            if self._starter is None:
                self._starter = threading.Thread(target=self._start_and_learn,
                                                 name="fgo-cluster-start", daemon=True)
                self._starter.start()
        raise RemoteFailure(policy.CLUSTER_STARTING)

    def _start_and_learn(self) -> None:
        try:
            self.client  # noqa: B018  (starts the embedded cluster)
        except Exception as exc:  # no workers, then: every compile runs locally
            if not self.stopped:  # a build that ended first (e.g. a compile error) says nothing
                print(f"fgo: the embedded cluster did not start: {exc}", file=sys.stderr)
            return
        with self._learn_lock:
            if not self.stopped:
                self._learn()

    def _learn(self) -> None:
        """learn_workers, once; a cluster that cannot answer leaves no workers."""
        self.learned = True
        try:
            warnings = self.learn_workers()
        except Exception as exc:
            warnings = [f"the workers cannot be asked: {exc}"]
        for warning in warnings:
            print(f"fgo: {warning}; its compiles run elsewhere", file=sys.stderr)

    def learn_workers(self) -> list[str]:
        """Ask every worker for its store inventory and toolchain (once per build).

        Returns one warning per worker refused for a different toolchain."""
        Path(self.host_token[0]).write_text(self.host_token[1])
        threads = within(SCHEDULER_S, self.client.nthreads, what="the scheduler's worker list")
        client, token = self.client, self.host_token
        infos, late = per_worker(
            HANDSHAKE_S, lambda w: client.run(executor.store_info, token, workers=[w])[w],
            sorted(threads))
        warnings = [f"worker {addr} did not answer within {HANDSHAKE_S:g}s: left out"
                    for addr in late]
        with self.lock:
            self.unresponsive.update(late)
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
                if info.get("shares_files"):
                    self.shares_files.add(addr)
            hosts = len({w.store_id for w in self.placement.workers.values()})
            threads = self.placement.total_threads()
        if self.speculator is not None:
            self.speculator.workers_known(hosts, threads)
        return warnings

    def live_workers(self) -> set[str]:
        """The scheduler's current workers, asked at most once a second for all waiters. A
        scheduler that does not answer within LIVENESS_S keeps the last answer, until it
        has missed LATE_LIVENESS answers in a row: then nobody is alive."""
        with self._live_lock:
            if time.monotonic() - self._live_at > 1.0:
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
            return self._live

    # --- placement, for the split ---

    def free_hosts(self) -> int:
        with self.lock:
            return self.placement.free_hosts()

    def choose_distinct(self, needs: dict[str, int], k: int) -> list[str]:
        """Up to K different workers for a compile needing NEEDS (sha -> size), now busy."""
        with self.lock:
            return self.placement.choose_distinct(needs, k)

    def finished(self, address: str, sent: list[str], confirmed: list[str],
                 speculative: bool = False) -> None:
        """ADDRESS is free again; of the blobs SENT to it, CONFIRMED are in its store."""
        with self.lock:
            self.placement.finished(address, sent, confirmed, speculative)
        if self.speculator is not None:
            self.speculator.poke()

    def free_threads(self) -> int:
        with self.lock:
            return self.placement.free_threads()

    def choose_speculative(self, inputs: dict[str, Blob]) -> str | None:
        """A free worker for a speculative compile with INPUTS, now taken (None: none free)."""
        with self.lock:
            return self.placement.choose_speculative({b.sha: b.size for b in inputs.values()})

    # --- the socket server ---

    @property
    def socket_path(self) -> str:
        return self.server.socket_path

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.stopped = True
        self.server.stop()
        if self.speculator is not None:
            self.speculator.close()

    # --- one compile ---

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        t0 = time.time()
        argv, cwd, env = request["argv"], request["cwd"], request["env"]
        if os.path.basename(argv[0]).removesuffix(".exe") == "link":
            return self.link_gate()
        package = env.get("TOOLEXEC_IMPORTPATH", "?")
        rec = ActionRecord(package=package, tool=os.path.basename(argv[0]), mode="local", start=t0)
        with self.lock:
            self.running[id(rec)] = rec
        if self.speculator is not None:
            self.speculator.request(package, env)
        inputs: dict[str, Blob] = {}
        try:
            call = compileargs.parse(argv[1:], cwd)
            self.ensure_workers()
            inputs = self.input_blobs(call)
            rec.source_bytes = policy.source_bytes((p, b.size) for p, b in inputs.items())
            reply = None
            if self.speculator is not None:
                reply = self.speculator.take(call, argv, env, inputs, rec, t0)
            if reply is None and self.splitter is not None:
                reply = self.splitter.try_split(call, env, inputs, rec, t0)
            if reply is None:
                reply = self.run_remote(call, env, inputs, rec, t0)
        except Exception as exc:  # whatever it was, it costs a local compile, not the build
            rec.fallback = policy.fallback_reason(exc)
            reply = {"local": True}
        with self.lock:
            self.running.pop(id(rec), None)
        self.recorder.add(rec, {b.sha: b.size for b in inputs.values()})
        return reply

    def link_gate(self) -> dict[str, Any]:
        """The shim asks before every link: it may run once every pending verification is
        done, and never when one found a mismatch (the wrong archive is never linked)."""
        if self.verifier is None:
            return {"local": True}
        mismatches = self.verifier.wait()
        if not mismatches:
            return {"local": True}
        text = "".join(m.line() + "\n" for m in mismatches)
        return {"local": False, "exit": 1, "output": _b64(text.encode())}

    def input_blobs(self, call: compileargs.CompileCall) -> dict[str, Blob]:
        blobs = {p: self.blobs.blob(p) for p in call.inputs}
        for archive in call.archives:
            blobs[archive] = self.blobs.blob(archive, export_only=True)
        return blobs

    def prepare(self, address: str, call: compileargs.CompileCall, env: dict[str, str],
                inputs: dict[str, Blob], split: SplitRole | None = None
                ) -> tuple[CompileTask, list[str]]:
        """A task for ADDRESS carrying the blobs its store lacks; and the blobs it carries."""
        needs = {b.sha: b.size for b in inputs.values()}
        by_sha = {b.sha: b for b in inputs.values()}
        with self.lock:
            sent, wait_for = self.placement.transfer(address, needs)
        near = address in self.shares_files
        task = self.whole_task(call, env, inputs)
        task = replace(
            task,
            call=asdict(call),
            blobs={} if near else {sha: by_sha[sha].read() for sha in sent},
            blob_paths={sha: (by_sha[sha].path, by_sha[sha].export_only) for sha in sent}
            if near else {},
            deliver=near and split is None,
            wait_for=wait_for,
            split=split,
        )
        return task, sent

    def whole_task(self, call: compileargs.CompileCall, env: dict[str, str],
                   inputs: dict[str, Blob]) -> CompileTask:
        """CALL as a whole compile's task, carrying no blobs."""
        return CompileTask(identity=asdict(self.identity), call=asdict(call),
                           inputs={p: b.sha for p, b in inputs.items()}, blobs={},
                           wait_for=[], env=env,
                           head_goroot=env.get("GOROOT") or str(toolchain.goroot()))

    def run_remote(self, call: compileargs.CompileCall, env: dict[str, str],
                   inputs: dict[str, Blob], rec: ActionRecord, t0: float) -> dict[str, Any]:
        """Compile CALL on the best worker; the shim's reply. RemoteFailure: run it locally."""
        needs = {b.sha: b.size for b in inputs.values()}
        with self.lock:
            address = self.placement.choose(needs)
        if address is None:
            raise RemoteFailure(policy.NO_WORKER)
        sent: list[str] = []
        confirmed: list[str] = []
        try:
            task, sent = self.prepare(address, call, env, inputs)
            if self.speculator is not None and self.speculator.early_export:
                task = replace(task, early_export=True)
            result = self.run_task(task, address, inputs, rec, sent)
            confirmed = list(needs)
            rec.mode = "local" if result.worker == "local" else "remote"
            rec.worker = result.worker
            reply = self.reply(call, result, rec, t0)
            out = compileargs.flag_value(call.args, "-o")
            if self.speculator is not None and result.exit == 0 and out:
                self.speculator.archive_written(rec.package, compileargs.absolute(call.cwd, out),
                                                result)
            if self.verifier is not None and rec.mode == "remote" and result.exit == 0:
                self.verifier.after_remote(call.package or rec.package, address, task.inputs,
                                           lambda: _outputs(result), buildid_of(call),
                                           self.local_job(task, inputs), rec.source_bytes or 0)
            return reply
        finally:
            self.finished(address, sent, confirmed)

    def run_task(self, task: CompileTask, address: str, inputs: dict[str, Blob],
                 rec: ActionRecord, sent: list[str], watch: tuple[str, ...] = ()
                 ) -> CompileResult:
        """Run TASK on ADDRESS; resend once what its store turns out to lack (wiped, or a
        blob still riding with a queued task). Returns an OK result or raises RemoteFailure."""
        rec.bytes_in += _blob_bytes(task, inputs)
        backup = None if task.split else (lambda: self._local_task(task, inputs))
        result = self._submit(task, address, watch, backup, self._straggler_deadline(inputs))
        if getattr(result, "worker", None) == "local":  # (checked below: any message type)
            rec.fallback = policy.STRAGGLER_WON
        resends = 0
        while True:
            verdict = self.check_result(address, result, resends)
            if verdict.action is policy.Action.USE:
                return result
            by_sha = {b.sha: b for b in inputs.values()}
            with self.lock:
                self.placement.lacks(address, list(verdict.resend))
            # as bytes: a path the worker could not read was the likely cause
            task = replace(task, blobs={sha: by_sha[sha].read() for sha in verdict.resend},
                           blob_paths={}, wait_for=[])
            sent += verdict.resend
            rec.bytes_in += _blob_bytes(task, inputs)
            resends += 1
            result = self._submit(task, address, watch)

    def check_result(self, address: str, result: Any, resends: int = 0) -> policy.Verdict:
        """What to do with ADDRESS's RESULT: use it or resend (the verdict), or fall back
        (RemoteFailure). A refusing worker, or one of another protocol, is not used again."""
        wrong = mismatch(result, CompileResult)
        if wrong:
            verdict = policy.judge(Status.PROTOCOL, wrong)
        else:
            verdict = policy.judge(result.status, result.reason, result.missing, resends)
        if verdict.drop_worker:
            self.refused.add(address)
            with self.lock:
                self.placement.remove_worker(address)
        if verdict.action is policy.Action.FALL_BACK:
            raise RemoteFailure(verdict.reason)
        return verdict

    def reply(self, call: compileargs.CompileCall, result: CompileResult, rec: ActionRecord,
              t0: float) -> dict[str, Any]:
        """Write RESULT's outputs where go build expects them; the shim's answer."""
        rec.bytes_out = self._write_outputs(call, result, rec)
        now = time.time()
        rec.duration_s, rec.end = round(now - t0, 4), now
        rec.dispatch_s = round((result.tool_start - t0) + (now - result.tool_done), 4)
        return {"local": False, "exit": result.exit, "output": _b64(result.output)}

    def submit_async(self, task: CompileTask, address: str, key: str) -> Any:
        return self.client.submit(executor.execute, task, workers=[address],
                                  allow_other_workers=False, pure=False, key=key)

    def call(self, task: CompileTask, address: str,
             on_export: Callable[[Any], None] | None = None) -> concurrent.futures.Future[Any]:
        """TASK straight to ADDRESS's compile handler (fgo.worker.service), bypassing the
        scheduler: one message each way (and the early export data, with ON_EXPORT)."""
        loop = self.client.loop.asyncio_loop
        return asyncio.run_coroutine_threadsafe(
            _service().call(self.client, address, task, on_export), loop)

    def export_topic(self) -> str:
        """The Dask event topic a split leader sends its early export data to, subscribed
        once (the events go to the speculator)."""
        with self.lock:
            if self._export_topic is None:
                topic = f"fgo-export-{uuid.uuid4().hex[:12]}"
                speculator = self.speculator

                def got(event: Any) -> None:  # (time, message), on the client's loop
                    msg = event[1]
                    speculator.leader_export(msg["package"], msg["data"], msg["at"])
                within(SCHEDULER_S, self.client.subscribe_topic, topic, got,
                       what="subscribing to the export topic")
                self._export_topic = topic
            return self._export_topic

    def promote(self, address: str, output: str) -> None:
        """ADDRESS's speculative compile of OUTPUT is wanted now: unnice it (not waited for)."""
        loop = self.client.loop.asyncio_loop
        asyncio.run_coroutine_threadsafe(_service().promote(self.client, address, output),
                                         loop)

    def open_queue(self, prefix: str) -> Any:
        """A new distributed.Queue on this build's client (for handing a leader its shards)."""
        from distributed import Queue
        try:
            return within(SCHEDULER_S, Queue, f"{prefix}-{uuid.uuid4().hex[:12]}",
                          client=self.client, what="a queue on the scheduler")
        except Late as exc:
            raise RemoteFailure(str(exc)) from None

    def cancel(self, futures: list[Any]) -> None:
        """Cancel FUTURES, forced: copies other workers fetched are cancelled too."""
        try:
            within(SCHEDULER_S, self.client.cancel, futures, force=True, what="cancelling")
        except Late:  # the scheduler forgets them with the client
            pass

    def _straggler_deadline(self, inputs: dict[str, Blob]) -> float:
        source = policy.source_bytes((p, b.size) for p, b in inputs.items())
        with self.recorder.lock:
            rates = policy.remote_rates(self.recorder.actions)
        return policy.straggler_deadline(source, rates)

    def _local_task(self, task: CompileTask, inputs: dict[str, Blob]) -> CompileResult:
        """TASK run by this process, in a sandbox of its own store (first result wins)."""
        return self.local_job(task, inputs)()()

    def local_job(self, task: CompileTask, inputs: dict[str, Blob]
                  ) -> Callable[[], Callable[[], CompileResult]]:
        """TASK (whole, never split) to compile on this host: calling the result reads the
        inputs this host's store lacks, at once; calling what that returns compiles."""
        def snapshot() -> Callable[[], CompileResult]:
            store = executor.worker_store()
            blobs = {b.sha: b.read() for b in inputs.values() if not store.has(b.sha)}
            whole = replace(task, blobs=blobs, blob_paths={}, deliver=False, wait_for=[],
                            split=None)
            return lambda: executor.execute(whole)
        return snapshot

    def _submit(self, task: CompileTask, address: str, watch: tuple[str, ...] = (),
                backup: Callable[[], CompileResult] | None = None,
                straggle_after: float = float("inf")) -> Any:
        """Run TASK on ADDRESS and wait; RemoteFailure if it or a WATCHed worker is lost.

        After STRAGGLE_AFTER seconds BACKUP (a local run of the same task) starts too,
        and whichever finishes first with a usable result is taken."""
        if task.split is None:
            on_export = None
            if task.early_export and self.speculator is not None:
                package = compileargs.CompileCall(**task.call).package
                speculator = self.speculator
                on_export = lambda ready: speculator.export_ready(  # noqa: E731
                    package, ready.data, at=ready.at)
            future = self.call(task, address, on_export)
        else:
            future = self.submit_async(task, address, f"compile-{uuid.uuid4().hex[:12]}")
        # Wait for the task's state, then fetch its result once: result(timeout=...) in a
        # poll loop cuts off a result slower to transfer than the poll (tens of MB over
        # 1 Gb/s) and fetches it again forever; and distributed's timed result() races its
        # own timeout (UnboundLocalError under load).
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        started = time.monotonic()
        local: concurrent.futures.Future[CompileResult] | None = None
        try:
            while True:
                try:
                    if done.wait(0.5):
                        return future.result()
                    elapsed = time.monotonic() - started
                    if policy.start_backup(elapsed, straggle_after, backup is not None,
                                           local is not None):
                        local = self._backups.submit(backup)  # type: ignore[arg-type]
                    if local is not None and local.done():
                        result = local.result()
                        if isinstance(result, CompileResult) and result.ok:
                            return result
                        local = None  # the local try failed too: keep waiting remotely
                    why = policy.wait_verdict(time.monotonic() - started, self.task_timeout,
                                              address, watch, self.live_workers())
                    if why:
                        raise RemoteFailure(why) from None
                except RemoteFailure:
                    raise
                except Exception as exc:  # the task raised, or the worker died under it
                    raise policy.remote_error(exc) from None
        finally:
            if not future.done():
                future.cancel()

    def _write_outputs(self, call: compileargs.CompileCall, result: CompileResult,
                       rec: ActionRecord) -> int:
        total = 0
        for path, (staged, size) in result.delivered.items():  # a worker on this host
            if path not in call.outputs or not staged.startswith(path + ".fgo-"):
                raise RemoteFailure(f"unexpected output {staged}")
            os.replace(staged, path)
            total += size
        for path, data in result.outputs.items():
            if path not in call.outputs:
                raise RemoteFailure(f"unexpected output {path}")
            tmp = f"{path}.fgo-{uuid.uuid4().hex[:8]}"
            Path(tmp).write_bytes(data)
            os.replace(tmp, path)
            total += len(data)
        rec.output_sha256 = result.output_sha256  # hashed by the worker, off our CPU
        return total


def _outputs(result: CompileResult) -> dict[str, bytes]:
    """RESULT's outputs: sent back as bytes, or read from where the worker delivered them."""
    return {**result.outputs, **{p: Path(p).read_bytes() for p in result.delivered}}


def _blob_bytes(task: CompileTask, inputs: dict[str, Blob]) -> int:
    """The bytes TASK brings to its worker's store, as bytes or as paths to read."""
    sizes = {b.sha: b.size for b in inputs.values()}
    return sum(len(d) for d in task.blobs.values()) + sum(sizes[s] for s in task.blob_paths)


def buildid_of(call: compileargs.CompileCall) -> str:
    """The compile's -buildid value (go's action ID / placeholder), or ""."""
    flags, _ = compileargs.split_flags(call.args)
    return next((value or "" for name, value, _, _ in flags if name == "buildid"), "")


def _worker_addresses(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.workers)


def _b64(data: bytes) -> str:
    import base64
    return base64.b64encode(data).decode()


def _service() -> Any:
    """fgo.worker.service, imported once a compile goes to a worker: it imports distributed
    (0.7 s of a no-op rebuild's 1.1 s, which dispatches nothing)."""
    from fgo.worker import service
    return service
