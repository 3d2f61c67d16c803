"""A disk tier of go's build cache: the head's local tier, and each worker's cluster store.

ROOT/ab/<action>-a holds "<output id> <size> <put time> <compile seconds> p=<producer>
c=<checked> s=<signature>" (the last three as the publishing head signed them, see
fgo.cache.trust; absent in entries of go's own puts), then "v=<stamp>" once a get hashed
the body (below), and ROOT/ab/<action>-d the body, the file whose path go is given
(DiskPath). The -a file's mtime is the entry's last use, so eviction is LRU by last use.
ROOT/revoked/ keeps the revocations this tier has been given; on a head,
ROOT/revocations-seen records that they were all the cluster's as of its beacon's token
(fgo.cluster.beacon).
On the head's side a body that does not hash to its output ID is a miss and is deleted.
Hashing every body at every get cost a no-op build more than go's whole no-op (140 MB for
gin), so a get that hashed a body records its file's inode, size, mtime and ctime; a later
get hashes again only when they changed (a write, a rename over it, a chmod) or were too
fresh to tell (as git's index does). The bodies a build wrote are hashed and stamped
after it, off go's path (fgo.cache.front.stamp_later). Decisions (which entries to evict, whether a stamp
still vouches for a body) are pure functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fgo import toolchain
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


# A body changed within this long of its stamp's taking can keep its times (they advance
# by the kernel's clock tick, and a write in the same tick leaves them as they were).
RACY_S = 2.0


def body_stamp(st: os.stat_result, now: float) -> str:
    """What a get records once it has hashed the body whose stat is ST, at NOW."""
    return f"{st.st_ino}.{st.st_size}.{st.st_mtime_ns}.{st.st_ctime_ns}.{int(now * 1e9)}"


def stamp_vouches(stamp: str, st: os.stat_result) -> bool:
    """Whether STAMP, taken when the body hashed to its output ID, still vouches for the
    file whose stat is ST: the same inode, size and times, taken RACY_S or more after the
    file's last change (a later write, chmod or rename over it moves its ctime)."""
    try:
        ino, size, mtime, ctime, taken = (int(x) for x in stamp.split("."))
    except ValueError:
        return False
    return ((ino, size, mtime, ctime) == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            and taken - ctime >= RACY_S * 1e9)


# A closing process lists every entry to trim only when the tier may have outgrown its
# limit since the last trim, or that trim is this old (other programs' puts): listing a
# large tier costs a no-op build more than go's own no-op (go trims once a day).
TRIM_EVERY_S = 3600.0


def trim_due(last: tuple[float, int] | None, added: int, limit: int, now: float) -> bool:
    """Whether to trim: LAST is (when, bytes held after) the last trim and the puts since,
    as recorded; ADDED the bytes this process put."""
    if last is None:
        return True
    when, held = last
    return now - when >= TRIM_EVERY_S or held + added > limit


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
    stamp: str = ""       # the body's file as last hashed (body_stamp); "" until a get did


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
            st = body.stat()
        except (OSError, ValueError):
            return None
        if st.st_size != entry.size:
            self.remove(action)
            return None
        if verify and not stamp_vouches(entry.stamp, st):
            if file_sha256(body) != entry.output:
                self.remove(action)
                return None
            now = time.time()
            if now - st.st_ctime >= RACY_S:  # else a later get hashes it again
                entry = self._restamp(index, entry, body_stamp(st, now))
        _touch(index)
        return entry

    def _restamp(self, index: Path, entry: Entry, stamp: str) -> Entry:
        """ENTRY's index with STAMP (best effort: a read-only tier just hashes again)."""
        entry = replace(entry, stamp=stamp)
        try:
            write_atomically(index, _index_line(entry.output, entry.size, entry.put_time,
                                                entry.seconds, entry.producer, entry.checked,
                                                entry.signature, stamp))
        except OSError:
            pass
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
                 signature: str = "", hashed: bool = False) -> Entry:
        """`put` of the body in the file at PATH, moved into the tier (not copied: a worker
        adopting an archive it holds); ValueError, PATH left where it was, when it does not
        hash to OUTPUT (unless the caller HASHED it just now); OSError when the disk
        refuses."""
        if not hashed and file_sha256(path) != output:
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
        return self._trim(self.entries(), limit, grace, released, time.time())[0]

    def _trim(self, entries: list[EntryInfo], limit: int, grace: float,
              released: frozenset[str], now: float) -> tuple[list[str], int]:
        """Remove ENTRIES' lru_victims: the action IDs removed and the bytes left."""
        victims = lru_victims(entries, limit, now, grace, released)
        for action in victims:
            self.remove(action)
        gone = set(victims)
        return victims, sum(e.size for e in entries if e.action not in gone)

    def trim_if_due(self, limit: int, grace: float, released: frozenset[str],
                    added: int) -> list[str]:
        """`trim` when trim_due says so (else nothing is listed), ADDED bytes counted either
        way in ROOT/trimmed ("<time> <bytes>"; two closing at once may lose one's count:
        the hourly trim catches up)."""
        record = self.root / "trimmed"
        last: tuple[float, int] | None
        try:
            fields = record.read_text().split()
            last = (float(fields[0]), int(fields[1]))
        except (OSError, ValueError, IndexError):
            last = None
        now = time.time()
        victims: list[str] = []
        if last is not None and not trim_due(last, added, limit, now):
            when, held = last[0], last[1] + added
        else:
            victims, held = self._trim(self.entries(), limit, grace, released, now)
            when = now
        try:
            write_atomically(record, f"{when:.3f} {held}\n".encode())
        except OSError:
            pass
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
                checked: bool, signature: str, stamp: str = "") -> bytes:
    line = f"{output} {size} {put_time:.3f} {seconds:.3f}"
    if producer or checked or signature:
        line += f" p={quote(producer, safe='')} c={int(bool(checked))} s={signature}"
    if stamp:
        line += f" v={stamp}"
    return (line + "\n").encode()


def _entry(action: str, index: Path, body: Path) -> Entry:
    """The entry ACTION's index file names (ValueError when it is not one)."""
    output, size, put_time, *rest = index.read_text().split()
    seconds = rest[0] if rest and "=" not in rest[0] else "0"
    tags = dict(t.split("=", 1) for t in rest if "=" in t)
    return Entry(action, output, int(size), float(put_time), body, float(seconds),
                 unquote(tags.get("p", "")), tags.get("c") == "1", tags.get("s", ""),
                 tags.get("v", ""))


def gocache_dir(environ: dict[str, str]) -> Path:
    """go's GOCACHE as go resolves it on Linux: $GOCACHE, else $XDG_CACHE_HOME/go-build,
    else ~/.cache/go-build."""
    if gocache := environ.get("GOCACHE"):
        return Path(gocache)
    xdg = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(xdg) / "go-build"


def namespace(identity: toolchain.Identity) -> str:
    """The directory every entry of IDENTITY's toolchain is filed under."""
    return f"{identity.go_version}-{identity.compiler_sha256[:16]}"


def running_namespace(environ: dict[str, str]) -> str:
    """The namespace of the toolchain of the go that started us (go exports GOVERSION and
    GOTOOLDIR to GOCACHEPROG), else of fgo's pinned one."""
    tooldir, version = environ.get("GOTOOLDIR"), environ.get("GOVERSION")
    compiler = Path(tooldir) / "compile" if tooldir else None
    if version and compiler is not None and compiler.is_file():
        return namespace(toolchain.Identity(version, toolchain.remembered_sha256(compiler)))
    return namespace(toolchain.identity())


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
