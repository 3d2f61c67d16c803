"""What verification remembers across builds, and what it removes from go's cache.

The ledger: split keys that matched a stock compile, and the packages never to split again
by a compiler series (a JSON file in fgo's cache). Eviction: a GOCACHE entry of a compile
whose output failed verification (or came from a worker that did), so that no later build,
fgo's or a plain go build, reuses it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from fgo.fileio import write_atomically
from fgo.head.checks import action_id_prefix


class Ledger:
    """Verified split keys and the packages never to split again, per compiler series.

    A JSON file in fgo's cache; read once, written when a build learns something."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        self.verified: set[str] = set(data.get("verified", []))
        self.disabled: dict[str, str] = dict(data.get("disabled", {}))
        self.dirty = False

    def split_allowed(self, series: str, package: str) -> bool:
        return f"{series[:12]} {package}" not in self.disabled

    def is_verified(self, key: str) -> bool:
        return key in self.verified

    def record(self, key: str, matched: bool, series: str, package: str, why: str = "") -> None:
        """Remember an outcome (written by `save`, once per build)."""
        with self.lock:
            if matched:
                self.verified.add(key)
            else:
                self.verified.discard(key)
                self.disabled[f"{series[:12]} {package}"] = why
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(
                {"verified": sorted(self.verified), "disabled": self.disabled}, indent=0).encode())
            self.dirty = False
        except OSError:
            pass  # a ledger we cannot write costs a re-verification next time, nothing more


# ------------------------------------------------------------------ GOCACHE eviction

def evict(gocache: Path, buildid_flag: str) -> list[str]:
    """Remove the GOCACHE entry go stored for the compile with BUILDID_FLAG: its action
    index (`-a`) and the output it names (`-d`). Returns the removed paths."""
    prefix = action_id_prefix(buildid_flag)
    if not prefix:
        return []
    removed = []
    for index in (gocache / prefix[:2]).glob(f"{prefix}*-a"):
        try:
            fields = index.read_text().split()
        except OSError:
            continue
        if len(fields) >= 3:
            out = gocache / fields[2][:2] / f"{fields[2]}-d"
            if out.exists():
                out.unlink()
                removed.append(str(out))
        index.unlink(missing_ok=True)
        removed.append(str(index))
    return removed
