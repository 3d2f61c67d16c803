"""Publishing: entries of the local tier copied to the cluster tier, by a head node only.

`fgo build` publishes the puts its go build listed (FGO_CACHE_PENDING) once verification
found no mismatch; a plain go build's cacheprog publishes its own at close.
"""

from __future__ import annotations

import json
from pathlib import Path
from fgo.cache.tier import ClusterTier
from fgo.wire import CacheEntry
from fgo.cache.local import DiskTier

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


def publish_entries(tier: ClusterTier, local: DiskTier, actions: list[str],
                    seconds_by_prefix: dict[str, float],
                    skip: frozenset[str] = frozenset()) -> tuple[int, int]:
    """Copy ACTIONS from LOCAL to the cluster tier (each verified against its output ID on
    the way); (entries stored, bytes sent). An entry no longer in LOCAL (trimmed, or evicted
    after a mismatch) is not published."""
    entries = []
    for action in actions:
        found = local.read(action)
        if found is None:
            continue
        entry, body = found
        entries.append(CacheEntry(action, entry.output, body, entry.put_time,
                              compile_seconds(action, seconds_by_prefix)))
    if not entries:
        return 0, 0
    stored = tier.put_many(entries, PUBLISH_TIMEOUT_S, skip=skip)
    return stored, sum(len(e.body) for e in entries)
