"""One compile action, the executors' common answer, and the one way a compile completes.

cmd/go plans `Action`s and runs them through one loop (cmd/go/internal/work/action.go,
exec.go); fgo's head does the same for the compiles go build hands it. A `CompileAction`
is what go asked for (the shim's request), parsed and hashed once, with its record. An
executor runs it somewhere and answers with an `Outcome`, or declines (None) or fails
(RemoteFailure) and the next one is asked:

  speculative  a speculation already compiled it, matched by content (fgo.head.speculation)
  split        shards and a leader on several workers (fgo.head.split)
  local slot   the shim runs it on the head with nothing else in its path (fgo.head.slots)
  remote       one worker (fgo.head.remote), raced by the head when that pays
  fallback     the shim runs it, whatever failed elsewhere: the build is never lost

Whatever ran it, `Completion.finish` writes the outputs where go build expects them, fills
the record, tells pipelining the archive is there, hands the result to verification and
answers the shim. A compile the shim runs itself ends with `Completion.local`.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fgo import compilecall
from fgo.blobs import Blob, BlobIndex
from fgo.compilecall import CompileCall
from fgo.head.policy import RemoteFailure
from fgo.report.record import ActionRecord, Recorder
from fgo.wire import CompileResult, CompileTask, ShimReply, ShimRequest


@dataclass
class CompileAction:
    """One compile go build asked for."""

    request: ShimRequest
    record: ActionRecord
    t0: float                                  # time.time() the request came
    call: CompileCall | None = None            # parsed by `parse`
    inputs: dict[str, Blob] | None = None      # hashed by `hash`
    slot: int | None = None                    # the local slot it holds, if any
    failed_on: tuple[str, str] | None = None   # (mode, worker) whose compiler failed it

    @classmethod
    def of(cls, request: ShimRequest) -> CompileAction:
        t0 = time.time()
        package = request.env.get("TOOLEXEC_IMPORTPATH", "?")
        tool = os.path.basename(request.argv[0]).removesuffix(".exe")
        return cls(request, ActionRecord(package=package, tool=tool, mode="local", start=t0), t0)

    @property
    def package(self) -> str:
        return self.record.package

    @property
    def tool(self) -> str:
        return self.record.tool

    def parse(self) -> CompileCall:
        """The compile's inputs and outputs (NotRemoteSafe: only the shim may run it)."""
        if self.call is None:
            self.call = compilecall.parse(self.request.argv[1:], self.request.cwd)
        return self.call

    def hash(self, blobs: BlobIndex) -> dict[str, Blob]:
        """Every input as a blob (imports cut down to their export data)."""
        if self.inputs is None:
            call = self.parse()
            inputs = {p: blobs.blob(p) for p in call.inputs}
            for archive in call.archives:
                inputs[archive] = blobs.blob(archive, export_only=True)
            self.inputs = inputs
            self.record.source_bytes = sum(b.size for p, b in inputs.items() if p.endswith(".go"))
        return self.inputs

    def source_size(self) -> int:
        """The bytes of its Go sources, from stat alone (no hashing)."""
        if self.inputs is not None:
            return self.record.source_bytes
        total = 0
        for path in self.parse().inputs:
            if path.endswith(".go"):
                try:
                    total += os.stat(path).st_size
                except OSError:
                    pass
        return total

    @property
    def buildid(self) -> str:
        return compilecall.buildid_of(self.parse())

    def needs(self) -> dict[str, int]:
        """sha256 -> size of its inputs (hashed)."""
        assert self.inputs is not None
        return {b.sha: b.size for b in self.inputs.values()}


def new_task_id() -> str:
    return uuid.uuid4().hex[:16]


# A verification's recompile on the head: calling it snapshots the inputs at once (go build
# may remove its work directory before the check runs); calling what that returns compiles.
LocalJob = Callable[[], Callable[[], CompileResult]]


@dataclass
class Outcome:
    """A compile run elsewhere than in the shim, as its executor hands it to completion."""

    result: CompileResult                      # status OK; exit, output, outputs, timings
    mode: str                                  # "remote" | "split" | "head"
    worker: str                                # who ran it ("head" for the head's own run)
    task: CompileTask | None = None            # what was sent (verification recompiles it)
    local_job: LocalJob | None = None          # how the head recompiles it, to verify
    cross_job: Any = None                      # how another worker does (tasks.CrossJob)
    speculative: tuple[str, str] | None = None  # (placeholder build ID, go's): rewrite it
    split_check: dict[str, Any] | None = None  # a split: series, k, workers, for its check
    dispatch_s: float | None = None            # request to tool start, plus tool end to reply


