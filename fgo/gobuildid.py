"""go's content build IDs: what go build does to a compile's archive before it caches it.

A compile is given `-buildid ACTION/ACTION`; when it returns, go build hashes the archive
with every occurrence of that ID read as zeros, puts the hash (HashToString) in place of
the second half, writes the new ID over every occurrence, and caches the result under the
action ID (cmd/go/internal/work/buildid.go updateBuildID, cmd/internal/buildid). A worker
that kept a compile's archive can therefore make the very bytes go cached from it, and a
head need not send them back (fgo.cache.store.store_adopt).

The head reads the ID go wrote from the first bytes of its own cached copy
(`written_build_id`) and sends it with the entry; the worker writes it over its archive
and hashes the result in the same pass (`write_build_id_file`): one hash of each
archive, which is also the check against go's signed output ID (a worker that worked
out go's content hash itself read and hashed each archive twice). Pure functions beside
the one file pass: the caller compares the hash with the output ID, so a difference here
costs a resend, never a wrong entry.
"""

from __future__ import annotations

import hashlib
import os

ARCHIVE_MAGIC = b"!<arch>\n"
# go's archives carry the build ID in their first member's header (__.PKGDEF's "build
# id" line, some 200 bytes in)
CACHED_HEAD_BYTES = 1 << 12


def written_build_id(cached_head: bytes, build_id: str) -> str | None:
    """The ID go build wrote over BUILD_ID (`ACTION/ACTION`) in the archive it cached,
    read from that archive's first bytes CACHED_HEAD: `ACTION/` and the content hash after
    it, as long as BUILD_ID; None when it is not an archive or holds no such ID."""
    if not cached_head.startswith(ARCHIVE_MAGIC) or "/" not in build_id:
        return None
    i = cached_head.find(build_id[:build_id.rindex("/") + 1].encode())
    written = cached_head[i:i + len(build_id)] if i >= 0 else b""
    if len(written) != len(build_id) or not written.isascii():
        return None
    return written.decode()


def write_build_id(data: bytearray, old: str, new: str) -> bool:
    """Every occurrence of OLD in DATA overwritten with NEW (as long), in place; whether
    there was one."""
    needle, encoded = old.encode(), new.encode()
    if len(needle) != len(encoded):
        return False
    found, start = False, 0
    while (i := data.find(needle, start)) >= 0:
        data[i:i + len(encoded)] = encoded
        found, start = True, i + len(encoded)
    return found


def write_build_id_file(path: str, old: str, new: str, chunk: int = 1 << 20) -> str | None:
    """`write_build_id` on the archive at PATH, in place and read in chunks (a worker
    adopting a 60 MB archive holds it neither whole nor twice), and the sha256 (hex) of
    the result from the same pass; None, the file left as it was, when it is not an
    archive or holds no OLD. An occurrence that straddles two chunks is found: the bytes
    that could start one are carried over."""
    needle, encoded = old.encode(), new.encode()
    if len(needle) != len(encoded) or not needle:
        return None
    h = hashlib.sha256()
    found = False
    with open(path, "r+b", buffering=0) as f:
        if f.read(len(ARCHIVE_MAGIC)) != ARCHIVE_MAGIC:
            return None
        f.seek(0)
        # no larger than the file: a zeroed 1 MB buffer for each of a build's ~250 small
        # archives was 28 of this function's 35 samples in a worker's profile
        chunk = max(1, min(chunk, os.fstat(f.fileno()).st_size))
        buf = bytearray(chunk + len(needle))  # read into, never grown: no copy of a chunk
        view = memoryview(buf)
        base, carry = 0, 0                  # buf[0] is at file offset base
        while True:
            n = f.readinto(view[carry:carry + chunk])
            end, start = carry + n, 0
            while (i := buf.find(needle, start, end)) >= 0:
                os.pwrite(f.fileno(), encoded, base + i)
                buf[i:i + len(encoded)] = encoded
                found, start = True, i + len(encoded)
            keep = end if not n else max(start, end - len(needle) + 1)
            h.update(view[:keep])
            if not n:
                return h.hexdigest() if found else None
            carry = end - keep
            buf[:carry] = buf[keep:end]
            base += keep
