"""The remote executor: one compile on one worker, raced by the head when that pays.

The task goes straight to the chosen worker's compile handler with the blobs its store
lacks; the head waits for the answer and watches the worker's liveness and the timeout.
A store that lacked more gets it resent once (as bytes). A compile that has run far longer
than expected (a straggler, policy.straggler_deadline), or that go build waits for while a
local slot is free (fgo.head.race), is also started by the head itself (HeadRun): the
first usable result wins and the other is cancelled. Anything else that goes wrong is a
RemoteFailure: the shim runs the compile.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fgo import wire
from fgo.blobs import Blob
from fgo.head import policy
from fgo.head.action import CompileAction, Outcome
from fgo.head.headrun import HeadRun
from fgo.head.policy import RemoteFailure
from fgo.head.pool import WorkerPool
from fgo.head.tasks import Tasks, head_job
from fgo.report.record import Recorder
from fgo.wire import Cancel, CompileResult, CompileTask, OutputChunk, Status

POLL_S = 0.5  # how often a wait looks at liveness and the timeout (an answer wakes it)
# A whole compile's outputs above this come back as OutputChunks, written aside as they
# come: most archives are smaller, aws-sdk-go's ec2 is 64 MB (and its copies in one message
# made the head's and the worker's peak memory follow the build's largest archive).
STREAM_ABOVE = 1 << 20


class RemoteExecutor:
    """Runs compiles on the POOL's workers."""

    def __init__(self, pool: WorkerPool, tasks: Tasks, recorder: Recorder,
                 task_timeout: float) -> None:
        self.pool = pool
        self.tasks = tasks
        self.recorder = recorder
        self.task_timeout = task_timeout          # a remote compile slower than this: local
        self.speculator: Any = None               # pipelining: early export data goes there
        # Dynamic execution (fgo.head.race): whether the head races a compile now, on a
        # local slot it frees again when the race ends; None: only stragglers are raced.
        self.racer: Any = None
        self.verifier: Any = None                 # a long compile may be checked from dispatch

    def run(self, action: CompileAction) -> Outcome:
        """ACTION on the best worker. RemoteFailure: nobody, or nothing usable."""
        inputs = action.inputs
        assert inputs is not None
        needs = action.needs()
        address = self.pool.choose(needs)
        if address is None:
            raise RemoteFailure(policy.NO_WORKER)
        sent: list[str] = []
        confirmed: list[str] = []
        try:
            call = action.parse()
            task, sent = self.tasks.for_worker(address, call, action.request.env, inputs)
            if not task.deliver:
                task = replace(task, stream_above=STREAM_ABOVE)
            if self.speculator is not None and self.speculator.early_export:
                task = replace(task, early_export=True)
            rates = self._rates()
            drawn = self._check_from_dispatch(action, task, address, inputs, rates)
            try:
                result = self.run_task(action, task, address, sent, rates=rates)
            except BaseException:
                if drawn is not None:
                    self.verifier.drop_early(drawn)
                raise
            confirmed = [] if task.in_place else list(needs)  # in place: its store has none
            if drawn is not None and (result.worker == "head" or result.exit != 0):
                self.verifier.drop_early(drawn)  # nothing of the worker's to compare
            if result.worker == "head":
                return Outcome(result, "head", "head")
            return Outcome(result, "remote", address, task=task, local_job=head_job(task, inputs),
                           cross_job=self.tasks.cross_job(
                               call, action.request.env, inputs, policy.cross_check_deadline(
                                   result.tool_done - result.tool_start, self.task_timeout)))
        finally:
            self.pool.finished(address, sent, confirmed)

    def _rates(self) -> list[float]:
        """Seconds per source byte of the build's recent remote compiles."""
        with self.recorder.lock:
            return policy.remote_rates(self.recorder.actions)

    def _check_from_dispatch(self, action: CompileAction, task: CompileTask, address: str,
                             inputs: dict[str, Blob], rates: list[float]) -> str | None:
        """Let verification draw a long compile now, so that its reference compile runs
        beside the remote one rather than after it (fgo.head.checks.dispatch_reason); the
        draw's key, or None."""
        if self.verifier is None or task.split is not None or task.speculative:
            return None
        expected = policy.expected_seconds(action.record.source_bytes, rates)
        key: str | None = self.verifier.at_dispatch(action.package, address, task.inputs,
                                                    action.buildid, expected,
                                                    head_job(task, inputs))
        return key

    def run_task(self, action: CompileAction, task: CompileTask, address: str, sent: list[str],
                 watch: tuple[str, ...] = (), rates: list[float] | None = None) -> CompileResult:
        """TASK on ADDRESS (whose result needs the WATCHed workers too); a store that lacks
        blobs gets them resent. A usable result, or RemoteFailure. RATES: the build's
        remote rates, when the caller has them already."""
        inputs = action.inputs or {}
        action.record.bytes_in += Tasks.bytes_sent(task, inputs)
        action.record.goroot_bytes += Tasks.bytes_from_goroot(task, inputs)
        rates = self._rates() if rates is None else rates
        result = self._wait(action, task, address, watch, rates)
        resends = 0
        while True:
            verdict = self.judge(address, result, resends)
            if verdict.action is policy.Action.USE:
                return result
            if task.blob_paths and set(verdict.resend) & set(task.blob_paths):
                self.pool.paths_unshared(address)  # proven per input: it did not read them
            if set(verdict.resend) & set(task.from_goroot):
                self.pool.goroot_unshared(address)  # its GOROOT is not the head's
            self.pool.lacks(address, list(verdict.resend))
            task = Tasks.with_bytes(task, inputs, list(verdict.resend))
            sent += verdict.resend
            action.record.bytes_in += Tasks.bytes_sent(task, inputs)
            resends += 1
            result = self._wait(action, task, address, watch, rates)

    def judge(self, address: str, result: CompileResult, resends: int = 0) -> policy.Verdict:
        """What to do with ADDRESS's RESULT: use it or resend (the verdict), or fall back
        (RemoteFailure). A refusing worker, or one of another protocol, is not used again."""
        if result.worker == "head":
            return policy.Verdict(policy.Action.USE)
        verdict = policy.judge(result.status, result.reason, result.missing, resends)
        if verdict.drop_worker:
            self.pool.exclude(address)
        if verdict.action is policy.Action.FALL_BACK:
            raise RemoteFailure(verdict.reason)
        return verdict

    def _wait(self, action: CompileAction, task: CompileTask, address: str,
              watch: tuple[str, ...], rates: list[float]) -> CompileResult:
        """TASK's answer from ADDRESS, or the head's own run of it when that wins first."""
        on_export = None
        if task.early_export and self.speculator is not None:
            speculator, package, split = self.speculator, action.package, task.split is not None
            on_export = lambda ready: speculator.export_ready(  # noqa: E731
                package, ready.data, at=ready.at, split=split)
        received = Received(action.parse().outputs)

        def on_stream(message: Any) -> None:  # on the client's event loop
            if isinstance(message, OutputChunk):
                received.chunk(message)
            elif on_export is not None:
                on_export(message)
        future = self.pool.submit(address, wire.OP_COMPILE, task, on_stream)
        wake = threading.Event()  # set when the answer comes, or the racer hands a slot
        future.add_done_callback(lambda _: wake.set())
        started = time.monotonic()
        source = action.record.source_bytes
        straggle_after = policy.straggler_deadline(source, rates)
        if self.racer is not None and task.split is None:
            self.racer.track(action, policy.expected_seconds(source, rates), wake, address,
                             self.pool.threads_of(address))
        race: Race | None = None
        try:
            while True:
                if not wake.wait(POLL_S) and self.racer is not None and task.split is None:
                    self.racer.poll()   # a slot may have been free since this one got late
                wake.clear()
                if future.done():
                    try:
                        data = future.result()
                    except Exception as exc:  # the worker died under it, or the call failed
                        raise policy.remote_error(exc) from None
                    return received.into(_decode(data))
                elapsed = time.monotonic() - started
                if elapsed > policy.STRAGGLER_MIN_S:
                    self.pool.probe(address)  # stopped, or only busy?
                if race is None and task.split is None:
                    race = self._maybe_race(action, elapsed, straggle_after)
                    if race is not None and race.take:
                        self.pool.tell(address, wire.OP_CANCEL, Cancel(task.task_id))
                        return self._taken(action, race, future, elapsed, received)
                if race is not None and race.run.done.is_set():
                    if (won := race.result(action, elapsed)) is not None:
                        self.pool.tell(address, wire.OP_CANCEL, Cancel(task.task_id))
                        return won
                    race.lost(action)
                    race = None  # the head's try failed: keep waiting remotely
                why = policy.wait_verdict(time.monotonic() - started, self.task_timeout,
                                          address, watch, self.pool.live())
                if why:
                    self.pool.tell(address, wire.OP_CANCEL, Cancel(task.task_id))
                    if race is not None:  # the head's run of it is under way: that one
                        race.run.done.wait()
                        if (won := race.result(action, elapsed)) is not None:
                            return won
                    raise RemoteFailure(why)
        finally:
            received.close()  # what was not handed on in a result is removed
            if race is not None and not race.finished:
                race.lost(action)
            if self.racer is not None:
                self.racer.untrack(action)
            if not future.done():
                future.cancel()

    def _maybe_race(self, action: CompileAction, elapsed: float,
                    straggle_after: float) -> Race | None:
        """A head run of ACTION if it is a straggler, or the racer wants one now (a take,
        if it was still queued at its worker)."""
        if elapsed > straggle_after:
            return Race(HeadRun(action), straggler=True, release=None,
                        take=self.racer is not None and self.racer.take_if_queued(action))
        if self.racer is not None and self.racer.wants(action, elapsed):
            return Race(HeadRun(action), straggler=False, release=self.racer.done,
                        take=self.racer.takes(action))
        return None

    def _taken(self, action: CompileAction, race: Race, future: Any, elapsed: float,
               received: Received) -> CompileResult:
        """ACTION taken from its worker's queue (told to drop it): the head's run is its
        compile. Should that run fail to start, what the worker answered (it may have
        started it before the word came), else RemoteFailure: the caller compiles locally."""
        race.run.done.wait()
        if (won := race.result(action, elapsed)) is not None:
            return won
        race.lost(action)
        try:
            result = _decode(future.result(timeout=POLL_S))
        except Exception:  # noqa: BLE001 - dropped, or no answer: the head compiles it again
            raise RemoteFailure(policy.TAKEN_FAILED) from None
        if result.status is not Status.OK:
            raise RemoteFailure(policy.TAKEN_FAILED)
        return received.into(result)


