"""Publishing: entries of the local tier copied to the cluster tier, by a head node only.

`fgo build` publishes the puts its go build listed (FGO_CACHE_PENDING) once verification
found no mismatch; a plain go build's cacheprog publishes its own at close. Each entry is
signed with the heads' key over its fields: who produced it (the worker that compiled it,
as the build's report says, or the head itself) and whether the build's verification
compared that compile with its own (fgo.cache.trust).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgo import gobuildid
from fgo.cache import trust
from fgo.cache.local import DiskTier
from fgo.cache.stage import read_puts
from fgo.cache.tier import ClusterTier
from fgo.fileio import LineTail
from fgo.wire import CacheEntry, HeldEntry

PUBLISH_TIMEOUT_S = 30.0  # one batch (32 MB: 0.3 s at 1 Gb/s) to one worker


def pending_actions(path: Path) -> list[str]:
    """The action IDs a go build put, in order, each once (a missing list: none; a last
    line cut short by a killed cacheprog is not one)."""
    return list(dict.fromkeys(p.action for p in read_puts(LineTail(path).new_lines())))


def compile_seconds(action: str, seconds_by_prefix: dict[str, float]) -> float:
    """The compile time of the entry ACTION, when the build measured it: -buildid names a
    compile by the first 30 hex digits of its action ID."""
    return seconds_by_prefix.get(action[:30], 0.0)


@dataclass
class Provenance:
    """What a build knows of its compiles, by the action-ID prefix -buildid gives (30 hex
    digits): how long each took, who produced it, whether verification compared it."""

    seconds: dict[str, float] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)
    checked: dict[str, bool] = field(default_factory=dict)
    # a remote compile's archive as it left the compiler (its sha256) and go's -buildid:
    # its worker keeps it, and makes the entry's body from it (fgo.cache.held)
    archive: dict[str, tuple[str, str]] = field(default_factory=dict)

    def of(self, action: str) -> tuple[float, str, bool]:
        p = action[:30]
        return (self.seconds.get(p, 0.0), self.producer.get(p, trust.HEAD),
                self.checked.get(p, False))


def held_by_producer(stubs: list[CacheEntry], known: Provenance,
                     skip: frozenset[str]) -> dict[str, list[tuple[CacheEntry, str, str]]]:
    """Of STUBS, those whose body their producer (one worker, not in SKIP) can make from
    the archive it compiled: worker -> [(stub, archive sha256, build ID)]. Only an entry
    under the compile's own action ID: the archive is that entry's body (its "stdout"
    subkey and the like are not)."""
    out: dict[str, list[tuple[CacheEntry, str, str]]] = {}
    for stub in stubs:
        archive = known.archive.get(stub.action[:30])
        producer = stub.producer
        if archive is None or producer in skip or producer == trust.HEAD \
                or len(trust.producers(producer)) != 1:
            continue
        out.setdefault(producer, []).append((stub, *archive))
    return out


def staged_by_worker(stubs: list[CacheEntry], staged: Mapping[str, str],
                     skip: frozenset[str]) -> dict[str, list[tuple[CacheEntry, str, str]]]:
    """Of STUBS, those whose body was staged on a worker (STAGED: action -> worker) not in
    SKIP: worker -> [(stub, output ID, "")] (the body is the entry's as it is)."""
    out: dict[str, list[tuple[CacheEntry, str, str]]] = {}
    for stub in stubs:
        worker = staged.get(stub.action)
        if worker is not None and worker not in skip:
            out.setdefault(worker, []).append((stub, stub.output, ""))
    return out


def _written_build_id(body: Path, build_id: str) -> str | None:
    """The build ID go wrote over BUILD_ID in the archive it cached (at BODY), read from
    that file's first bytes; None when it cannot be read there."""
    try:
        with open(body, "rb") as f:
            return gobuildid.written_build_id(f.read(gobuildid.CACHED_HEAD_BYTES), build_id)
    except OSError:
        return None


def publish_entries(tier: ClusterTier, local: DiskTier, actions: list[str], key: bytes,
                    known: Provenance | None = None, skip: frozenset[str] = frozenset(),
                    revoked: trust.Revoked | None = None,
                    staged: Mapping[str, str] | None = None) -> tuple[int, int, int]:
    """Copy ACTIONS from LOCAL to the cluster tier, signed with KEY: as references to the
    bodies STAGED on a worker while the build ran (action -> worker) or to the archives
    their producers kept, with no body sent, where there is one; the rest with their bodies
    (each verified against its output ID on the way), and then those a worker could not
    make. (entries stored, bytes sent, entries stored by reference). An entry no longer in
    LOCAL (trimmed, or evicted after a mismatch), or whose producer is REVOKED, is not
    published."""
    known = known or Provenance()
    stubs = []  # bodies are read a batch at a time, as they are sent
    bodies: dict[str, Path] = {}
    for action in actions:
        entry = local.record(action)
        if entry is None:
            continue
        bodies[action] = entry.path
        seconds, producer, checked = known.of(action)
        if revoked is not None and revoked.covers(action, entry.output, producer):
            continue
        stubs.append(CacheEntry(action, entry.output, b"", entry.put_time, seconds, producer,
                                checked, size=entry.size))
    if not stubs:
        return 0, 0, 0
    held = staged_by_worker(stubs, staged or {}, skip)
    placed = {stub.action for items in held.values() for stub, _, _ in items}
    for worker, items in held_by_producer([s for s in stubs if s.action not in placed], known,
                                          skip).items():
        held.setdefault(worker, []).extend(items)
    by_reference: dict[str, list[HeldEntry]] = {}
    for worker, items in held.items():
        for stub, raw, build_id in items:
            written = _written_build_id(bodies[stub.action], build_id) if build_id else ""
            if written is not None:  # else sent with its body
                by_reference.setdefault(worker, []).append(
                    HeldEntry(trust.sign_entry(key, tier.ns, stub), raw, build_id, written))
    referenced = {h.entry.action for items in by_reference.values() for h in items}
    sent = []

    def load(stub: CacheEntry) -> CacheEntry | None:
        found = local.read(stub.action)  # verified against its output ID on the way
        if found is None or found[0].output != stub.output:
            return None
        sent.append(len(found[1]))
        return trust.sign_entry(key, tier.ns, replace(stub, body=found[1], size=-1))

    def put(entries: list[CacheEntry]) -> int:
        return tier.put_many(entries, PUBLISH_TIMEOUT_S, skip=skip, load=load) if entries else 0

    # one after the other: a worker's put and adopt each trim its share, and a trim running
    # beside the other's writes counted entries it then removed
    stored = put([s for s in stubs if s.action not in referenced])
    adopted = tier.adopt_many(by_reference, PUBLISH_TIMEOUT_S)
    stored += put([s for s in stubs if s.action in referenced and s.action not in adopted])
    return stored + len(adopted), sum(sent), len(adopted)
