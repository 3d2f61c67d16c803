"""go's content build IDs: what go build does to a compile's archive before it caches it.

A compile is given `-buildid ACTION/ACTION`; when it returns, go build hashes the archive
with every occurrence of that ID read as zeros, puts the hash (HashToString) in place of
the second half, writes the new ID over every occurrence, and caches the result under the
action ID (cmd/go/internal/work/buildid.go updateBuildID, cmd/internal/buildid). A worker
that kept a compile's archive can therefore make the very bytes go cached from it, and a
head need not send them back (fgo.cache.store.store_adopt). Pure functions: the caller
checks the result against go's output ID, so a difference here costs a resend, never a
wrong entry.
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ARCHIVE_MAGIC = b"!<arch>\n"


def hash_to_string(digest: bytes) -> str:
    """cmd/internal/buildid.HashToString: the first 15 bytes, 20 characters of base64url."""
    out = []
    for i in range(5):
        v = digest[3 * i] << 16 | digest[3 * i + 1] << 8 | digest[3 * i + 2]
        out += [B64[(v >> 18) & 63], B64[(v >> 12) & 63], B64[(v >> 6) & 63], B64[v & 63]]
    return "".join(out)


def find_and_hash(data: bytes, build_id: str) -> tuple[list[int], bytes]:
    """cmd/internal/buildid.FindAndHash on an archive: the offsets of BUILD_ID (left to
    right, not overlapping) and the sha256 of DATA with each of them read as zeros."""
    needle = build_id.encode()
    zeros = bytes(len(needle))
    h = hashlib.sha256()
    matches = []
    view = memoryview(data)
    start = 0
    while (i := data.find(needle, start)) >= 0:
        matches.append(i)
        h.update(view[start:i])
        h.update(zeros)
        start = i + len(needle)
    h.update(view[start:])
    return matches, h.digest()


def _find_and_hash_stream(f: BinaryIO, needle: bytes, chunk: int = 1 << 20
                          ) -> tuple[list[int], bytes]:
    """find_and_hash over the file F read CHUNK bytes at a time: an occurrence that
    straddles two chunks is found, since the bytes that could start one are carried over."""
    zeros = bytes(len(needle))
    h = hashlib.sha256()
    matches: list[int] = []
    base, buf = 0, b""                  # buf[0] is at file offset base
    while True:
        data = f.read(chunk)
        buf = buf + data if buf else data
        view = memoryview(buf)
        start = 0
        while (i := buf.find(needle, start)) >= 0:
            matches.append(base + i)
            h.update(view[start:i])
            h.update(zeros)
            start = i + len(needle)
        if not data:
            h.update(view[start:])
            return matches, h.digest()
        keep = max(start, len(buf) - len(needle) + 1)
        h.update(view[start:keep])
        base, buf = base + keep, buf[keep:]


def rewrite_file(path: str, build_id: str) -> bool:
    """content_rewrite on the file at PATH, in place and read in chunks (a worker adopting
    a 60 MB archive it holds neither copies nor rewrites it whole); False, the file left as
    it was, when go would not rewrite it."""
    if "/" not in build_id:
        return False
    with open(path, "r+b") as f:
        if f.read(len(ARCHIVE_MAGIC)) != ARCHIVE_MAGIC:
            return False
        f.seek(0)
        matches, digest = _find_and_hash_stream(f, build_id.encode())
        new_id = build_id[:build_id.rindex("/")] + "/" + hash_to_string(digest)
        if not matches or len(new_id) != len(build_id):
            return False
        for i in matches:
            os.pwrite(f.fileno(), new_id.encode(), i)
    return True


def content_rewrite(raw: bytes | bytearray, build_id: str) -> bytes | bytearray | None:
    """The archive go build caches for a compile that wrote RAW when given `-buildid
    BUILD_ID`; None when go would not rewrite it (no occurrence) or it is not an archive
    (go leaves a host build ID out of the hash of an ELF or Mach-O file). A bytearray is
    rewritten in place: a worker adopting a 60 MB archive holds it once, not three times."""
    if not raw.startswith(ARCHIVE_MAGIC) or "/" not in build_id:
        return None
    matches, digest = find_and_hash(raw, build_id)
    if not matches:
        return None
    new_id = build_id[:build_id.rindex("/")] + "/" + hash_to_string(digest)
    if len(new_id) != len(build_id):
        return None
    out = raw if isinstance(raw, bytearray) else bytearray(raw)
    encoded = new_id.encode()
    for i in matches:
        out[i:i + len(encoded)] = encoded
    return out
