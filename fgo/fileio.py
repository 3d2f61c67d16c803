"""Files as fgo keeps them: content hashes, versions without reading, atomic writes.

One place for what the head, the workers and the cache all do to files: a writer that
leaves a whole file or none (a full disk, a killed process), the sha256 that names
blobs, cache bodies and outputs, a reader of the lines another process appends, a
doorbell another process rings, and a scratch directory that other processes may still
write into while it goes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 1 << 20
# How long a scratch directory's removal waits for late writers: a go build that was
# stopped leaves its children (fgo cacheprog) running, and they write their last files
# as they see go gone.
SCRATCH_GRACE_S = 5.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path | str) -> str:
    """PATH's sha256, read in chunks (compilers and archives are tens of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_version(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from another without reading it: (device, inode,
    size, mtime). A file rewritten in place or replaced differs in one of them."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def write_atomically(dest: Path | str, data: bytes, mode: int | None = None) -> None:
    """DATA at DEST, whole or not at all: written beside it, then renamed over it. MODE
    (e.g. 0o444 for a store's blobs; else 0o600) is set before the rename. OSError when
    the disk refuses; no half-written file is left behind. The file beside it is named for
    this process and thread, which alone write it (a worker stores thousands of blobs a
    build: no random name to draw, no file object, the fewest system calls)."""
    head, name = os.path.split(os.fspath(dest))
    tmp = os.path.join(head, f".in-{os.getpid()}-{threading.get_ident()}-{name}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines of DATA and how many bytes they take: a last line without its
    newline is still being written (or was cut short by a killed writer)."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), end


class LineTail:
    """The lines another process appends to PATH, each read once: every `new_lines` gives
    the complete lines written since the last (none while PATH does not exist)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.offset = 0

    def new_lines(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        lines, used = complete_lines(data)
        self.offset += used
        return lines


class Doorbell:
    """A named pipe another process rings once (`ring`) to wake a thread of this one
    (`on_ring`): no polling, no CPU while nobody rings. fgo build's cacheprog rings its
    head's at its first need of the cluster tier, and the head connects then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path, 0o600)
        self._closed = False

    def on_ring(self, callback: Callable[[], None]) -> None:
        """Call CALLBACK in a thread once the bell rings (not when `close` wakes it)."""
        def wait() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY)  # returns once a writer opens it
            except OSError:
                return
            os.close(fd)
            if not self._closed:
                callback()
        threading.Thread(target=wait, name="fgo-doorbell", daemon=True).start()

    def close(self) -> None:
        """Wake the waiting thread without its callback."""
        self._closed = True
        ring(self.path)


def ring(path: Path | str) -> bool:
    """Ring the Doorbell at PATH; False when nobody waits at it (or it is gone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader (rung already, or closed); ENOENT: gone
        return False
    os.close(fd)
    return True


def process_dir(parent: Path, prefix: str = "") -> Path:
    """PARENT/PREFIX<host>-<pid>: this process's own directory there, made empty; the
    others of this host there that no running process owns are removed (what a worker
    stopped or killed mid-compile left behind: a long-lived worker host otherwise gathers
    one such tree at every restart). The host in the name: a cache directory on a shared
    home, as on DAS-5, holds other hosts' too, whose processes this one cannot see."""
    mine = f"{prefix}{socket.gethostname()}-"
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(mine + "*"):
        if not pid_alive(stale.name.removeprefix(mine)):
            shutil.rmtree(stale, ignore_errors=True)
    own = parent / f"{mine}{os.getpid()}"
    shutil.rmtree(own, ignore_errors=True)   # of a process before this one with its pid
    own.mkdir()
    return own


class OwnDir:
    """A process's own directory (`process_dir` under PARENT() with PREFIX), made on first
    use, once whichever threads ask first at once: making it again empties it under
    whoever uses it (functools.cache may call its function twice then: a worker's first
    compile and first speculation did, and the compile found a source gone from its
    sandbox, in CI once)."""

    def __init__(self, parent: Callable[[], Path], prefix: str = "") -> None:
        self._parent, self._prefix = parent, prefix
        self._path: Path | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Path:
        with self._lock:
            if self._path is None:
                self._path = process_dir(self._parent(), self._prefix)
            return self._path

    def forget(self) -> Path | None:
        """The directory made so far (None if none); the next use makes it anew."""
        with self._lock:
            path, self._path = self._path, None
            return path


def pid_alive(pid: str) -> bool:
    """Whether the process PID (as text) runs; False for a name that is not a number."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's
        return True
    return True


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[str]:
    """A new temporary directory, removed on leaving: unlike tempfile's, a removal that
    races a process still writing into it (ENOTEMPTY) is retried for SCRATCH_GRACE_S,
    then given up quietly, so it never hides what the body raised or returned."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        remove_tree(path, SCRATCH_GRACE_S)


def remove_tree(path: Path | str, grace_s: float) -> bool:
    """Remove the directory PATH, retrying while others still add to it, for up to
    GRACE_S; whether it is gone."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            shutil.rmtree(path)
            return True
        except OSError:  # ENOTEMPTY: a file added meanwhile; ENOENT: one removed by another
            if not os.path.exists(path):
                return True
            if time.monotonic() >= deadline:
                shutil.rmtree(path, ignore_errors=True)
                return not os.path.exists(path)
            time.sleep(0.05)
