"""The cluster tier: cache entries held on the workers' disks, reached by direct worker RPC.

An entry lives on one worker, chosen by rendezvous hashing of its action ID over the sorted
worker addresses (a worker joining or leaving moves only its own share). Entries are filed
under a namespace naming the exact toolchain (Go version and compiler hash), so a head with
another toolchain never sees them. The head loads every worker's index of its namespace
once (one round trip to all workers), so a miss costs no request at all, and a get asks
only the worker that holds the entry. Workers never write entries of their own accord:
`store_put` runs only when a head node publishes.

Workers are not trusted with what a head uses (fgo.cache.trust): an entry of the index
counts only when the publishing head's signature over it verifies and no revocation any
worker keeps covers it; a fetched entry only when its fields are the index's, signed, and
its body hashes to the signed output ID. Anything else is a miss, counted as forged (the
signature does not verify) or altered (signed, but the body is another), and a damaged
body is removed from its worker.

This module is the head's side; the worker's (`store_*`) is fgo.cache.store. A publish
goes straight to the cache handlers of fgo's worker service: a wire.CachePut with the
bodies, or, for a body the worker holds (an archive it compiled, or one the head staged
there while the build ran), a wire.CacheAdopt naming it; the index and gets go through
Client.run, answered as plain data.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo import wire
from fgo.cache import trust
from fgo.cache.store import (store_drop, store_get, store_index, store_put, store_revoke,
                             store_stats)
from fgo.cluster import rpc
from fgo.cluster.deadline import Late, LateWorkers, within
from fgo.wire import CacheEntry, CacheIndex, CacheRevocation, HeldEntry

# ------------------------------------------------------------------ decisions (pure)

def owner(action: str, workers: list[str]) -> str | None:
    """The worker that holds ACTION: rendezvous (highest random weight) hashing."""
    if not workers:
        return None
    return max(sorted(workers),
               key=lambda w: hashlib.sha256(f"{w}\0{action}".encode()).digest())


def batches(items: list[tuple[str, int]], max_bytes: int) -> list[list[str]]:
    """ITEMS (key, size) in order, cut into batches of at most MAX_BYTES (an item larger
    than that is a batch of its own)."""
    out: list[list[str]] = []
    size = 0
    for key, n in items:
        if not out or size + n > max_bytes:
            out.append([])
            size = 0
        out[-1].append(key)
        size += n
    return out


# ------------------------------------------------------------------ head side

async def _put_direct(client: Any, worker: str, ns: str, entries: list[CacheEntry]) -> int:
    """ENTRIES to WORKER's cache handler (fgo.worker.service), straight over one
    connection: Client.run would pass every body through the scheduler (a cold etcd
    build publishes 259 MB), often on the head's own host."""
    return int(await rpc.call(client.rpc, worker, wire.OP_CACHE_PUT, wire.CachePut(ns, entries)))


async def _adopt_direct(client: Any, worker: str, ns: str, held: list[HeldEntry]) -> list[str]:
    """HELD to WORKER's adopt handler: the actions it stored from the bodies it holds."""
    got = await rpc.call(client.rpc, worker, wire.OP_CACHE_ADOPT, wire.CacheAdopt(ns, held))
    return [str(a) for a in got] if isinstance(got, (list, tuple)) else []  # msgpack: a tuple


class RemoteError(Exception):
    """The cluster tier did not answer in time, or not at all."""


@dataclass(frozen=True)
class Fetched:
    """What a get found: ENTRY (checked), or None and WHY ("gone", "forged", "altered")."""

    entry: CacheEntry | None
    why: str = ""


def save_index(found: dict[str, Any] | None, path: Path) -> None:
    """FOUND (fetch_index's answers) in a file, for a helper to load with
    ClusterTier.from_file instead of asking the workers itself (an exception a worker
    answered with is kept as None: that share is a miss). None: no index was read (the
    helper asks the workers itself)."""
    import msgpack  # type: ignore[import-untyped]
    from fgo.fileio import write_atomically
    plain = None if found is None else \
        {w: None if isinstance(a, BaseException) else a for w, a in found.items()}
    write_atomically(path, msgpack.packb(plain, use_bin_type=True))


