"""The cacheprog front (front.go): what go starts as GOCACHEPROG under fgo build.

It answers the gets of a head's own local entries itself (a stamp vouches for the body,
or the body hashes to its output ID and is stamped then), and of the workers' entries too
when its head knows the kept revocations are all the cluster's (FGO_CACHE_REVOKED: their
list, whose entries it leaves to the helper) or checks the hits later
(FGO_CACHE_CHECK_AFTER: it logs each, as the helper does, fgo.cache.trust.used_line), and
execs fgo's Python helper
(fgo.cache.helper) at the first request it cannot answer, handing it the stream: a warm
build's hits cost no interpreter, nor does an edit's rebuild: the first miss after hits,
and go's puts, it answers too. `handoff` reads what it passes on. Started again at a
close (its own, or the helper's: `stamp_later`), it stamps the bodies that build wrote.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("front.go")
NAME = "fgo-cachefront"
FRONT_ENV = "FGO_CACHE_FRONT"  # the front's binary, named to the helper it execs


def front_path() -> Path:
    """The front's binary for this source and toolchain, built on first use."""
    from fgo import toolchain
    return toolchain.go_program(SOURCE, NAME)


def command(helper: list[str], root: Path, size: int, counters: dict[str, Any]) -> list[str]:
    """How go starts the front before HELPER (fgo.cache.helper.command): the local tier's
    ROOT and SIZE limit, and the helper's COUNTERS at zero (what the front writes at a close
    it answers alone)."""
    settings = {"root": str(root), "size": size, "counters": counters}
    return [str(front_path()), json.dumps(settings, sort_keys=True), *helper]


@dataclass(frozen=True)
class Handoff:
    """What the front passes to the helper it execs: its counts and the bytes of go's
    stream it read and did not serve (the request it could not answer first)."""
    gets: int
    local_hits: int
    front: int
    unserved: bytes
    checked_after: int = 0  # of those, workers' entries it logged for the head's check
    misses: int = 0         # gets it answered with a miss (the first after hits)
    written: tuple[str, ...] = ()  # the actions of go's puts it stored in the local tier
    added: int = 0          # their bytes
    reused: int = 0         # of those puts, entries the tier held already


def handoff(arg: str) -> Handoff:
    """The front's handoff argument (ValueError when it is not one)."""
    try:
        msg = json.loads(arg)
        return Handoff(int(msg["gets"]), int(msg["local_hits"]), int(msg["front"]),
                       base64.b64decode(msg["unserved"] or ""),
                       int(msg.get("checked_after", 0)), int(msg.get("misses", 0)),
                       tuple(str(a) for a in msg.get("written") or ()),
                       int(msg.get("added", 0)), int(msg.get("reused", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad handoff from fgo-cachefront: {exc!r}") from None


class Prefixed(io.RawIOBase):
    """FIRST, then the file descriptor FD: go's stream as the front left it."""

    def __init__(self, first: bytes, fd: int) -> None:
        self.first = memoryview(first)
        self.fd = fd

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.first:
            n = min(len(buf), len(self.first))
            buf[:n] = self.first[:n]
            self.first = self.first[n:]
            return n
        data = os.read(self.fd, len(buf))
        buf[:len(data)] = data
        return len(data)


def stream(first: bytes, fd: int) -> io.BufferedReader:
    """A buffered reader of FIRST then FD (what the protocol's reader needs: peek)."""
    return io.BufferedReader(Prefixed(first, fd), buffer_size=1 << 16)


def stamp_later(root: Path, actions: list[str]) -> bool:
    """Start the front that exec'd this helper again, detached, to hash and stamp ACTIONS'
    bodies in the local tier ROOT once they are RACY_S old (front.go stampLater): else the
    first rebuild after a build hashes them on go's path. False when no front started
    this process (plain go's helper), there is nothing to stamp, or it could not start."""
    exe = os.environ.get(FRONT_ENV)
    if not exe or not actions:
        return False
    import tempfile

    from fgo import toolchain
    stamping = root / "stamping"
    try:
        stamping.mkdir(exist_ok=True)
        fd, listed = tempfile.mkstemp(dir=stamping, prefix="list-")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(actions))
        toolchain.detach([exe, "-stamp", str(root), listed], stamping / "log", echo=False)
    except OSError:
        return False
    return True

