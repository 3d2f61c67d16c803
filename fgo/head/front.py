"""The shim's front: the unix socket go build's tool calls reach, and the order in which a
compile's executors are asked (fgo.head.action has the model).

A link asks first and waits for pending verifications (it is refused after a mismatch:
the wrong archive is never linked). A compile goes to, in this order: a matching
speculation, a split (with --split-large, when the planner finds it worth it), a free
local slot (the shim runs it with nothing else in its path), a worker; whatever fails,
the shim runs it itself, a compile whose compiler failed elsewhere too (only go's own run
tells a user's error from a host's: a worker whose failures it built leaves the build).
Deciding a local slot costs neither parsing the inputs' hashes nor the cluster: only what
the earlier executors need is computed.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

from fgo.blobs import BlobIndex
from fgo.compilecall import NotRemoteSafe, absolute, buildid_of, flag_value
from fgo.head import policy
from fgo.head.action import CompileAction, Completion, Outcome
from fgo.head.checks import action_id_prefix
from fgo.head.pool import WorkerPool
from fgo.head.remote import RemoteExecutor
from fgo.head.shim import listen
from fgo.head.slots import LocalSlots
from fgo.report.record import ActionRecord, Recorder, speculation_hit
from fgo.wire import ShimReply, ShimRequest

Released = Callable[[], None]
SLOT_WAIT_S = 0.2  # the longest a compile waits for a slot whose compiler has just exited


class ShimServer:
    """The unix socket the shim connects to, once per tool call: a thread per connection
    reads one JSON request and writes HANDLE's reply; for a reply that holds, it then
    waits until the shim's tool has exited (the connection closes) and calls the release
    HANDLE gave with it. Threads are kept for the next call (_CallThreads)."""

    def __init__(self, socket_path: str,
                 handle: Callable[[ShimRequest], tuple[ShimReply, Released | None]],
                 listener: socket.socket | None = None) -> None:
        self.socket_path = socket_path
        self._handle = handle
        self._listener = listener  # already listening at SOCKET_PATH (fgo.head.shim.listen)
        self._socket: socket.socket | None = None
        self._calls: _CallThreads | None = None
        self._wake = (-1, -1)                      # a pipe: `stop` wakes the accept loop
        self._loop: threading.Thread | None = None

    def start(self) -> None:
        # go build may be running already, its first calls waiting in the listener's backlog
        self._socket = self._listener if self._listener is not None else listen(self.socket_path)
        self._listener = None
        self._calls = _CallThreads(self._call)
        self._wake = os.pipe()
        self._loop = threading.Thread(target=self._serve, name="fgo-shim-server", daemon=True)
        self._loop.start()

    def _serve(self) -> None:
        """Accept connections until `stop` writes to the wake pipe, each handed to a thread.
        No timeout: a poll for the stop costs the head CPU all build long (socketserver's
        serve_forever: every 10 ms), and its handle_request made a selector and a thread
        for every call."""
        assert self._socket is not None and self._calls is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._socket, selectors.EVENT_READ)
            sel.register(self._wake[0], selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fileobj == self._wake[0]:
                        return
                    try:
                        conn, _ = self._socket.accept()  # ready: does not wait
                    except OSError:  # the caller gave up already
                        continue
                    self._calls.submit(conn)

    def _call(self, conn: socket.socket) -> None:
        """One tool call on CONN: its request read, its reply written, a hold kept."""
        release = None
        try:
            with conn, conn.makefile("rb") as rfile:
                data = json.loads(rfile.readline() or b"{}")
                request = ShimRequest(argv=data.get("argv") or [""], cwd=data.get("cwd", "/"),
                                      env=data.get("env") or {})
                reply, release = self._handle(request)
                conn.sendall(json.dumps(
                    {"local": reply.local, "hold": reply.hold and release is not None,
                     "exit": reply.exit,
                     "output": base64.b64encode(reply.output).decode()}).encode() + b"\n")
                if release is not None:
                    rfile.read()  # until the tool the shim exec'd has exited
        except (OSError, ValueError):  # a shim gone, or not a shim: the call ends
            pass
        finally:
            if release is not None:
                release()

    def stop(self) -> None:
        if self._listener is not None:  # never started
            self._listener.close()
            self._listener = None
        if self._socket is not None:
            os.write(self._wake[1], b"x")
            if self._loop is not None:
                self._loop.join()
            self._socket.close()
            if self._calls is not None:
                self._calls.close()
            for fd in self._wake:
                os.close(fd)
            self._socket = None


class _CallThreads:
    """Daemon threads that serve the shim's calls, each kept for the next call once its
    own ends (socketserver started one for every call); a new one only when none is idle,
    so that a call never waits behind a held one. Not a ThreadPoolExecutor: its bound
    would queue calls behind held ones, and its threads are joined at exit (a compiler
    left running when go build was killed would keep the head from exiting)."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self._serve = serve
        self._queue: queue.SimpleQueue[socket.socket | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._closed = False

    def submit(self, conn: socket.socket) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that thread takes it
        self._queue.put(conn)
        if start:
            threading.Thread(target=self._run, name="fgo-shim-call", daemon=True).start()

    def _run(self) -> None:
        while (conn := self._queue.get()) is not None:
            self._serve(conn)
            with self._lock:
                if self._closed:
                    return
                self._idle += 1

    def close(self) -> None:
        """Idle threads end now, busy ones when their call does."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, 0
        for _ in range(idle):
            self._queue.put(None)


def _output(call: Any) -> str | None:
    out = flag_value(call.args, "-o")
    return absolute(call.cwd, out) if out else None


def _output_size(call: Any) -> int:
    out = _output(call)
    try:
        return os.path.getsize(out) if out else -1
    except OSError:
        return -1


class Front:
    """One build's front: asks the executors in order and answers the shim."""

    def __init__(self, socket_path: str, recorder: Recorder, completion: Completion,
                 slots: LocalSlots, blobs: BlobIndex, pool: WorkerPool | None,
                 remote: RemoteExecutor | None, listener: socket.socket | None = None) -> None:
        self.recorder = recorder
        self.completion = completion
        self.slots = slots
        self.blobs = blobs
        self.pool = pool
        self.remote = remote
        self.split: Any = None                       # fgo.head.split.SplitExecutor
        self.speculator: Any = None                  # fgo.head.speculation.Speculator
        self.verifier: Any = None                    # fgo.head.verification.Verifier
        self.lock = threading.Lock()
        self.running: dict[int, CompileAction] = {}  # in flight, for progress and the racer
        self.parallelism: int | None = None          # go build's -p
        # by action-ID prefix: compiles no worker holds the archive of (the head's own,
        # splits) and the archive sizes of those a worker ran (fgo.cache.stage)
        self.unheld: set[str] = set()
        self.held_sizes: dict[str, int] = {}
        self.output_log: Any = None                  # fgo.cache.outputs.OutputLog
        # told when a link may run: every compile before it is done and verified
        self.on_link: Callable[[], None] = lambda: None
        # asked before a link too: why it must not run (a line each), e.g. a revoked
        # worker's cache entry go was given (fgo.cache.session.revoked_in_use)
        self.link_checks: list[Callable[[], list[str]]] = []
        self.server = ShimServer(socket_path, self.handle, listener)

    @property
    def socket_path(self) -> str:
        return self.server.socket_path

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        if self.pool is not None:
            self.pool.stopped = True
        if self.speculator is not None:
            self.speculator.close()

    def running_records(self) -> list[ActionRecord]:
        with self.lock:
            return [a.record for a in self.running.values()]

    # --- one tool call ---

    def handle(self, request: ShimRequest) -> tuple[ShimReply, Released | None]:
        action = CompileAction.of(request)
        if action.tool == "link":
            return self.link_gate(), None
        with self.lock:
            self.running[id(action)] = action
        reply = self.dispatch(action)
        if reply.local:
            return reply, lambda: self._released(action)
        self._done(action)
        return reply, None

    def dispatch(self, action: CompileAction) -> ShimReply:
        """ACTION's executors, in order; the shim's answer."""
        if self.speculator is not None:
            self.speculator.request(action.package, action.request.env)
        try:
            action.parse()
        except NotRemoteSafe as exc:  # only the shim may run it: a slot if one is free
            return self._local(action, None if self._take_slot(action) else
                               policy.fallback_reason(exc))
        except Exception as exc:  # an input we cannot read, a bug of ours: go runs it
            return self.completion.local(action, policy.fallback_reason(exc))
        try:
            if self.speculator is not None and self.speculator.wants(action.package):
                action.hash(self.blobs)
                outcome = self.speculator.take(action)
                if outcome is not None:
                    return self._finish(action, outcome)
            if self.split is not None:
                action.hash(self.blobs)
                outcome = self.split.run(action)
                if outcome is not None:
                    return self._finish(action, outcome)
            if self._take_slot(action, older_first=True):
                return self._local(action, None)
            if self.remote is None or self.pool is None:
                raise policy.RemoteFailure(policy.NO_WORKER)
            self.pool.ensure()
            action.hash(self.blobs)
            return self._finish(action, self.remote.run(action))
        except Exception as exc:  # whatever it was, it costs a local compile, not the build
            return self._local(action, policy.fallback_reason(exc))

    def _finish(self, action: CompileAction, outcome: Outcome) -> ShimReply:
        """OUTCOME's answer to the shim; a compile that failed where it ran is run by the
        shim instead (policy.failed_elsewhere): nothing of it was written."""
        why = policy.failed_elsewhere(outcome.result.exit, outcome.worker)
        if why is not None:
            action.failed_on = (outcome.mode, outcome.worker)  # judged once go's run ends
            return self._local(action, why)
        return self.completion.finish(action, outcome)

    def _take_slot(self, action: CompileAction, older_first: bool = False) -> bool:
        """A local slot for ACTION if one is free. go runs at most `parallelism` tools at
        once, so more compiles in flight than that means a finished one's slot is about to
        come back (the compiler has exited; its connection's end is on its way): wait for it
        rather than overflow. OLDER_FIRST: a compile queued at a worker that the head would
        finish sooner takes the slot instead (Racer.yield_to_queued); ACTION goes remote."""
        with self.lock:
            overdue = self.parallelism is not None and len(self.running) > self.parallelism
        slot = self.slots.take(wait=SLOT_WAIT_S if overdue else 0.0)
        if slot is None:
            return False
        racer = self.remote.racer if self.remote is not None else None
        if older_first and racer is not None and racer.yield_to_queued(slot):
            return False
        action.slot = action.record.slot = slot
        return True

    def _local(self, action: CompileAction, reason: str | None) -> ShimReply:
        return self.completion.local(action, reason)

    def _released(self, action: CompileAction) -> None:
        """The shim's own run of ACTION ended. When it was run because it failed elsewhere
        and go's run built it, the worker it failed on is told it (WorkerPool.host_fault)."""
        if action.failed_on is not None and self.pool is not None and \
                (worker := policy.host_at_fault(*action.failed_on, _output_size(action.call))):
            self.pool.host_fault(worker)
        self.completion.released(action)
        self._done(action)
        self.slots.release(action.slot)

    def _done(self, action: CompileAction) -> None:
        with self.lock:
            self.running.pop(id(action), None)
        buildid = buildid_of(action.call) if action.call is not None else ""
        if prefix := action_id_prefix(buildid):
            # go's action ID, known before go's action graph is (an early publish uses it)
            action.record.build_id = action.record.build_id or buildid
            # a speculation's worker kept its archive under another build ID than go's
            if action.record.mode == "remote" and not speculation_hit(action.record.speculation):
                self.held_sizes[prefix] = _output_size(action.call)  # before go appends to it
            else:  # the head's own, or a speculation's: its worker holds another build ID
                self.unheld.add(prefix)
            if self.output_log is not None and (out := _output(action.call)):
                self.output_log.add(prefix, out)  # go puts its body from there
        self.recorder.add(action.record,
                          action.needs() if action.inputs is not None else None)

    def worker_lacks(self, prefix: str, size: int) -> bool:
        """Whether no worker holds the body (SIZE bytes) go cached for the compile of this
        action-ID prefix: the head ran it, or go appended to its worker's archive (a
        package's assembly or cgo objects)."""
        return prefix in self.unheld or self.held_sizes.get(prefix, size) != size

    def link_gate(self) -> ShimReply:
        """The shim asks before every link: it may run once every pending verification is
        done, and never when one found a mismatch (the wrong archive is never linked)."""
        mismatches = self.verifier.wait() if self.verifier is not None else []
        refused = [line for check in self.link_checks for line in check()]
        if not mismatches and not refused:
            self.on_link()
            return ShimReply(local=True)
        text = "".join(line + "\n" for line in [m.line() for m in mismatches] + refused)
        return ShimReply(local=False, exit=1, output=text.encode())

