"""A disk tier of go's build cache: the head's local tier, and each worker's cluster store.

ROOT/ab/<action>-a holds "<output id> <size> <put time> <compile seconds> p=<producer>
c=<checked> s=<signature>" (the last three as the publishing head signed them, see
fgo.cache.trust; absent in entries of go's own puts) and ROOT/ab/<action>-d the body, the
file whose path go is given (DiskPath). The -a file's mtime is the entry's last use, so
eviction is LRU by last use. ROOT/revoked/ keeps the revocations this tier has been given.
On the head's side a body that does not hash to its output ID is a miss and is deleted.
Decisions (which entries to evict) are pure functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fgo.fileio import file_sha256, write_atomically

HEX_ID = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ decisions (pure)

@dataclass(frozen=True)
class EntryInfo:
    action: str        # hex action ID
    size: int          # body bytes
    last_used: float   # epoch seconds


def lru_victims(entries: list[EntryInfo], limit: int, now: float, grace: float,
                released: frozenset[str] = frozenset()) -> list[str]:
    """The entries to remove so that the rest fit in LIMIT bytes, least recently used first.

    An entry used within GRACE seconds may be a file another go process still reads
    (go needs it until that process's "close"), so it stays even over the limit, unless
    this process RELEASED it (used it and is closing)."""
    total = sum(e.size for e in entries)
    victims = []
    for e in sorted(entries, key=lambda e: (e.last_used, e.action)):
        if total <= limit:
            break
        if now - e.last_used < grace and e.action not in released:
            continue
        victims.append(e.action)
        total -= e.size
    return victims


# ------------------------------------------------------------------ the store

@dataclass(frozen=True)
class Entry:
    action: str
    output: str        # hex output ID: sha256 of the body
    size: int
    put_time: float
    path: Path         # the body
    seconds: float = 0.0  # what producing it cost (a compile's time, when fgo build knew it)
    producer: str = ""    # as signed by the publishing head ("" for go's own puts)
    checked: bool = False
    signature: str = ""


class DiskTier:
    """One directory of cache entries (see the module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, action: str) -> tuple[Path, Path]:
        if not HEX_ID.match(action):
            raise ValueError(f"not an action ID: {action!r}")
        d = self.root / action[:2]
        return d / f"{action}-a", d / f"{action}-d"

    def get(self, action: str, verify: bool = True) -> Entry | None:
        """The entry of ACTION, its last use set to now; None when absent or damaged (then
        it is deleted: its body does not hash to its output ID, or has the wrong size)."""
        index, body = self._paths(action)
        try:
            entry = _entry(action, index, body)
            actual = body.stat().st_size
        except (OSError, ValueError):
            return None
        if actual != entry.size or verify and file_sha256(body) != entry.output:
            self.remove(action)
            return None
        _touch(index)
        return entry

    def read(self, action: str, verify: bool = True) -> tuple[Entry, bytes] | None:
        """The entry and its body; with VERIFY only when they match (else it is deleted).
        A worker's get does not verify: the head checks what it is given, and counts."""
        index, body_path = self._paths(action)
        try:
            entry = _entry(action, index, body_path)
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        if verify and hashlib.sha256(body).hexdigest() != entry.output:
            self.remove(action)
            return None
        _touch(index)
        return entry, body

    def record(self, action: str) -> Entry | None:
        """ACTION's index fields alone (nothing read from the body)."""
        index, body = self._paths(action)
        try:
            return _entry(action, index, body)
        except (OSError, ValueError):
            return None

    def records(self) -> list[Entry]:
        """Every entry's index fields (a worker's index for the heads)."""
        out = []
        for action in self.actions():
            if (entry := self.record(action)) is not None:
                out.append(entry)
        return out

    def put(self, action: str, output: str, body: bytes, put_time: float | None = None,
            seconds: float = 0.0, producer: str = "", checked: bool = False,
            signature: str = "", hashed: bool = False) -> Entry:
        """Store BODY under ACTION (atomically: body first, then the index naming it).
        Refuses a body that does not hash to OUTPUT (unless the caller HASHED it just now);
        OSError when the disk refuses."""
        if not hashed and hashlib.sha256(body).hexdigest() != output:
            raise ValueError(f"body of {action[:12]} does not hash to its output ID")
        index, body_path = self._paths(action)
        index.parent.mkdir(parents=True, exist_ok=True)
        put_time = time.time() if put_time is None else put_time
        write_atomically(body_path, body)
        try:
            write_atomically(index, _index_line(output, len(body), put_time, seconds,
                                                producer, checked, signature))
        except OSError:
            body_path.unlink(missing_ok=True)
            raise
        return Entry(action, output, len(body), put_time, body_path, seconds, producer,
                     checked, signature)

    def put_link(self, action: str, output: str, path: str) -> Entry:
        """`put` of the file at PATH by a hard link, not a copy: a compile's archive that go
        put from and does not write again (its $WORK goes with the build: the link keeps
        the body). Hashed once linked, so that what is checked is what the tier holds (a get
        hashes it again). OSError when it cannot be linked (another filesystem), ValueError
        when it does not hash to OUTPUT; nothing is left behind either way."""
        index, body_path = self._paths(action)
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = body_path.with_name(f".link-{os.getpid()}-{threading.get_ident()}-{action}")
        os.link(path, tmp)
        try:
            size = tmp.stat().st_size
            if file_sha256(tmp) != output:
                raise ValueError(f"body of {action[:12]} does not hash to its output ID")
            os.replace(tmp, body_path)
            put_time = time.time()
            write_atomically(index, _index_line(output, size, put_time, 0.0, "", False, ""))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Entry(action, output, size, put_time, body_path)

    def put_file(self, action: str, output: str, path: str, put_time: float | None = None,
                 seconds: float = 0.0, producer: str = "", checked: bool = False,
                 signature: str = "") -> Entry:
        """`put` of the body in the file at PATH, moved into the tier (not copied: a worker
        adopting an archive it holds); ValueError, PATH left where it was, when it does not
        hash to OUTPUT; OSError when the disk refuses."""
        if file_sha256(path) != output:
            raise ValueError(f"body of {action[:12]} does not hash to its output ID")
        size = os.path.getsize(path)
        index, body_path = self._paths(action)
        index.parent.mkdir(parents=True, exist_ok=True)
        put_time = time.time() if put_time is None else put_time
        try:
            os.replace(path, body_path)
        except OSError:  # another filesystem: copied, as `put` would
            shutil.copyfile(path, body_path.with_name(body_path.name + ".in"))
            os.replace(body_path.with_name(body_path.name + ".in"), body_path)
        try:
            write_atomically(index, _index_line(output, size, put_time, seconds, producer,
                                                checked, signature))
        except OSError:
            body_path.unlink(missing_ok=True)
            raise
        return Entry(action, output, size, put_time, body_path, seconds, producer, checked,
                     signature)

    def remove(self, action: str) -> list[str]:
        removed = []
        for path in self._paths(action):
            try:
                path.unlink()
                removed.append(str(path))
            except OSError:
                pass
        return removed

    def entries(self) -> list[EntryInfo]:
        out = []
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            if not d.is_dir() or len(d.name) != 2:
                continue
            for index in d.glob("*-a"):
                try:
                    size = int(index.read_text().split()[1])
                    out.append(EntryInfo(index.name[:-2], size, index.stat().st_mtime))
                except (OSError, ValueError, IndexError):
                    continue
        return out

    def actions(self) -> list[str]:
        return [e.action for e in self.entries()]

    def evict_prefix(self, prefix: str) -> list[str]:
        """Remove every entry whose action ID starts with PREFIX (hex): the paths removed."""
        prefix = prefix.lower()
        if len(prefix) < 2:
            return []
        return [p for index in (self.root / prefix[:2]).glob(f"{prefix}*-a")
                for p in self.remove(index.name[:-2])]

    def trim(self, limit: int, grace: float = 0.0,
             released: frozenset[str] = frozenset()) -> list[str]:
        """Remove least recently used entries until the rest fit in LIMIT bytes (see
        lru_victims); the action IDs removed."""
        victims = lru_victims(self.entries(), limit, time.time(), grace, released)
        for action in victims:
            self.remove(action)
        return victims

    def stats(self) -> dict[str, int]:
        entries = self.entries()
        return {"entries": len(entries), "bytes": sum(e.size for e in entries)}

    def clear(self) -> int:
        n = len(self.entries())
        shutil.rmtree(self.root, ignore_errors=True)
        return n


    # --- revocations ---

    def keep_revocations(self, revocations: list[dict[str, Any]]) -> int:
        """Keep REVOCATIONS (plain data), each once, in ROOT/revoked: how many were new."""
        d = self.root / "revoked"
        d.mkdir(parents=True, exist_ok=True)
        new = 0
        for r in revocations:
            data = json.dumps(r, sort_keys=True).encode()
            path = d / hashlib.sha256(data).hexdigest()
            if not path.exists():
                write_atomically(path, data)
                new += 1
        return new

    def revocations(self) -> list[dict[str, Any]]:
        d = self.root / "revoked"
        out = []
        for path in sorted(d.iterdir()) if d.is_dir() else []:
            try:
                out.append(json.loads(path.read_bytes()))
            except (OSError, ValueError):
                continue
        return out


def _index_line(output: str, size: int, put_time: float, seconds: float, producer: str,
                checked: bool, signature: str) -> bytes:
    line = f"{output} {size} {put_time:.3f} {seconds:.3f}"
    if producer or checked or signature:
        line += f" p={quote(producer, safe='')} c={int(bool(checked))} s={signature}"
    return (line + "\n").encode()


def _entry(action: str, index: Path, body: Path) -> Entry:
    """The entry ACTION's index file names (ValueError when it is not one)."""
    output, size, put_time, *rest = index.read_text().split()
    seconds = rest[0] if rest and "=" not in rest[0] else "0"
    tags = dict(t.split("=", 1) for t in rest if "=" in t)
    return Entry(action, output, int(size), float(put_time), body, float(seconds),
                 unquote(tags.get("p", "")), tags.get("c") == "1", tags.get("s", ""))


def gocache_dir(environ: dict[str, str]) -> Path:
    """go's GOCACHE as go resolves it on Linux: $GOCACHE, else $XDG_CACHE_HOME/go-build,
    else ~/.cache/go-build."""
    if gocache := environ.get("GOCACHE"):
        return Path(gocache)
    xdg = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(xdg) / "go-build"


def local_root(gocache: Path, namespace: str) -> Path:
    """The head's local tier: beside go's own cache (one per GOCACHE, as go's is), one
    directory per toolchain (see cluster.namespace)."""
    return gocache / "fgo" / namespace


def _touch(index: Path) -> None:
    """Mark an entry used now (LRU); an index gone meanwhile is not an error."""
    try:
        os.utime(index)
    except OSError:
        pass
