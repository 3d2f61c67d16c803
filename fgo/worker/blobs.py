"""Content-addressed blobs: what the head node hashes and what a worker stores.

Every input travels as a blob named by its sha256; a worker keeps them in a
disk store and receives each at most once. A compile needs only the export
data of its imports, so an archive named by an importcfg travels cut down to
its `__.PKGDEF` member (typically tens of times smaller; rules_go ships `.x`
files for the same reason). Only the final link, on the head node, needs the
object code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from fgo.goarchive import HEADER_SIZE, MAGIC, export_data_end
from fgo.toolchain import file_version


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_data(archive: bytes) -> bytes:
    """The archive cut down to its first member if that is __.PKGDEF (else unchanged)."""
    end = export_data_end(archive[:len(MAGIC) + HEADER_SIZE])
    return archive if end is None else archive[:end]


@dataclass(frozen=True)
class Blob:
    sha: str
    size: int
    path: str           # where the head node reads it
    export_only: bool   # cut down to __.PKGDEF

    def read(self) -> bytes:
        return read_export_data(self.path) if self.export_only else Path(self.path).read_bytes()


def read_export_data(path: str) -> bytes:
    """export_data(file contents), reading only the first member of a large archive."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + HEADER_SIZE)
        end = export_data_end(head)
        return head + (f.read() if end is None else f.read(end - len(head)))


class BlobIndex:
    """Head-node hashes, cached by file identity (dev, inode, size, mtime)."""

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
    """A worker's disk store: ROOT/ab/abcdef... (one file per blob, written atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).exists()

    def put(self, sha: str, data: bytes) -> None:
        if sha256(data) != sha:
            raise CorruptBlob(f"blob {sha[:12]} arrived with a different hash")
        dest = self.path(sha)
        if dest.exists():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)  # the store may have been wiped
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:  # e.g. a full disk: leave no half-written blob behind
            os.unlink(tmp)
            raise

    def identity(self) -> str:
        """This store's own name, made once and kept in it: the workers that report the
        same identity share it. Host name and path cannot tell: emulated or containerised
        hosts have the same host name and the same store path on disks of their own."""
        marker = self.root / ".store-id"
        try:
            return marker.read_text().strip()
        except FileNotFoundError:
            pass
        candidate = uuid.uuid4().hex
        self.root.mkdir(parents=True, exist_ok=True)  # the store may have been wiped
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".in-")
        with os.fdopen(fd, "w") as f:
            f.write(candidate)
        try:  # link, not rename: of two workers naming it at once, the first one wins
            os.link(tmp, marker)
            return candidate
        except FileExistsError:
            return marker.read_text().strip()
        finally:
            os.unlink(tmp)

    def inventory(self) -> list[str]:
        if not self.root.is_dir():  # wiped: an empty store
            return []
        return [p.name for d in self.root.iterdir() if d.is_dir() for p in d.iterdir()
                if not p.name.startswith(".")]
