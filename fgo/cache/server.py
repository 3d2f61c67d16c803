"""`fgo cacheprog`: the GOCACHEPROG loop, the local tier in front of the cluster tier.

go starts this program, waits for its capabilities, then sends get/put/close requests,
several at a time. A get is answered from the local tier, else from the cluster tier (the
entry is written to the local tier first: go reads the file named by DiskPath). A put goes
to the local tier and is published to the cluster tier later: by `fgo build` once its
verification found no mismatch (the puts are listed in FGO_CACHE_PENDING), or, under a plain
go build, at close. The cluster tier is connected by the first request that needs it (a
local miss, a local entry a worker produced, a publish): a build the local tier answers
alone never imports Dask. The cluster tier is best effort: a request slower than the limit, or a
cluster that cannot be reached, turns it off for the rest of the process; every trouble
there is a miss, never a failed build.

The cluster tier is trusted only as far as the heads' signatures go (fgo.cache.trust): an
entry is used only when signed by a head and its body hashes to the signed output ID, and
no revocation covers it. A sampled share of the cluster hits a worker computed and no head
compared (`recheck`) is answered as a miss instead, so that go computes it again; its put
is compared with the signed output ID, and a difference revokes the entry and everything
its producer computed (at close under plain go, which computed it here; by fgo build after
its verification otherwise).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable

from fgo.cache import protocol, trust
from fgo.errors import FgoError
from fgo.cache.handover import (CHECK_AFTER_ENV, INDEX_ENV, OUTPUTS_ENV, PENDING_ENV,
                                REVOKED_ENV, STATS_ENV, WANT_ENV)
from fgo.cache.local import DiskTier, Entry
from fgo.cache.outputs import OutputPaths
from fgo.cache.protocol import Request, Response

if TYPE_CHECKING:  # (imported when used: fgo.wire's message classes cost a helper's start)
    from fgo import wire
    from fgo.wire import CacheRevocation

RECENT = 8                          # latencies the slowness rule looks at
GRACE_S = 300.0                     # entries used this recently may be another go's files


# ------------------------------------------------------------------ decisions (pure)

def remote_verdict(latencies: list[float], limit: float) -> str | None:
    """Why to stop asking the cluster tier, or None to keep going: its last request took
    longer than LIMIT, or the median of its recent ones more than a quarter of LIMIT (a
    tier that slow saves less than the requests cost: go waits for each answer)."""
    if latencies and latencies[-1] > limit:
        return f"a request took {latencies[-1]:.2f}s (limit {limit:g}s)"
    recent = latencies[-RECENT:]
    if len(recent) >= RECENT and statistics.median(recent) > limit / 4:
        return f"median request {statistics.median(recent):.2f}s (limit {limit:g}s / 4)"
    return None


def miss_waits_for_tier(local_hits: int) -> bool:
    """Whether a miss waits for the cluster tier still connecting (and, under an fgo build
    head that connects on demand, asks for it). While every get so far missed (a cold
    build: its first packages are the most depended on), yes. Once the local tier answered
    one (a warm cache: a rebuild's misses are mostly the developer's own edits, which no one
    else built), the miss is answered at once and go compiles; later misses use the tier
    once something connected it (a pull of many changes: its compiles overflow the head's
    slots to the workers)."""
    return local_hits == 0


# ------------------------------------------------------------------ counters

@dataclass
class Counters:
    gets: int = 0
    local_hits: int = 0
    remote_hits: int = 0
    misses: int = 0
    puts: int = 0
    spilled: int = 0             # bodies the local tier could not take (a full disk)
    put_errors: int = 0
    bytes_fetched: int = 0
    fetch_s: float = 0.0         # time spent getting entries from the cluster tier
    saved_s: float = 0.0         # compile seconds of the remote hits, less fetch_s
    remote: str = "off"          # off | unused (never needed) | connecting | ready | skipped: WHY
    inline: int = 0              # local hits the reader answered itself
    front: int = 0               # local hits the front answered before this process
                                 # (fgo.cache.front: go's gets until one it could not)
    front_misses: int = 0        # misses the front answered (the first after hits)
    front_puts: int = 0          # puts the front stored in the local tier
    checked_after: int = 0       # hits of workers' local entries answered without waiting
                                 # for the cluster's revocations (the head checks them)
    connected: bool = False      # a client of its own (under fgo build: only once a get
                                 # needed an entry the head's index names)
    indexed: int = 0             # entries of this toolchain in the cluster tier at start
    published: int = 0
    bytes_published: int = 0
    publish_s: float = 0.0
    trimmed: int = 0
    reused: int = 0              # puts whose body the local tier held already (not decoded)
    from_files: int = 0          # puts whose body was go's file, linked or read (not decoded)
    forged: int = 0              # cluster entries whose signature did not verify: not used
    altered: int = 0             # signed, but the body hashed to another output ID: not used
    refused: int = 0             # entries a revocation covers: not used
    rechecked: int = 0           # cluster hits answered as a miss, to compare go's own put
    recheck_matched: int = 0     # ... whose put had the signed output ID
    recheck_mismatched: list[dict[str, Any]] = field(default_factory=list)
    revoked: int = 0             # revocations this process sent (entries and producers)
    revoked_entries: int = 0     # entries they removed from the workers' disks
    stamp_later: int = 0         # entries written here, left to the front's stamper at close
    latencies: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("latencies")
        out["fetch_s"] = round(self.fetch_s, 3)
        out["saved_s"] = round(self.saved_s, 3)
        out["publish_s"] = round(self.publish_s, 3)
        return out


# ------------------------------------------------------------------ the server

class Server:
    """Serves one go process on IN/OUT. REMOTE() connects the cluster tier (a ClusterTier
    with its index loaded) or raises; None: local tier only."""

    def __init__(self, local: DiskTier, remote: Callable[[], Any] | None, limit: float,
                 size_limit: int, pending: Path | None = None, stats: Path | None = None,
                 threads: int = 4, key: bytes | None = None, recheck: float = 0.0,
                 secret: bytes | None = None, outputs: Path | None = None,
                 want: Callable[[], None] | None = None,
                 check_after: Path | None = None, revocations_current: bool = False,
                 stamp_later: Callable[[Path, list[str]], bool] | None = None) -> None:
        self.local = local
        # at close: what hashes and stamps the bodies written here (fgo.cache.front.stamp_later)
        self.stamp_later = stamp_later
        # fgo build asked the cluster's beacon: the revocations kept beside the local tier
        # are all the cluster's (fgo.cluster.beacon), so a worker's entry needs no wait
        self.revocations_current = revocations_current
        # fgo build checks the workers' hits logged here against the cluster's revocations
        # before it links (trust.revoked_in_use): a hit need not wait for them
        self.check_after: IO[str] | None = None
        if check_after is not None:
            try:
                self.check_after = open(check_after, "a", encoding="ascii")
            except OSError:
                pass  # then a worker's hit waits for the revocations, as under plain go
        self.want = want  # asks fgo build's head to connect (its doorbell), for a get that waits
        self.outputs = OutputPaths(outputs)    # the compiles' -o files, as the head lists them
        self.hashed: set[str] = set()           # actions whose put body `known` hashed
        self.linked: set[str] = set()           # actions whose put `known` linked in
        self.key = key
        self.recheck = recheck
        self.secret = secret if secret is not None else trust.new_secret()
        self.revoked = trust.Revoked()           # what no get may answer with
        self.rechecks: dict[str, tuple[wire.CacheEntry, str]] = {}  # action -> (signed, holder)
        self._load_local_revocations()
        self.limit = limit
        self.size_limit = size_limit
        self.pending = pending
        self.stats_path = stats
        self.counters = Counters()
        self.lock = threading.Lock()            # guards counters, used, puts
        self.write_lock = threading.Lock()      # one response at a time on go's stdin
        self.used: set[str] = set()             # entries this process handed to go
        self.puts: list[Entry] = []
        self.front_written: list[str] = []      # the front's puts and their bytes (`adopt`)
        self.front_added = 0
        self.fetched: list[str] = []            # actions fetched into the local tier
        self.spilled: dict[str, Entry] = {}     # action -> a body kept only until close
        self.spill_dir: Path | None = None
        self.tier: Any = None                   # the ClusterTier once ready
        self.ready = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="fgo-cache")
        self.started = time.monotonic()
        self.remote = remote                    # connected by the first request needing it
        if remote is not None:
            self.counters.remote = "unused"
        else:
            self.ready.set()

    def adopt(self, taken: Any) -> None:
        """Carry on from the cacheprog front that served go until now (TAKEN, its
        fgo.cache.front.Handoff): its counts, and its puts (kept from the trim, stamped)."""
        c = self.counters
        c.gets, c.local_hits, c.front = taken.gets, taken.local_hits, taken.front
        c.checked_after, c.reused = taken.checked_after, taken.reused
        c.misses = c.front_misses = taken.misses
        c.puts = c.front_puts = len(taken.written)
        self.front_written, self.front_added = list(taken.written), taken.added

    # --- the cluster tier ---

    def _need_remote(self) -> None:
        """Start connecting the cluster tier (once). Not at the start: a build whose every
        get the local tier answers (a no-op) then never imports Dask, which beside the
        answers cost a no-op more than go's own no-op takes."""
        with self.lock:
            if self.remote is None or self.counters.remote != "unused":
                return
            self.counters.remote = "connecting"
            self.started = time.monotonic()
        threading.Thread(target=self._connect, args=(self.remote,), daemon=True,
                         name="fgo-cache-connect").start()

    def _connect(self, remote: Callable[[], Any]) -> None:
        try:
            tier = remote()
        except Exception as exc:
            self._skip(f"unreachable: {type(exc).__name__}: {exc}")
        else:
            with self.lock:
                if self.counters.remote == "connecting":
                    self.tier = tier
                    self.counters.remote = "ready"
                    self.counters.connected = getattr(tier, "client", None) is not None
                    self.counters.indexed = len(tier.where)
                    self.counters.forged += tier.forged
                    self.counters.refused += tier.refused
                    # a new object, not changed in place: gets read it without the lock
                    self.revoked = trust.Revoked(self.revoked.entries | tier.revoked.entries,
                                                 self.revoked.producers |
                                                 tier.revoked.producers)
            self._keep(tier.revocations)
        self.ready.set()

    def _keep(self, revocations: list[CacheRevocation]) -> None:
        """A copy beside the local tier of what the workers keep: this head knows it even
        if every worker lost it, and fgo build publishes nothing a revoked worker made."""
        from fgo import wire
        try:
            self.local.keep_revocations([wire.encode(r) for r in revocations])
        except OSError:
            pass

    def _load_local_revocations(self) -> None:
        """The revocations this head keeps beside its local tier (signed ones only)."""
        if self.key is None:
            return
        kept = self.local.revocations()
        if not kept:
            return
        from fgo import wire
        for data in kept:
            try:
                r = wire.decode(data, wire.CacheRevocation)
            except wire.ProtocolMismatch:
                continue
            if trust.revocation_signed(self.key, self.local.root.name, r):
                self.revoked.add(r)

    def _skip(self, why: str) -> None:
        with self.lock:
            if not self.counters.remote.startswith("skipped"):
                self.counters.remote = f"skipped: {why}"
            self.tier = None

    def _remote_tier(self, patience: float | None = None) -> Any:
        """The cluster tier, waiting for it while it connects (within the limit; within
        PATIENCE too when given, and then without giving up on it)."""
        self._need_remote()
        if not self.ready.is_set() and patience != 0.0 and self.want is not None:
            self.want()  # a head that connects on demand: worth it for a get that waits
        if not self.ready.is_set():
            # the index is worth waiting for at the start: the first packages are the
            # most depended on; past the limit, go on without it.
            budget = max(0.0, self.started + 10 * self.limit - time.monotonic())
            if patience is not None:
                self.ready.wait(min(budget, patience))
            elif not self.ready.wait(budget):
                self._skip(f"not connected within {10 * self.limit:g}s")
        return self.tier

    def _fetch(self, action: str) -> Entry | None:
        with self.lock:
            waits = miss_waits_for_tier(self.counters.local_hits)
        tier = self._remote_tier(None if waits else 0.0)
        if tier is None or action not in tier.where:
            return None
        signed = tier.records[action]
        if trust.recheck_wanted(self.secret, signed, self.recheck):
            # go computes it again; its put is compared with the signed output ID
            holder = tier.where.get(action, "")
            tier.forget(action)
            with self.lock:
                self.rechecks[action] = (signed, holder)
                self.counters.rechecked += 1
            return None
        try:  # a helper given its head's index connects at its first use of the cluster
            if getattr(tier, "ensure_client", None) and tier.ensure_client():
                with self.lock:
                    self.counters.connected = True
        except Exception as exc:
            self._skip(f"unreachable: {type(exc).__name__}: {exc}")
            return None
        t0 = time.monotonic()
        try:
            fetched = tier.get(action, self.limit)
        except Exception as exc:
            self._skip(str(exc))
            return None
        took = time.monotonic() - t0
        with self.lock:
            self.counters.latencies.append(took)
            del self.counters.latencies[:-RECENT]
            self.counters.fetch_s += took
            why = remote_verdict(self.counters.latencies, self.limit)
            if fetched.why in ("forged", "altered"):
                setattr(self.counters, fetched.why, getattr(self.counters, fetched.why) + 1)
        if why:
            self._skip(why)
        found = fetched.entry
        if found is None:
            return None
        try:
            entry = self._store(action, found.output, found.body, found)
        except (OSError, ValueError):
            return None  # no disk at all: go cannot be given a file, so a miss
        with self.lock:
            if action not in self.spilled:
                self.fetched.append(action)
            self.counters.remote_hits += 1
            self.counters.bytes_fetched += len(found.body)
            if found.seconds:  # known only for entries fgo build published
                self.counters.saved_s += found.seconds - took
        return entry

    # --- requests ---

    def _store(self, action: str, output: str, body: bytes,
               signed: wire.CacheEntry | None = None, hashed: bool = False) -> Entry:
        """BODY in the local tier (with SIGNED's fields, for an entry of the cluster tier:
        a later revocation of its producer then reaches it here too); when that disk
        refuses it, in a spill directory kept only until close: go needs a file for every
        put (its module index reads back what it put, and fails without it), the cache
        just does not keep it."""
        try:
            if signed is None:
                return self.local.put(action, output, body, hashed=hashed)
            return self.local.put(action, output, body, signed.put_time, signed.seconds,
                                  signed.producer, signed.checked, signed.signature)
        except OSError:
            pass
        with self.lock:
            if self.spill_dir is None:
                self.spill_dir = Path(tempfile.mkdtemp(prefix="fgo-cacheprog-"))
            path = self.spill_dir / f"{action}-d"
            path.write_bytes(body)
            entry = Entry(action, output, len(body), time.time(), path)
            self.spilled[action] = entry
            self.counters.spilled += 1
            return entry

    def local_get(self, req: Request) -> Response | None:
        """GET's answer when the local tier holds a usable entry and no cluster request is
        needed for it, else None (`get` answers it, on a thread). The reader answers these
        itself: a no-op build's hundreds of gets need no thread hand-off."""
        entry = self._local_entry(req.action_id.hex())
        if entry is None or trust.from_workers(entry.producer) and not self.ready.is_set() \
                and self._waits_for_revocations():
            return None
        return self._answer_local(req, entry)

    def _local_entry(self, action: str) -> Entry | None:
        """ACTION's entry spilled by this process, else in the local tier."""
        with self.lock:
            entry = self.spilled.get(action)
        return entry or self.local.get(action)

    def get(self, req: Request) -> Response:
        entry = self._local_entry(req.action_id.hex())
        if entry is not None and trust.from_workers(entry.producer) \
                and self._waits_for_revocations():
            # a worker's entry: the cluster's revocations may cover it, worth a short wait
            # (a cluster that does not answer leaves the ones this head keeps)
            self._remote_tier(patience=self.limit)
        if entry is not None:
            return self._answer_local(req, entry) or self._answer_fetched(req)
        return self._answer_fetched(req)

    def _waits_for_revocations(self) -> bool:
        """Whether a worker's entry waits for the cluster's revocations: not under an fgo
        build whose head knows its kept ones are current, or checks the hits afterwards."""
        return not self.revocations_current and self.check_after is None

    def _answer_local(self, req: Request, entry: Entry) -> Response | None:
        """ENTRY's hit, or None when a revocation covers it (then it is removed)."""
        action = req.action_id.hex()
        if self.revoked.covers(action, entry.output, entry.producer):
            self.local.remove(action)  # fetched before a head revoked it
            with self.lock:
                self.counters.refused += 1
            return None
        with self.lock:
            if self.check_after is not None and trust.from_workers(entry.producer) \
                    and not self._log_check_after(action, entry):
                return None  # unlogged, it would go unchecked: a miss, go computes it
            self.counters.local_hits += 1
        return self._respond(req, entry)

    def _log_check_after(self, action: str, entry: Entry) -> bool:
        """Log a worker's hit for the head's check (under self.lock), before go has it."""
        assert self.check_after is not None
        try:
            self.check_after.write(trust.used_line(action, entry.output, entry.producer))
            self.check_after.flush()
        except OSError:
            return False
        self.counters.checked_after += 1
        return True

    def _answer_fetched(self, req: Request) -> Response:
        action = req.action_id.hex()
        entry = self._fetch(action)
        return self._respond(req, entry)

    def _respond(self, req: Request, entry: Entry | None) -> Response:
        """The answer to a get: ENTRY, or a miss when None."""
        action = req.action_id.hex()
        with self.lock:
            self.counters.gets += 1
            if entry is None:
                self.counters.misses += 1
                return Response(req.id, miss=True)
            self.used.add(action)
        return Response(req.id, output_id=bytes.fromhex(entry.output), size=entry.size,
                        time=entry.put_time, disk_path=str(entry.path))

    def known(self, action_id: bytes, output_id: bytes, size: int) -> bool | bytes:
        """Whether the local tier holds ACTION_ID's entry with this output ID and size, or
        else the body itself from the file go put it from (fgo.cache.outputs): go's put
        then needs no decoding (protocol.read_request)."""
        try:
            entry = self.local.get(action_id.hex(), verify=False)
        except ValueError:
            entry = None
        if entry is not None and entry.output == output_id.hex() and entry.size == size:
            return True
        path = self.outputs.path(action_id, size)
        if path is not None:
            try:  # no copy: 166 MB of a cold etcd build's writes, a second of the head's core
                self.local.put_link(action_id.hex(), output_id.hex(), path)
            except (OSError, ValueError):
                pass  # another filesystem, or not that body: read it, as below
            else:
                with self.lock:
                    self.counters.from_files += 1
                    self.linked.add(action_id.hex())
                return True
        body = self.outputs.body(action_id, output_id, size)
        if body is None:
            return False
        with self.lock:
            self.counters.from_files += 1
            self.hashed.add(action_id.hex())  # its put need not hash it again
        return body

    def put(self, req: Request) -> Response:
        action, output = req.action_id.hex(), req.output_id.hex()
        try:
            if req.reused:
                entry = self.local.get(action, verify=False)
                if entry is None or entry.output != output:
                    raise OSError("the entry went away while go sent it again")
            else:
                with self.lock:
                    hashed = action in self.hashed
                    self.hashed.discard(action)
                entry = self._store(action, output, req.body, hashed=hashed)
        except (OSError, ValueError) as exc:
            # go carries on without the cache entry (it keeps the file it built)
            with self.lock:
                self.counters.put_errors += 1
            return Response(req.id, err=f"fgo cacheprog: cannot store {action[:12]}: {exc}")
        with self.lock:
            self.counters.puts += 1
            if action in self.linked:  # linked by `known`: counted there
                self.linked.discard(action)
            else:
                self.counters.reused += req.reused
            self.used.add(action)
            self._compare(action, output)
            if action in self.spilled:  # not in the cache: nothing to publish
                return Response(req.id, disk_path=str(entry.path))
            self.puts.append(entry)
            if self.pending is not None:
                with open(self.pending, "a") as f:
                    f.write(json.dumps({"action": action, "output": output,
                                        "size": entry.size}) + "\n")
        return Response(req.id, disk_path=str(entry.path))

    def _compare(self, action: str, output: str) -> None:
        """go's put of an entry it was told was a miss for a re-check (under self.lock)."""
        found = self.rechecks.pop(action, None)
        if found is None:
            return
        signed, holder = found
        if signed.output == output:
            self.counters.recheck_matched += 1
            return
        self.counters.recheck_mismatched.append({
            "action": action, "producer": signed.producer, "holder": holder,
            "signed_output": signed.output, "output": output})

    def close(self) -> None:
        """The end of go's build: publish (plain go build), trim the local tier, write the
        counters."""
        self.pool.shutdown(wait=True)
        if self.pending is None and (self.puts or self.counters.recheck_mismatched):
            tier = self._remote_tier()
            if tier is not None and self.key is not None:
                # go computed every put here: its word against a worker's is the head's
                self.revoke(tier, trust.recheck_revocations(
                    self.key, tier.ns, self.counters.recheck_mismatched, time.time()))
                from fgo.cache.publish import publish_entries
                t0 = time.monotonic()
                n, size, _ = publish_entries(tier, self.local, [e.action for e in self.puts],
                                             self.key, revoked=tier.revoked)
                self.counters.published, self.counters.bytes_published = n, size
                self.counters.publish_s = time.monotonic() - t0
        # what fgo build has yet to publish stays until a later trim
        written = self.front_written + [e.action for e in self.puts]
        keep = set(written) if self.pending is not None else set()
        added = sum(e.size for e in self.puts) + self.front_added + self.counters.bytes_fetched
        self.counters.trimmed = len(self.local.trim_if_due(self.size_limit, GRACE_S,
                                                           frozenset(self.used - keep), added))
        if self.spill_dir is not None:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
        written += self.fetched
        if self.stamp_later is not None and self.stamp_later(self.local.root, written):
            self.counters.stamp_later = len(written)
        if self.stats_path is not None:
            try:
                self.stats_path.write_text(json.dumps(self.counters.to_json()))
            except OSError:
                pass

    def revoke(self, tier: Any, revocations: list[CacheRevocation]) -> None:
        """REVOCATIONS to every worker and beside the local tier (a head's own copy)."""
        if not revocations:
            return
        self._keep(revocations)
        removed = tier.revoke(revocations, max(5.0, 5 * self.limit))
        with self.lock:
            self.counters.revoked += len(revocations)
            self.counters.revoked_entries += removed

    # --- the loop ---

    def serve(self, stdin: IO[bytes], stdout: IO[bytes], greet: bool = True) -> None:
        """Answer go's requests until its close (GREET: first the commands this helper
        knows; not when the cacheprog front greeted go already)."""
        if greet:
            self._send(stdout, Response(0, known_commands=protocol.COMMANDS))
        while True:
            try:
                req = protocol.read_request(stdin, self.known)
            except protocol.ProtocolError as exc:
                self.close()
                raise FgoError(f"go sent a request fgo cannot read: {exc}",
                               prefix="fgo cacheprog") from None
            if req is None:  # go went away without a close
                self.close()
                return
            if req.command == "close":
                self.close()
                self._send(stdout, Response(req.id))
                return
            if req.command == "get" and (resp := self._inline(req)) is not None:
                self._send(stdout, resp)
                continue
            handler = {"get": self.get, "put": self.put}.get(req.command)
            if handler is None:
                self._send(stdout, Response(req.id, err=f"unknown command {req.command!r}"))
                continue
            self.pool.submit(self._answer, stdout, handler, req)

    def _inline(self, req: Request) -> Response | None:
        """`local_get` on the reader; None (the thread's `get` answers) if it fails."""
        try:
            resp = self.local_get(req)
        except Exception:  # noqa: BLE001 - the full path answers, and reports, it
            return None
        if resp is not None:
            with self.lock:
                self.counters.inline += 1
        return resp

    def _answer(self, stdout: IO[bytes], handler: Callable[[Request], Response],
                req: Request) -> None:
        try:
            resp = handler(req)
        except Exception as exc:  # a bug of ours must not hang go: it waits for every ID
            resp = Response(req.id, miss=req.command == "get",
                            err="" if req.command == "get" else f"fgo cacheprog: {exc}")
            print(f"fgo cacheprog: {req.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        self._send(stdout, resp)

    def _send(self, stdout: IO[bytes], resp: Response) -> None:
        data = protocol.encode_response(resp)
        with self.write_lock:
            stdout.write(data)
            stdout.flush()


def environ_paths() -> tuple[Path | None, Path | None]:
    """FGO_CACHE_PENDING and FGO_CACHE_STATS, as fgo build sets them for its go build."""
    pending, stats = os.environ.get(PENDING_ENV), os.environ.get(STATS_ENV)
    return (Path(pending) if pending else None, Path(stats) if stats else None)


def environ_index() -> Path | None:
    """FGO_CACHE_INDEX, as fgo build sets it: the cluster tier's index it read at its start
    (fgo.cache.tier.save_index), so that this helper need not ask the workers itself."""
    value = os.environ.get(INDEX_ENV)
    return Path(value) if value else None


def environ_want() -> Path | None:
    """FGO_CACHE_WANT, as fgo build sets it: the doorbell (fgo.fileio.Doorbell) to ring
    when the cluster tier is first needed, as its head connects only on demand."""
    value = os.environ.get(WANT_ENV)
    return Path(value) if value else None


def environ_check_after() -> Path | None:
    """FGO_CACHE_CHECK_AFTER, as fgo build sets it: where to log the workers' hits its head
    checks against the cluster's revocations (trust.used_line)."""
    value = os.environ.get(CHECK_AFTER_ENV)
    return Path(value) if value else None


def environ_revoked() -> Path | None:
    """FGO_CACHE_REVOKED, as fgo build sets it when its kept revocations are current: the
    list of them it made for the front (this helper reads its own from the local tier)."""
    value = os.environ.get(REVOKED_ENV)
    return Path(value) if value else None


def environ_outputs() -> Path | None:
    """FGO_CACHE_OUTPUTS, as fgo build sets it: where its compiles' -o files are listed."""
    value = os.environ.get(OUTPUTS_ENV)
    return Path(value) if value else None
