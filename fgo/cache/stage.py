"""Staging: while go build runs, the bodies of the head's own compiles go to the workers that
will own their entries, so that the publish after the build sends signed records only.

A build publishes only once its verification found no mismatch, and that is after go build
ends: sending every body then put the whole transfer on the build's wall (a cold etcd
build: 260 MB, 4.9 s). A remote compile's archive is on its worker already (fgo.cache.held);
the bodies no worker holds (the head's own compiles', and those go appended assembly or
cgo objects to) are staged there meanwhile, a batch a second, as go puts
them. Staged is not published: a worker holds the body without an entry until a signed
record names it (fgo.cache.store.store_adopt), and drops it when it closes. Whatever was
not staged (small bodies, the last packages, a worker that did not answer) is sent at the
publish as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo import wire
from fgo.cache.local import DiskTier
from fgo.cache.tier import ClusterTier, batches, owner
from fgo.cluster import rpc
from fgo.cluster.deadline import Late, within
from fgo.fileio import LineTail

STAGE_EVERY_S = 1.0
MIN_BYTES = 16 << 10      # smaller bodies cost more in messages than at the publish
BATCH_BYTES = 8 << 20     # one message: 70 ms at 1 Gb/s
PART_BYTES = 4 << 20      # a body larger than this goes in parts of this size
STAGE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Put:
    action: str
    output: str
    size: int


def read_puts(lines: list[bytes]) -> list[Put]:
    """FGO_CACHE_PENDING's LINES as puts (a line that is not one is skipped)."""
    puts = []
    for line in lines:
        try:
            p = json.loads(line)
            puts.append(Put(str(p["action"]), str(p["output"]), int(p["size"])))
        except (ValueError, KeyError, TypeError):
            continue
    return puts


def to_stage(puts: list[Put], wanted: Callable[[str, int], bool], workers: list[str],
             staged: set[str]) -> dict[str, list[Put]]:
    """Of PUTS, what to stage, by the worker that will own each entry: bodies of at least
    MIN_BYTES that no worker holds (WANTED(action-ID prefix, size): a remote compile's
    archive is on its worker already, unless go appended to it), each once."""
    out: dict[str, list[Put]] = {}
    for p in puts:
        if p.size < MIN_BYTES or p.action in staged or not wanted(p.action[:30], p.size):
            continue
        w = owner(p.action, workers)
        if w is not None:
            out.setdefault(w, []).append(p)
    return out


async def _stage_direct(client: Any, worker: str, op: str, message: Any) -> Any:
    return await rpc.call(client.rpc, worker, op, message)


class Stager:
    """Stages the puts listed in PENDING (read from LOCAL) on TIER's workers, in a thread of
    its own, until `stop`."""

    def __init__(self, tier: ClusterTier, local: DiskTier, pending: Path,
                 wanted: Callable[[str, int], bool]) -> None:
        self.tier = tier
        self.local = local
        self.wanted = wanted
        self.staged: dict[str, str] = {}   # action -> the worker holding its body
        self.bytes = 0
        self._pending = LineTail(pending)
        self._failed: set[str] = set()     # workers that did not take a batch
        self._stop = threading.Event()
        self._flush = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="fgo-stage")

    def start(self) -> Stager:
        self._thread.start()
        return self

    def stop(self, flush: bool = False) -> dict[str, str]:
        """No more staging (a batch on its way finishes), after what go put since the last
        pass when FLUSH (the publish: its own sends would hold a large body whole); action
        -> worker of the staged."""
        self._flush = flush
        self._stop.set()
        self._thread.join()
        return dict(self.staged)

    def _run(self) -> None:
        try:
            workers = self.tier.workers()
        except Exception:
            return  # the publish sends everything, as it would have
        while not self._stop.wait(STAGE_EVERY_S):
            self._stage_new(workers)
        if self._flush:
            self._stage_new(workers, final=True)

    def _stage_new(self, workers: list[str], final: bool = False) -> None:
        puts = read_puts(self._pending.new_lines())
        live = [w for w in workers if not self._gone(w)]
        for worker, mine in to_stage(puts, self.wanted, live, set(self.staged)).items():
            for batch in batches([(p.action, p.size) for p in mine], BATCH_BYTES):
                if (self._stop.is_set() and not final) or self._gone(worker):
                    return
                chosen = [p for p in mine if p.action in set(batch)]
                for p in chosen:
                    if p.size > PART_BYTES:
                        self._send_parts(worker, p)
                self._send(worker, [p for p in chosen if p.size <= PART_BYTES])

    def _gone(self, worker: str) -> bool:
        """WORKER takes nothing more: it failed a call, or missed a deadline (of this
        staging, a publish or the build's probe)."""
        return worker in self._failed or worker in self.tier.late

    def _call(self, worker: str, op: str, message: Any) -> Any:
        """MESSAGE to WORKER's OP; None when it did not answer (nothing more goes there: its
        share is sent at the publish, unless it missed the deadline: then not even that)."""
        try:
            return within(STAGE_TIMEOUT_S, self.tier.client.sync, _stage_direct,
                          self.tier.client, worker, op, message, what=f"staging on {worker}",
                          abandon=lambda: worker in self.tier.late)
        except Late:
            self.tier.late.add(worker)
        except Exception:
            self._failed.add(worker)
        return None

    def _send(self, worker: str, puts: list[Put]) -> None:
        bodies, actions = {}, {}
        for p in puts:
            found = self.local.read(p.action, verify=False)  # the worker's adopt checks it
            if found is not None and found[0].output == p.output:
                bodies[p.output] = found[1]
                actions[p.action] = p.output
        if not bodies or not self._call(worker, wire.OP_CACHE_STAGE, wire.CacheStage(bodies)):
            return
        for action in actions:
            self.staged[action] = worker
        self.bytes += sum(map(len, bodies.values()))

    def _send_parts(self, worker: str, p: Put) -> None:
        """P's body, PART_BYTES at a time, read from the local tier as it goes."""
        entry = self.local.record(p.action)
        if entry is None or entry.output != p.output or entry.size != p.size:
            return
        try:
            with open(entry.path, "rb") as f:
                offset = 0
                while offset < p.size:
                    data = f.read(PART_BYTES)
                    if not data or self._gone(worker):
                        return
                    part = wire.CacheStagePart(p.output, offset, p.size, data)
                    if not self._call(worker, wire.OP_CACHE_STAGE_PART, part):
                        return
                    offset += len(data)
        except OSError:
            return
        self.staged[p.action] = worker
        self.bytes += p.size
