"""Bodies a worker keeps until a head publishes their cache entries: archives it compiled,
and bodies a head staged while its build ran.

The head receives every remote compile's archive, and go build caches it; publishing it
to the cluster tier used to send the same bytes back (a cold etcd build: 156 MB received,
then 260 MB published). The worker that compiled an archive keeps it instead (a hard link
of the sandbox's output, by its sha256: no copy), and a head's publish names it
(fgo.cache.store.store_adopt). A head also stages the bodies no worker holds on the
workers that will own their entries while go build still runs (fgo.cache.stage), so that
its publish after the build sends little but signed records. Bounded: the oldest go past
HELD_BYTES; an adopted one goes at once; whatever a worker held before it started belongs
to builds that are over.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections import OrderedDict
from pathlib import Path

from fgo.fileio import OwnDir, write_atomically
from fgo.paths import cache_dir

HELD_BYTES = 2 << 30          # a build's remote archives: etcd 156 MB, aws-sdk-go's subset 283 MB
SHA256 = re.compile(r"^[0-9a-f]{64}$")

_lock = threading.Lock()
_sizes: OrderedDict[str, int] = OrderedDict()   # sha256 -> size, oldest first
_held_bytes = 0                                  # their sum (kept: a wide build holds thousands)
# The held archives' directory, emptied the first time this process uses it; beside the
# sandboxes, on the same disk (so a hard link). Those of workers that are gone go then.
root = OwnDir(cache_dir, "held-")


def keep(path: str, sha: str) -> None:
    """Hold the file at PATH (its sha256 is SHA) for a later publish; best effort."""
    if not SHA256.match(sha):
        return
    base = root()
    dest = base / sha
    try:
        size = os.path.getsize(path)
        os.link(path, dest)
    except FileExistsError:
        size = os.path.getsize(dest)
    except OSError:
        return  # another filesystem, a full disk: the head sends the body instead
    _account(base, sha, size)


def keep_bytes(sha: str, data: bytes) -> bool:
    """Hold DATA, a body a head staged while its build ran, under the output ID SHA it
    named (not checked here: an entry is stored only if its body hashes to the signed
    output ID, fgo.cache.store.store_adopt); whether it is held."""
    if not SHA256.match(sha):
        return False
    base = root()
    try:
        write_atomically(base / sha, data)
    except OSError:
        return False
    _account(base, sha, len(data))
    return True


def keep_part(sha: str, offset: int, total: int, data: bytes) -> bool:
    """DATA at OFFSET of a staged body of TOTAL bytes (parts come in order; the last one
    makes it held, as `keep_bytes` would); whether it was taken."""
    if not SHA256.match(sha) or offset < 0 or offset + len(data) > total:
        return False
    base = root()
    part = base / f".part-{sha}"
    try:
        if offset == 0:
            part.write_bytes(data)
        elif not part.exists() or part.stat().st_size != offset:
            return False  # a part went missing: the head sends the body at the publish
        else:
            with open(part, "ab") as f:
                f.write(data)
        if offset + len(data) == total:
            os.replace(part, base / sha)
            _account(base, sha, total)
    except OSError:
        return False
    return True


def _account(base: Path, sha: str, size: int) -> None:
    """SHA (SIZE bytes) is held now; the oldest go past HELD_BYTES."""
    global _held_bytes
    with _lock:
        _held_bytes += size - _sizes.get(sha, 0)
        _sizes[sha] = size
        _sizes.move_to_end(sha)
        while _held_bytes > HELD_BYTES and len(_sizes) > 1:
            old, n = _sizes.popitem(last=False)
            _held_bytes -= n
            (base / old).unlink(missing_ok=True)


def read(sha: str) -> bytearray | None:
    """The held body SHA, or None: a bytearray, which the publish rewrites in place (an
    archive of tens of MB is held once in memory, not copied)."""
    if not SHA256.match(sha):
        return None
    try:
        with open(root() / sha, "rb") as f:
            data = bytearray(os.fstat(f.fileno()).st_size)
            if f.readinto(data) != len(data):
                return None  # cut short under us
            return data
    except OSError:
        return None


def exclusive(sha: str) -> str | None:
    """The path of the held body SHA when nothing but the hold links its file (its
    compile's sandbox has let go of it): the publish may then rewrite it in place and move
    it into the cluster tier. None otherwise (gone, or still linked elsewhere)."""
    if not SHA256.match(sha):
        return None
    path = root() / sha
    try:
        return str(path) if os.stat(path).st_nlink == 1 else None
    except OSError:
        return None


def release(sha: str) -> None:
    """Drop the held body SHA (its entry is in the cluster tier now)."""
    global _held_bytes
    if not SHA256.match(sha):
        return
    base = root()
    with _lock:
        _held_bytes -= _sizes.pop(sha, 0)
    (base / sha).unlink(missing_ok=True)


def clear() -> None:
    """Drop every held body (the worker is closing)."""
    global _held_bytes
    with _lock:
        _sizes.clear()
        _held_bytes = 0
    base = root.forget()
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
