"""Publishing: entries of the local tier copied to the cluster tier, by a head node only.

`fgo build` publishes the puts its go build listed (FGO_CACHE_PENDING) once verification
found no mismatch; a plain go build's cacheprog publishes its own at close. Each entry is
signed with the heads' key over its fields: who produced it (the worker that compiled it,
as the build's report says, or the head itself) and whether the build's verification
compared that compile with its own (fgo.cache.trust).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from fgo.cache import trust
from fgo.cache.local import DiskTier
from fgo.cache.tier import ClusterTier
from fgo.wire import CacheEntry

PUBLISH_TIMEOUT_S = 30.0  # one batch (32 MB: 0.3 s at 1 Gb/s) to one worker


def pending_actions(path: Path) -> list[str]:
    """The action IDs a go build put, in order, each once (a missing list: none)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line)["action"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a killed cacheprog
    return list(dict.fromkeys(out))


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

    def of(self, action: str) -> tuple[float, str, bool]:
        p = action[:30]
        return (self.seconds.get(p, 0.0), self.producer.get(p, trust.HEAD),
                self.checked.get(p, False))


def publish_entries(tier: ClusterTier, local: DiskTier, actions: list[str], key: bytes,
                    known: Provenance | None = None, skip: frozenset[str] = frozenset(),
                    revoked: trust.Revoked | None = None) -> tuple[int, int]:
    """Copy ACTIONS from LOCAL to the cluster tier (each verified against its output ID on
    the way, and signed with KEY); (entries stored, bytes sent). An entry no longer in
    LOCAL (trimmed, or evicted after a mismatch), or whose producer is REVOKED, is not
    published."""
    known = known or Provenance()
    stubs = []  # bodies are read a batch at a time, as they are sent
    for action in actions:
        entry = local.record(action)
        if entry is None:
            continue
        seconds, producer, checked = known.of(action)
        if revoked is not None and revoked.covers(action, entry.output, producer):
            continue
        stubs.append(CacheEntry(action, entry.output, b"", entry.put_time, seconds, producer,
                                checked, size=entry.size))
    if not stubs:
        return 0, 0
    sent = []

    def load(stub: CacheEntry) -> CacheEntry | None:
        found = local.read(stub.action)  # verified against its output ID on the way
        if found is None or found[0].output != stub.output:
            return None
        sent.append(len(found[1]))
        return trust.sign_entry(key, tier.ns, replace(stub, body=found[1], size=-1))
    stored = tier.put_many(stubs, PUBLISH_TIMEOUT_S, skip=skip, load=load)
    return stored, sum(sent)