class Completion:
    """The one completion path of every compile."""

    def __init__(self, recorder: Recorder, verifier: Any = None) -> None:
        self.recorder = recorder
        self.verifier = verifier                 # fgo.head.verification.Verifier, or None
        self.speculator: Any = None              # fgo.head.speculation.Speculator, or None
        self.excluded: Callable[[str], bool] = lambda worker: False

    def finish(self, action: CompileAction, outcome: Outcome) -> ShimReply:
        """OUTCOME's outputs where go build expects them, ACTION's record filled, the result
        handed to pipelining and verification; the shim's answer."""
        call = action.parse()
        result = outcome.result
        rec = action.record
        written = _write_outputs(call, result, outcome.speculative)
        now = time.time()
        rec.mode = "remote" if outcome.mode == "speculative" else outcome.mode
        if outcome.mode == "head":
            rec.mode = "local"
        rec.worker = outcome.worker
        # what came over the network: a head-led split's shard results, not its own archive
        rec.bytes_out = result.shard_bytes if outcome.worker == "head" else \
            sum(len(d) for d in written.values()) + \
            sum(size for _, size in result.delivered.values())
        rec.output_sha256 = result.output_sha256
        rec.duration_s, rec.end = round(now - action.t0, 4), now
        if outcome.dispatch_s is not None:
            rec.dispatch_s = round(outcome.dispatch_s, 4)
        elif result.tool_start:
            rec.dispatch_s = round((result.tool_start - action.t0) + (now - result.tool_done), 4)
        out = compilecall.flag_value(call.args, "-o")
        if self.speculator is not None and result.exit == 0 and out:
            self.speculator.archive_written(action.package, compilecall.absolute(call.cwd, out),
                                            result if outcome.mode == "remote" else None)
        if self.verifier is not None and result.exit == 0:
            self._verify(action, outcome, written)
        return ShimReply(local=False, exit=result.exit, output=result.output)

    def local(self, action: CompileAction, reason: str | None = None) -> ShimReply:
        """The shim runs ACTION itself (holding its connection while it runs): on a local
        slot, or as a fallback for REASON."""
        action.record.mode = "local"
        action.record.fallback = reason
        return ShimReply(local=True, hold=True)

    def released(self, action: CompileAction) -> None:
        """The shim's own run of ACTION ended (its connection closed)."""
        now = time.time()
        action.record.end = now
        action.record.duration_s = round(now - action.t0, 4)

    def _verify(self, action: CompileAction, outcome: Outcome, written: dict[str, bytes]) -> None:
        def outputs() -> dict[str, bytes]:
            return {**written, **{p: Path(p).read_bytes() for p in outcome.result.delivered}}
        task = outcome.task
        if outcome.local_job is None or task is None:
            return
        if outcome.mode in ("remote", "speculative"):
            self.verifier.after_remote(action.package, outcome.worker, task.inputs, outputs,
                                       action.buildid, outcome.local_job,
                                       action.record.source_bytes,
                                       speculative=outcome.mode == "speculative",
                                       cross=outcome.cross_job)
        elif outcome.mode == "split" and outcome.split_check is not None:
            c = outcome.split_check
            self.verifier.after_split(c["series"], action.package, c["k"], c["workers"],
                                      task.inputs, outputs(), action.buildid,
                                      outcome.local_job, c.get("done"))


def _write_outputs(call: CompileCall, result: CompileResult,
                   speculative: tuple[str, str] | None) -> dict[str, bytes]:
    """RESULT's outputs into place (a worker on this host staged them beside their paths);
    the bytes written here. RemoteFailure for an output the call does not write."""
    for path, (staged, _) in result.delivered.items():
        if path not in call.outputs or not staged.startswith(path + ".fgo-"):
            raise RemoteFailure(f"unexpected output {staged}")
        os.replace(staged, path)
    written = {}
    for path, data in result.outputs.items():
        if path not in call.outputs:
            raise RemoteFailure(f"unexpected output {path}")
        if speculative is not None:
            data = rewrite_buildid(data, *speculative)
        tmp = f"{path}.fgo-{uuid.uuid4().hex[:8]}"
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)
        written[path] = data
    return written


def rewrite_buildid(data: bytes, old: str, new: str) -> bytes:
    """DATA with every occurrence of build ID OLD replaced by NEW, in place (go's
    updateBuildID does the same): they must have the same length, and OLD must occur."""
    if len(old) != len(new):
        raise RemoteFailure(f"build IDs of different lengths ({len(old)} and {len(new)})")
    if old.encode() not in data:
        raise RemoteFailure("the speculative build ID is not in the output")
    return data.replace(old.encode(), new.encode())
