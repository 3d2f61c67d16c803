"""Where go build's compiles wrote their archives, for fgo cacheprog: by action-ID prefix.

go sends every put's body as a base64 line, and decoding it was the largest part of the
cacheprog's CPU on the head's core (Python decodes base64 several times slower than it
hashes). For a compile, the body is the file go just put from: the compile's -o, after go
rewrote its build ID (and appended a package's assembly objects). The head lists each
compile's -o as it ends (`OutputLog.add`); the cacheprog reads that file and, when it
holds exactly the body go names (its size and sha256 are go's output ID), skips the line
(`OutputPaths.body`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path


class OutputLog:
    """The head's side: one line per compile, "PREFIX PATH", flushed before go can put it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a")

    def add(self, prefix: str, output: str) -> None:
        if " " in prefix or "\n" in output:
            return
        with self._lock:
            self._file.write(f"{prefix} {output}\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def parse(data: str) -> tuple[dict[str, str], int]:
    """The complete lines of DATA (from some offset: ASCII but for paths) as prefix -> path,
    and how many characters they took (a line being written stays for the next read)."""
    end = data.rfind("\n") + 1
    out = {}
    for line in data[:end].splitlines():
        prefix, _, path = line.partition(" ")
        if prefix and path:
            out[prefix] = path
    return out, end


class OutputPaths:
    """The cacheprog's side: the compiles' outputs the head listed at PATH."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.paths: dict[str, str] = {}
        self._offset = 0
        self._lock = threading.Lock()

    def lookup(self, prefix: str) -> str | None:
        with self._lock:
            if prefix not in self.paths and self.path is not None:
                try:
                    with open(self.path, "rb") as f:
                        f.seek(self._offset)
                        data = f.read()
                except OSError:
                    return None
                text = data.decode(errors="surrogateescape")
                found, used = parse(text)
                self.paths.update(found)
                self._offset += len(text[:used].encode(errors="surrogateescape"))
            return self.paths.get(prefix)

    def body(self, action: bytes, output: bytes, size: int) -> bytes | None:
        """The body of go's put of ACTION (OUTPUT: its sha256, SIZE bytes) read from the
        file go put it from, or None when that is not exactly it."""
        path = self.lookup(action[:15].hex())
        if path is None:
            return None
        try:
            if os.path.getsize(path) != size:
                return None
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        return data if hashlib.sha256(data).digest() == output else None

