"""The cluster tier on a worker: this worker's share of the cache entries, on its disk.

These functions run on the workers: `store_put` and `store_adopt` through fgo's cache
handlers (fgo.worker.service) when a head publishes, the others through Client.run (the
cacheprog's index, a get, a revocation, `fgo cache stats|trim|clear`). Workers never write
an entry of their own accord, and hold no key: they keep the fields and signature a head
gave them beside the body, serve them as they are (a head checks the signature and the
body's hash, fgo.cache.trust), and keep every revocation a head sends. Entries are filed
under a namespace naming the exact toolchain.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from fgo import gobuildid, settings
from fgo.cache import held as kept
from fgo.cache.local import DiskTier
from fgo.wire import CacheEntry, CacheIndex, CacheRevocation, HeldEntry, decode, encode

NAMESPACE = re.compile(r"^go[0-9A-Za-z.+_-]+-[0-9a-f]{16}$")


def _cache_root() -> Path:
    """Where this worker keeps its share: FGO_SHARED_CACHE_DIR, else beside its blob store
    (FGO_STORE), on the same disk."""
    if root := os.environ.get("FGO_SHARED_CACHE_DIR"):
        return Path(root)
    if store := os.environ.get("FGO_STORE"):
        return share_beside(Path(store))
    from fgo.paths import cache_dir
    return cache_dir() / "shared-gocache"


def share_beside(store: Path) -> Path:
    """The share of a worker whose blob store is STORE (FGO_STORE), FGO_SHARED_CACHE_DIR
    unset."""
    return store.with_name(store.name + "-gocache")


def _store(ns: str) -> DiskTier:
    if not NAMESPACE.match(ns):
        raise ValueError(f"not a cache namespace: {ns!r}")
    return DiskTier(_cache_root() / ns)


def _all_stores() -> list[DiskTier]:
    root = _cache_root()
    return [DiskTier(d) for d in sorted(root.glob("*")) if d.is_dir()] if root.is_dir() else []


def store_limit() -> int:
    """This worker's size limit for its share of the cluster tier: FGO_CACHE_SIZE in its
    environment, else the head's default (the cache_size setting)."""
    size = settings.BY_NAME["cache_size"]
    return settings.parse_size(os.environ.get(size.env_name) or size.default)


def _wire(entry: Any, body: bytes = b"") -> CacheEntry:
    return CacheEntry(entry.action, entry.output, body, entry.put_time, entry.seconds,
                      entry.producer, entry.checked, entry.signature, entry.size)


def store_index(ns: str) -> dict[str, Any]:
    """This worker's share of NS without bodies, and the revocations it keeps (a
    wire.CacheIndex as plain data)."""
    store = _store(ns)
    return encode(CacheIndex([_wire(e) for e in store.records()],
                             [decode(r, CacheRevocation) for r in store.revocations()
                              if _is_revocation(r)]))


def _is_revocation(data: Any) -> bool:
    try:
        decode(data, CacheRevocation)
        return True
    except ValueError:
        return False


def store_get(ns: str, action: str) -> dict[str, Any] | None:
    """The entry of ACTION as plain data (a wire.CacheEntry: its body as it is on this
    disk, its size as the index says), or None."""
    found = _store(ns).read(action, verify=False)
    if found is None:
        return None
    entry, body = found
    return encode(_wire(entry, body))


def store_put(ns: str, entries: list[CacheEntry]) -> int:
    """Store ENTRIES and trim to this worker's size limit; how many stayed."""
    store = _store(ns)
    stored = []
    for e in entries:
        try:
            store.put(e.action, e.output, e.body, e.put_time, e.seconds, e.producer,
                      e.checked, e.signature)
        except (OSError, ValueError):
            continue  # a full disk or a damaged body: not stored, a later miss
        stored.append(e)
    evicted = _trim(store, sum(len(e.body) for e in stored))
    return sum(1 for e in stored if e.action not in evicted)


def _trim(store: DiskTier, added: int) -> set[str]:
    """STORE trimmed to this worker's limit when ADDED bytes may take it over (the tier
    keeps what it held after its last trim: listing every entry at each publish was ~6% of
    a worker's own CPU in a cold build); the actions removed."""
    return set(store.trim_if_due(store_limit(), 0.0, frozenset(), added))


