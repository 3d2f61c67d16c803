"""A split's leader run by the head itself, on one of its local slots.

The head has every input where go build put it (as for a race's local copy,
fgo.head.headrun), so its leader is the patched compiler on go's own command line, its
outputs written aside and moved into place by completion. Only the shards go to workers;
their results come to the head as they finish, into the directory the leader polls.
Against a leader on a worker this saves the package's sources to that worker, its archive
back (aws-sdk-go's service/ec2: 7.7 MB in, 64 MB out, half a second on a 1 Gb/s link) and
a worker's slot for the merge.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fgo import compilecall, toolchain
from fgo.compiler import flags as fgoflags
from fgo.compiler import leader
from fgo.fileio import file_sha256
from fgo.head.action import CompileAction
from fgo.wire import CompileResult, ShardPeer, ShardResult, Status

WORKER = "head"

# a shard's result from its worker; it stops waiting once the event is set (the leader ended)
Fetch = Callable[[ShardPeer, threading.Event], ShardResult]


class HeadLeader:
    """ACTION's leader of N processes (shards 1..N-1 on PEERS, fetched with FETCH)."""

    def __init__(self, action: CompileAction, n: int, compiler: str, plan: str,
                 timeout: float, peers: list[ShardPeer], fetch: Fetch,
                 lead_start: int | None = None) -> None:
        self.action = action
        self.n = n
        self.compiler = compiler
        self.plan = plan
        self.timeout = timeout
        self.peers = peers
        self.fetch = fetch
        self.lead_start = lead_start
        self.proc: Any = None
        self.lock = threading.Lock()
        self.cancelled = False
        self.ended = threading.Event()  # the leader's process has exited

    def cancel(self) -> None:
        """Stop it (a shard failed): its run answers SHARD_FAILED or CANCELLED."""
        with self.lock:
            self.cancelled = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

    def run(self) -> CompileResult:
        """The merged compile, its outputs staged beside go's paths (`delivered`); anything
        but OK leaves nothing behind."""
        call = self.action.parse()
        archive = _archive(call)
        # beside go's own output: go's $WORK, on the disk the compiler writes to anyway
        work = tempfile.mkdtemp(prefix="fgo-lead-", dir=os.path.dirname(archive) if archive else None)
        tag = uuid.uuid4().hex[:8]
        aside = {path: f"{path}.fgo-lead-{tag}" for path in call.outputs}
        try:
            return self._run(call, archive, work, aside)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, call: Any, archive: str | None, work: str,
             aside: dict[str, str]) -> CompileResult:
        files = {p.k: os.path.join(work, f"shard-{p.k}.res") for p in self.peers}
        plan, stats = os.path.join(work, "plan.txt"), os.path.join(work, "stats.json")
        Path(plan).write_text(self.plan)
        argv = fgoflags.with_flags(
            [self.compiler, *compilecall.with_outputs(call.args, call.cwd, aside)],
            fgoflags.leader_flags(self.n, [files[k] for k in sorted(files)], plan,
                                  timeout=int(self.timeout), stats=stats,
                                  lead_start=self.lead_start),
            compiler=self.compiler)
        started = time.time()
        with self.lock:
            if self.cancelled:
                return CompileResult(Status.CANCELLED, WORKER, reason="cancelled")
            self.proc = toolchain.start(argv, cwd=call.cwd, text=False, merge_output=True,
                                        env=toolchain.go_env({**os.environ,
                                                              **self.action.request.env}))
        fetched = leader.fetch_in_background(self.peers, files,
                                             lambda peer: self.fetch(peer, self.ended),
                                             self.ended.is_set, self.cancel)
        output, _ = self.proc.communicate()
        tool_done = time.time()
        self.ended.set()
        got = fetched()
        code = self.proc.returncode
        staged = {path: (a, os.path.getsize(a)) for path, a in aside.items()
                  if code == 0 and os.path.exists(a)}
        failure = _failure(self.cancelled, got.error, code, output or b"")
        if failure is None and archive is not None and archive not in staged:
            failure = Status.MERGE_REFUSED, "no archive written"
        if failure is not None:
            for a in aside.values():
                _remove(a)
            return CompileResult(failure[0], WORKER, reason=failure[1], exit=code or 0)
        return CompileResult(
            Status.OK, WORKER, exit=0, output=output or b"", delivered=staged,
            output_sha256=file_sha256(staged[archive][0]) if archive else None,
            stats=leader.stats(stats), shards=got.shards, shard_bytes=got.bytes,
            started=started, tool_start=started, tool_done=tool_done, returned=time.time())


def _failure(cancelled: bool, fetch_error: str | None, code: int | None,
             output: bytes) -> tuple[Status, str] | None:
    """Why a head-led split gives no archive (status, reason), or None: it merged."""
    if fetch_error:
        return Status.SHARD_FAILED, fetch_error
    if cancelled:
        return Status.CANCELLED, "cancelled"
    if code != 0:
        # a refused merge (exit 2) or a genuine compile error: go's own compile says which
        return Status.MERGE_REFUSED, leader.refusal(output)
    return None


def _archive(call: Any) -> str | None:
    """The absolute path of CALL's -o output, if it writes one."""
    out = compilecall.flag_value(call.args, "-o")
    return compilecall.absolute(call.cwd, out) if out else None


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
