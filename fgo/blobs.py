"""Content-addressed blobs: what the head node hashes and what a store keeps.

Every input of a remote compile travels as a blob named by its sha256; a worker keeps
them in a disk store and receives each at most once. An archive named by an importcfg
travels cut down to its export data (fgo.goarchive.export_data): only the final link,
on the head node, needs the object code. The head keeps a store too: a verification
snapshots the inputs it will recompile there while go build's work directory exists.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from fgo.fileio import file_version, sha256, write_atomically
from fgo.goarchive import read_export_data


@dataclass(frozen=True)
class Blob:
    sha: str
    size: int
    path: str           # where the head node reads it
    export_only: bool   # cut down to __.PKGDEF

    def read(self) -> bytes:
        return read_export_data(self.path) if self.export_only else Path(self.path).read_bytes()


class BlobIndex:
    """Head-node hashes, remembered by file version (device, inode, size, mtime)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, bool], tuple[tuple[int, int, int, int], Blob]] = {}
        self._lock = threading.Lock()

    def blob(self, path: str, export_only: bool = False) -> Blob:
        key = file_version(os.stat(path))
        with self._lock:
            hit = self._cache.get((path, export_only))
        if hit and hit[0] == key:
            return hit[1]
        data = read_export_data(path) if export_only else Path(path).read_bytes()
        blob = Blob(sha256(data), len(data), path, export_only)
        with self._lock:
            self._cache[(path, export_only)] = (key, blob)
        return blob


class CorruptBlob(Exception):
    """A received blob does not hash to its name."""


class Store:
    """A disk store: ROOT/ab/abcdef... (one read-only file per blob, written atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = os.fspath(root)
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> str:
        """Where blob SHA is (a str: a worker builds ~100 a compile, and a Path's joins
        were ~5% of its own CPU in a cold build)."""
        return f"{self._root}/{sha[:2]}/{sha}"

    def has(self, sha: str) -> bool:
        return os.path.exists(self.path(sha))

    def put(self, sha: str, data: bytes) -> None:
        if sha256(data) != sha:
            raise CorruptBlob(f"blob {sha[:12]} arrived with a different hash")
        dest = self.path(sha)
        if os.path.exists(dest):
            return
        try:
            write_atomically(dest, data, mode=0o444)
        except FileNotFoundError:  # its directory is new (or the store was wiped)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            write_atomically(dest, data, mode=0o444)

    def identity(self) -> str:
        """This store's own name, made once and kept in it: the workers that report the
        same identity share it. Host name and path cannot tell: emulated or containerised
        hosts have the same host name and the same store path on disks of their own."""
        marker = self.root / ".store-id"
        try:
            return marker.read_text().strip()
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True)  # the store may have been wiped
        tmp = self.root / f".in-{uuid.uuid4().hex}"
        tmp.write_text(uuid.uuid4().hex)
        try:  # link, not rename: of two workers naming it at once, the first one wins
            os.link(tmp, marker)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return marker.read_text().strip()

    def inventory(self) -> list[str]:
        if not self.root.is_dir():  # wiped: an empty store
            return []
        return [p.name for d in self.root.iterdir() if d.is_dir() for p in d.iterdir()
                if not p.name.startswith(".")]


def store_root() -> Path:
    """This host's store: $FGO_STORE, else fgo's cache directory's store/ (workers on one
    host share it, so a blob crosses to a host once)."""
    from fgo.paths import cache_dir
    root = os.environ.get("FGO_STORE")
    return Path(root) if root else cache_dir() / "store"