@dataclass
class Race:
    """The head's run of a compile that also runs remotely; the first usable result wins."""

    run: HeadRun
    straggler: bool                                  # raced for being slow, not by the racer
    release: Callable[[Any], None] | None            # gives the racer's slot back
    take: bool = False                               # taken from its worker's queue
    finished: bool = False

    @property
    def why(self) -> str:
        return "straggler" if self.straggler else "queued" if self.take else "critical path"

    def result(self, action: CompileAction, elapsed: float) -> CompileResult | None:
        """The head's run's result if it finished usable (the race is then won), else None."""
        if not self.run.ok():
            return None
        assert self.run.result is not None
        self.won(action, elapsed)
        return self.run.result

    def won(self, action: CompileAction, elapsed: float) -> None:
        action.record.race = {"started_s": round(elapsed, 3), "winner": "head",
                              "why": self.why}
        if self.straggler:
            action.record.fallback = policy.STRAGGLER_WON
        self._end(action)

    def lost(self, action: CompileAction) -> None:
        self.run.cancel()
        action.record.race = {"winner": "remote", "why": self.why}
        self._end(action)

    def _end(self, action: CompileAction) -> None:
        self.finished = True
        if self.release is not None:
            self.release(action)


def _decode(data: Any) -> CompileResult:
    """A worker's answer to a compile; another protocol's is a PROTOCOL result (the worker
    is then refused)."""
    try:
        return wire.decode(data, CompileResult)
    except wire.ProtocolMismatch as exc:
        return CompileResult(Status.PROTOCOL, "?", reason=str(exc))


