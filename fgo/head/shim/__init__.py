"""Build (once) and locate the compiled -toolexec shim (see shim.go for why it is Go), and
make the socket it connects to."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from fgo import toolchain

SOURCE = Path(__file__).with_name("shim.go")
BACKLOG = 128  # connections waiting to be accepted (a go build runs at most -p tools at once)


def shim_path() -> Path:
    """The shim binary for this source and toolchain, built on first use."""
    return toolchain.go_program(SOURCE, "fgo-shim")


def socket_path(tmp: str) -> str:
    """Where a build's shim connects to its head, in the build's scratch directory TMP."""
    return os.path.join(tmp, "shim.sock")


def listen(path: str) -> socket.socket:
    """The unix socket the shim connects to, listening. Made before go build starts, so a
    head may start go first and load what answers the shim while go loads its packages:
    the shim's first connections wait in the backlog (sized for any -p) until the head's
    server accepts them (fgo.head.front.ShimServer)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