def store_adopt(ns: str, held: list[HeldEntry]) -> list[str]:
    """Store the entries of HELD with the bodies this worker holds (fgo.cache.held): a body
    a head staged, or one made from an archive it compiled as go build cached it, by
    writing the build ID go wrote (fgo.gobuildid); the actions stored. An entry whose body
    is gone, or does not hash to its signed output ID, is left out: the head sends it."""
    store = _store(ns)
    adopted = [h for h in held if _adopt_one(store, h)]
    evicted = _trim(store, sum(h.entry.length for h in adopted))
    return [h.entry.action for h in adopted if h.entry.action not in evicted]


def _adopt_one(store: DiskTier, h: HeldEntry) -> bool:
    """H's entry stored from the body this worker holds: its file rewritten in place and
    moved into the tier when nothing else links it (no copy: the publish of a cold etcd
    build's archives was a third of its worker's own CPU), else read (one body in memory at
    a time: it is gone when this returns)."""
    if h.build_id and not h.written_id:  # a head that does not say what go wrote
        return False
    path = kept.exclusive(h.raw)
    if path is not None:
        return _adopt_file(store, h, path)
    raw = kept.read(h.raw)
    if raw is None or len(raw) != h.entry.length:  # gone, or go appended to it
        return False
    if h.build_id and not gobuildid.write_build_id(raw, h.build_id, h.written_id):
        return False
    e = h.entry
    try:
        store.put(e.action, e.output, raw, e.put_time, e.seconds, e.producer, e.checked,
                  e.signature)
    except (OSError, ValueError):
        return False  # another body than go cached (ValueError), or a full disk
    kept.release(h.raw)
    return True


def _adopt_file(store: DiskTier, h: HeldEntry, path: str) -> bool:
    """H's entry stored from the held file at PATH, moved into STORE. Once rewritten the
    file is no longer the body it was held as: dropped if it is not go's."""
    e = h.entry
    try:
        if os.path.getsize(path) != e.length:  # go appended to it
            return False
        # rewritten and hashed in one pass
        if h.build_id and \
                gobuildid.write_build_id_file(path, h.build_id, h.written_id) != e.output:
            kept.release(h.raw)
            return False  # not the archive go was given that build ID for
    except OSError:
        return False
    try:
        store.put_file(e.action, e.output, path, e.put_time, e.seconds, e.producer,
                       e.checked, e.signature, hashed=bool(h.build_id))
        stored = True
    except (OSError, ValueError):  # another body than go cached (ValueError), a full disk
        stored = False
    kept.release(h.raw)
    return stored


def store_revoke(ns: str, revocations: list[dict[str, Any]]) -> int:
    """Keep REVOCATIONS (plain wire.CacheRevocation) and remove the entries they name: an
    entry by action and output, or every entry a revoked producer took part in; how many
    entries were removed. (Unsigned as far as this worker can tell: the heads check the
    signature of every revocation they read back.)"""
    store = _store(ns)
    rs = [decode(r, CacheRevocation) for r in revocations]
    store.keep_revocations([encode(r) for r in rs])
    gone = {r.producer for r in rs if r.producer}
    pairs = {(r.action, r.output) for r in rs if r.action}
    removed = 0
    for e in store.records():
        if (e.action, e.output) in pairs or gone & set(e.producer.split("+")):
            removed += bool(store.remove(e.action))
    return removed


def store_drop(ns: str, action: str, output: str) -> bool:
    """Remove ACTION's entry if it still names OUTPUT (a head found its body damaged)."""
    store = _store(ns)
    found = store.record(action)
    return found is not None and found.output == output and bool(store.remove(action))


def store_stats(ns: str | None) -> dict[str, Any]:
    """Entries and bytes per namespace (only NS when given), and this worker's limit."""
    return {"root": str(_cache_root()), "limit": store_limit(),
            "namespaces": {t.root.name: t.stats() for t in _all_stores()
                           if ns is None or t.root.name == ns}}


def store_trim(limit: int | None) -> int:
    """Trim every namespace to LIMIT bytes (None: this worker's limit); entries removed."""
    n = store_limit() if limit is None else limit
    return sum(len(t.trim(n)) for t in _all_stores())


def store_clear() -> int:
    return sum(t.clear() for t in _all_stores())