class Received:
    """A compile's outputs that come as OutputChunks (task.stream_above), each written aside
    beside its path as it comes, so the head never holds a whole one: `into` hands them to
    the result as staged files (moved into place only if the result is used, as a worker
    on this host stages its own); whatever `into` did not hand on, `close` removes."""

    def __init__(self, outputs: list[str]) -> None:
        self.allowed = set(outputs)
        self.files: dict[str, tuple[str, Any]] = {}   # path -> (aside, open file)
        self.bad = ""                                  # why the stream cannot be used
        self.handed = False
        self.closed = False                            # chunks still coming are dropped
        self.lock = threading.Lock()                   # chunk (event loop) against close

    def chunk(self, c: OutputChunk) -> None:
        with self.lock:
            if not self.closed:
                self._write(c)

    def _write(self, c: OutputChunk) -> None:
        if c.path not in self.allowed:   # a worker must not write anywhere else
            self.bad = f"unexpected output {c.path}"
            return
        try:
            if c.path not in self.files:
                aside = f"{c.path}.fgo-recv-{uuid.uuid4().hex[:8]}"
                self.files[c.path] = (aside, open(aside, "wb"))
            f = self.files[c.path][1]
            f.seek(c.offset)
            f.write(c.data)
        except OSError as exc:
            self.bad = f"writing {c.path}: {exc}"

    def into(self, result: CompileResult) -> CompileResult:
        """RESULT with its streamed outputs as staged files (`delivered`); RemoteFailure if
        one is missing, of another size, or could not be written."""
        for _, f in self.files.values():
            f.close()
        if not result.streamed and not self.files:
            return result
        sizes = {p: os.path.getsize(aside) for p, (aside, _) in self.files.items()
                 if os.path.exists(aside)}
        if self.bad or sizes != result.streamed:
            raise RemoteFailure(policy.STREAM_BROKEN + (f": {self.bad}" if self.bad else ""))
        self.handed = True
        return replace(result, delivered={**result.delivered, **{
            p: (self.files[p][0], size) for p, size in sizes.items()}})

    def close(self) -> None:
        with self.lock:
            self.closed = True
        for aside, f in self.files.values():
            f.close()
            if not self.handed:
                with contextlib.suppress(OSError):
                    os.unlink(aside)
