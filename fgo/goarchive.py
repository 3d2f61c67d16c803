"""Go's `!<arch>` archives (cmd/internal/archive), at the byte level (pure, stdlib only).

The one reader of a member header: fgo.verify.goobj lists every member of an archive
with it, and `export_data` cuts an archive down to its `__.PKGDEF` (export data) member
on the head's and the worker's hot paths, which is why this lives apart from goobj.
A compile needs only the export data of its imports (rules_go ships `.x` files for the
same reason): an import travels cut down, typically tens of times smaller.
"""

from __future__ import annotations

MAGIC = b"!<arch>\n"
HEADER_SIZE = 60  # name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n"
PKGDEF = "__.PKGDEF"


class ArchiveError(ValueError):
    """A member header that is truncated or corrupt."""


def member_header(data: bytes, off: int) -> tuple[str, int]:
    """(name, size) of the member header at OFF in DATA (the data follows the header;
    the next header starts at the next even offset after it)."""
    hdr = data[off:off + HEADER_SIZE]
    if len(hdr) < HEADER_SIZE:
        raise ArchiveError(f"truncated archive member header at offset {off}")
    if hdr[58:60] != b"`\n":
        raise ArchiveError(f"corrupt archive member header at offset {off}")
    name = hdr[0:16].decode("latin-1").rstrip(" ")
    try:
        size = int(hdr[48:58].decode("ascii").strip())
    except ValueError:
        raise ArchiveError(f"corrupt size in archive member header at offset {off}") from None
    return name, size


def padded(size: int) -> int:
    """A member's SIZE with its padding to an even offset."""
    return size + (size & 1)


def export_data_end(head: bytes) -> int | None:
    """Where the first member ends when HEAD (an archive's first MAGIC + HEADER_SIZE
    bytes, or more) starts an archive whose first member is __.PKGDEF; else None."""
    if not head.startswith(MAGIC):
        return None
    try:
        name, size = member_header(head, len(MAGIC))
    except ArchiveError:
        return None
    if name != PKGDEF:
        return None
    return len(MAGIC) + HEADER_SIZE + padded(size)


def export_data(archive: bytes) -> bytes:
    """ARCHIVE cut down to its first member if that is __.PKGDEF (else unchanged)."""
    end = export_data_end(archive[:len(MAGIC) + HEADER_SIZE])
    return archive if end is None else archive[:end]


def read_export_data(path: str) -> bytes:
    """export_data(PATH's contents), reading only the first member of a large archive."""
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + HEADER_SIZE)
        end = export_data_end(head)
        return head + (f.read() if end is None else f.read(end - len(head)))