def fetch_index(client: Any, ns: str, timeout: float) -> dict[str, Any]:
    """Every worker's share of NS (worker -> a plain CacheIndex, or the exception it
    raised); RemoteError when the cluster does not answer within TIMEOUT."""
    try:
        return client.run(store_index, ns, on_error="return", callback_timeout=timeout)
    except Exception as exc:
        raise RemoteError(f"index: {type(exc).__name__}: {exc}") from None


def decode_shares(found: dict[str, Any]) -> dict[str, CacheIndex]:
    """FOUND's answers (worker -> a plain CacheIndex) decoded, by worker; a share of another
    protocol version (gone, or another fgo) is left out: a miss."""
    shares: dict[str, CacheIndex] = {}
    for worker, data in sorted(found.items()):
        try:
            shares[worker] = wire.decode(data, CacheIndex)
        except wire.ProtocolMismatch:
            continue
    return shares


def signed_revocations(shares: dict[str, CacheIndex], ns: str,
                       key: bytes | None) -> list[CacheRevocation]:
    """The revocations the SHARES keep that a head signed with KEY (none without a key)."""
    if key is None:
        return []
    return [r for share in shares.values() for r in share.revoked
            if trust.revocation_signed(key, ns, r)]


class ClusterTier:
    """The head's view of the cluster tier of one namespace (a distributed.Client). KEY:
    the heads' cache key (None: nothing of the cluster tier is trusted, every entry is a
    miss; only for publishing to a namespace no head reads, as in tests). LATE: the
    workers this build found unresponsive, shared with whoever else finds them; the tier
    adds those that miss a deadline of its own, and sends them nothing more."""

    def __init__(self, client: Any, ns: str, key: bytes | None = None,
                 late: LateWorkers | None = None) -> None:
        self.client = client
        self.connector: Callable[[], Any] | None = None  # makes `client` when it is None
        self._connecting = threading.Lock()
        self.ns = ns
        self.key = key
        self.late = late if late is not None else LateWorkers()
        self.where: dict[str, str] = {}         # action -> worker, from the index
        self.records: dict[str, CacheEntry] = {}  # action -> its signed fields (no body)
        self.revoked = trust.Revoked()
        self.revocations: list[CacheRevocation] = []  # the signed ones the workers keep
        self.forged = 0         # index entries whose signature did not verify
        self.refused = 0        # index entries a revocation covers (kept by some worker)

    def ensure_client(self) -> bool:
        """A client, made by `connector` the first time one is needed (a tier loaded
        `from_file` has none); whether this call made it. Raises what the connector does."""
        with self._connecting:
            if self.client is not None or self.connector is None:
                return False
            self.client = self.connector()
            return True

    def workers(self, timeout: float = 5.0) -> list[str]:
        return sorted(within(timeout, self.client.scheduler_info, n_workers=-1,
                             what="the scheduler's worker list")["workers"])

    def load_index(self, timeout: float) -> int:
        """Learn which worker holds which entry of the namespace: the number of entries a
        head may use (signed, and no worker keeps a revocation covering it)."""
        return self.index_from(fetch_index(self.client, self.ns, timeout))

    def index_from(self, found: dict[str, Any]) -> int:
        """`load_index` from FOUND, the workers' answers (worker -> plain CacheIndex), as
        fetch_index gives them."""
        shares = decode_shares(found)
        # every worker's revocations count for all entries
        for r in signed_revocations(shares, self.ns, self.key):
            self.revoked.add(r)
            self.revocations.append(r)
        for worker, share in shares.items():
            for e in share.entries:
                verdict = trust.index_verdict(self.key, self.ns, e, self.revoked)
                if verdict == "forged":
                    self.forged += 1
                elif verdict == "refused":
                    self.refused += 1
                else:
                    self.where[e.action] = worker
                    self.records[e.action] = e
        return len(self.where)

    @classmethod
    def from_file(cls, path: Path, ns: str, key: bytes | None) -> ClusterTier:
        """A tier without a client whose index is the snapshot at PATH (OSError, ValueError
        when it cannot be read): what a helper under fgo build knows of the cluster without
        importing Dask. Give it a `connector` for the first get of an entry it holds."""
        import msgpack  # type: ignore[import-untyped]
        found = msgpack.unpackb(path.read_bytes(), raw=False)  # its errors are ValueErrors
        if not isinstance(found, dict):
            raise ValueError(f"{path} holds no index")
        tier = cls(None, ns, key)
        tier.index_from(found)
        return tier

    def get(self, action: str, timeout: float) -> Fetched:
        """The entry of ACTION, checked; RemoteError when its worker does not answer
        within TIMEOUT."""
        worker, signed = self.where.get(action), self.records.get(action)
        if worker is None or signed is None:
            return Fetched(None, "gone")
        try:
            got = self.client.run(store_get, self.ns, action, workers=[worker],
                                  on_error="raise", callback_timeout=timeout)
        except Exception as exc:
            self.forget(action)
            raise RemoteError(f"get from {worker}: {type(exc).__name__}: {exc}") from None
        self.forget(action)  # asked once: a second get of it is go's, answered locally
        try:
            found = wire.decode(got.get(worker), CacheEntry) if got.get(worker) else None
        except wire.ProtocolMismatch:
            return Fetched(None, "forged")
        if found is None:
            return Fetched(None, "gone")
        verdict = trust.fetched_verdict(self.key, self.ns, signed, found)
        if verdict == "altered":
            self._drop(worker, action, found.output)
        return Fetched(found) if verdict == "usable" else Fetched(None, verdict)

    def forget(self, action: str) -> None:
        self.where.pop(action, None)

    def _drop(self, worker: str, action: str, output: str) -> None:
        """Ask WORKER to remove ACTION's damaged entry (not waited for: a miss either way)."""
        try:
            self.client.run(store_drop, self.ns, action, output, workers=[worker], wait=False)
        except Exception:
            pass

    def revoke(self, revocations: list[CacheRevocation], timeout: float) -> int:
        """Send REVOCATIONS to every worker, each to keep them and remove the entries they
        name: the entries removed (a worker that does not answer keeps its copies; every
        other worker's revocations still cover them for every head)."""
        if not revocations:
            return 0
        for r in revocations:
            self.revoked.add(r)
        data = [wire.encode(r) for r in revocations]
        try:
            got = within(timeout, self.client.run, store_revoke, self.ns, data,
                         on_error="return", what="revoking cache entries")
        except Exception:
            got = {}
        self._renew_beacon(timeout)
        return sum(v for v in got.values() if isinstance(v, int))

    def _renew_beacon(self, timeout: float) -> None:
        """After the workers have the revocations (or were asked): a new beacon token, so
        that no head takes the revocations it keeps for the cluster's any more
        (fgo.cluster.beacon)."""
        from fgo.cluster import beacon
        try:
            within(timeout, self.client.run_on_scheduler, beacon.renew,
                   what="renewing the revocation beacon")
        except Exception:  # noqa: BLE001 - no beacon there (or it did not answer)
            pass

    def put_many(self, entries: list[CacheEntry], timeout: float,
                 batch_bytes: int = 32 << 20, skip: frozenset[str] = frozenset(),
                 load: Callable[[CacheEntry], CacheEntry | None] | None = None) -> int:
        """Publish ENTRIES to their owners, all owners at once (each has its own link and
        disk), none to the workers in SKIP (known not to answer); how many were stored.
        With LOAD, ENTRIES are stubs (`size` set, no body) that LOAD turns into what is sent
        (None: left out) one batch at a time: the head then holds a batch per owner, not
        every output of the build (a wide build's 283 MB)."""
        workers = self.workers()
        skip = skip | self.late.snapshot()
        by_owner: dict[str, list[CacheEntry]] = {}
        for e in entries:
            w = owner(e.action, workers)
            if w is not None and w not in skip:
                by_owner.setdefault(w, []).append(e)
        if not by_owner:
            return 0
        with concurrent.futures.ThreadPoolExecutor(len(by_owner),
                                                   thread_name_prefix="fgo-publish") as pool:
            return sum(pool.map(lambda item: self._put_to(*item, timeout, batch_bytes, load),
                                sorted(by_owner.items())))

    def adopt_many(self, held: dict[str, list[HeldEntry]], timeout: float,
                   batch_bytes: int = 256 << 20) -> set[str]:
        """Entries each worker of HELD makes from the bodies it holds (archives it compiled,
        bodies staged there: fgo.cache.held; none sent), all workers at once; the actions
        stored. A worker gone from the
        cluster, without the handler, or late, adopts nothing more: the caller sends those
        bodies as usual."""
        if not held:
            return set()
        workers = set(self.workers()) - self.late.snapshot()
        mine = {w: h for w, h in held.items() if w in workers and h}
        if not mine:
            return set()

        def adopt(worker: str, items: list[HeldEntry]) -> set[str]:
            index = {h.entry.action: h for h in items}
            done: set[str] = set()
            for batch in batches([(h.entry.action, h.entry.length) for h in items],
                                 batch_bytes):
                try:
                    done.update(within(timeout, self.client.sync, _adopt_direct, self.client,
                                       worker, self.ns, [index[a] for a in batch],
                                       what=f"publishing to {worker}",
                                       abandon=lambda: worker in self.late))
                except Late:
                    self.late.add(worker)
                    break  # nothing more goes there, not even the bodies
                except Exception:
                    break  # gone, or an older fgo there: the rest are sent
            return done

        with concurrent.futures.ThreadPoolExecutor(len(mine),
                                                   thread_name_prefix="fgo-adopt") as pool:
            return set().union(*pool.map(lambda item: adopt(*item), sorted(mine.items())))

    def _put_to(self, worker: str, mine: list[CacheEntry], timeout: float, batch_bytes: int,
                load: Callable[[CacheEntry], CacheEntry | None] | None = None) -> int:
        """MINE to WORKER, a batch at a time; a worker that lets a batch time out (stopped,
        or its link gone), or that a probe found stopped meanwhile, gets nothing more in
        this build."""
        index = {e.action: e for e in mine}
        stored, direct = 0, True
        gave_up = lambda: worker in self.late  # noqa: E731  (a probe found it stopped)
        for batch in batches([(e.action, e.length) for e in mine], batch_bytes):
            if gave_up():
                return stored
            entries = [index[a] for a in batch]
            if load is not None:
                entries = [e for e in map(load, entries) if e is not None]
                if not entries:
                    continue
            try:
                if direct:
                    try:
                        stored += within(timeout, self.client.sync, _put_direct, self.client,
                                         worker, self.ns, entries, what=f"publishing to {worker}",
                                         abandon=gave_up)
                        continue
                    except Late:
                        raise
                    except Exception:  # no fgo handler there (a cacheprog-only cluster): a run
                        direct = False
                got = within(timeout, self.client.run, store_put, self.ns, entries,
                             workers=[worker], what=f"publishing to {worker}", abandon=gave_up)
                stored += got.get(worker, 0)
            except Late:
                self.late.add(worker)
                return stored  # the rest of its share stays unpublished: later misses
            except Exception:
                continue  # that batch stays unpublished: a later miss
        return stored

    def stats(self, timeout: float) -> dict[str, Any]:
        return self.client.run(store_stats, self.ns, on_error="return",
                               callback_timeout=timeout)
