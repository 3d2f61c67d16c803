"""Where go build's compiles wrote their archives, for fgo cacheprog: by action-ID prefix.

go sends every put's body as a base64 line, and decoding it was the largest part of the
cacheprog's CPU on the head's core (Python decodes base64 several times slower than it
hashes). For a compile, the body is the file go just put from: the compile's -o, after go
rewrote its build ID (and appended a package's assembly objects). The head lists each
compile's -o as it ends (`OutputLog.add`); the cacheprog reads that file and, when it
holds exactly the body go names (its size and sha256 are go's output ID), skips the line:
it links that file into the local tier (`OutputPaths.path`, `DiskTier.put_link`: go does not
write it again, and every later get hashes what it reads), or else stores the body read
from it (`OutputPaths.body`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from fgo.fileio import LineTail


class OutputLog:
    """The head's side: one line per compile, "PREFIX PATH", flushed before go can put it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "ab")

    def add(self, prefix: str, output: str) -> None:
        if " " in prefix or "\n" in output:
            return
        with self._lock:
            self._file.write(prefix.encode() + b" " + os.fsencode(output) + b"\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def parse(lines: list[bytes]) -> dict[str, str]:
    """LINES ("PREFIX PATH") as prefix -> path (a path is bytes as the OS gives it)."""
    out = {}
    for line in lines:
        prefix, _, path = line.partition(b" ")
        if prefix and path:
            out[prefix.decode(errors="replace")] = os.fsdecode(path)
    return out


class OutputPaths:
    """The cacheprog's side: the compiles' outputs the head listed at PATH."""

    def __init__(self, path: Path | None) -> None:
        self.paths: dict[str, str] = {}
        self._log = LineTail(path) if path is not None else None
        self._lock = threading.Lock()

    def lookup(self, prefix: str) -> str | None:
        with self._lock:
            if prefix not in self.paths and self._log is not None:
                self.paths.update(parse(self._log.new_lines()))
            return self.paths.get(prefix)

    def path(self, action: bytes, size: int) -> str | None:
        """The file go put ACTION from, when it has SIZE bytes (its contents unchecked)."""
        path = self.lookup(action[:15].hex())
        try:
            return path if path is not None and os.path.getsize(path) == size else None
        except OSError:
            return None

    def body(self, action: bytes, output: bytes, size: int) -> bytes | None:
        """The body of go's put of ACTION (OUTPUT: its sha256, SIZE bytes) read from the
        file go put it from, or None when that is not exactly it."""
        path = self.path(action, size)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        return data if hashlib.sha256(data).digest() == output else None

