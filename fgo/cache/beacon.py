"""The head's side of the revocation beacon (fgo.cluster.beacon): is what this head keeps
of the cluster's revocations still all of them?

After a build has read the cluster's index, the local tier records the scheduler, its
beacon's address and the token the beacon gave before the index was read
(`REVOCATIONS_SEEN`); the revocations themselves are kept beside the tier. A later build
asks the beacon for its token (one line over TCP, no Dask) before go starts: the same
token means no revocation was sent and no worker joined since, so the kept revocations
are the cluster's and go may be given a worker's entry at once (`current`). Anything else
(another scheduler, no answer, another token) means a build waits for the index as before.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

QUESTION = b"fgo-revocations?\n"
REVOCATIONS_SEEN = "revocations-seen"   # beside the local tier's entries
ASK_S = 0.3                             # a beacon slower than this is as good as none


def ask(address: str, timeout: float = ASK_S) -> str | None:
    """The token of the beacon at ADDRESS (host:port), or None when it does not answer
    within TIMEOUT seconds."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(QUESTION)
            answer = b""
            while not answer.endswith(b"\n") and len(answer) < 100:
                chunk = s.recv(100)
                if not chunk:
                    break
                answer += chunk
    except (OSError, ValueError):
        return None
    token = answer.decode("ascii", "replace").strip()
    return token if answer.endswith(b"\n") and token else None


def current(seen: dict[str, Any] | None, scheduler: str, token: str | None) -> bool:
    """Whether the revocations recorded as SEEN are still all of SCHEDULER's: its beacon
    answered TOKEN, the one noted before they were read."""
    return bool(seen and token and seen.get("scheduler") == scheduler
                and seen.get("token") == token)


def read_seen(root: Path) -> dict[str, Any] | None:
    try:
        seen = json.loads((root / REVOCATIONS_SEEN).read_text())
    except (OSError, ValueError):
        return None
    return seen if isinstance(seen, dict) and isinstance(seen.get("address"), str) else None


def write_seen(root: Path, scheduler: str, address: str, token: str) -> None:
    """Record that the revocations kept beside ROOT are all SCHEDULER's as of TOKEN."""
    from fgo.fileio import write_atomically
    root.mkdir(parents=True, exist_ok=True)
    write_atomically(root / REVOCATIONS_SEEN, json.dumps(
        {"scheduler": scheduler, "address": address, "token": token}).encode())


def forget_seen(root: Path) -> None:
    """Nothing recorded: the next build asks the cluster (its index could not be read)."""
    try:
        (root / REVOCATIONS_SEEN).unlink()
    except OSError:
        pass


def still_current(root: Path, scheduler: str) -> bool:
    """Ask the recorded beacon (ROOT's record) whether its revocations are still current."""
    seen = read_seen(root)
    if seen is None or seen.get("scheduler") != scheduler:
        return False
    return current(seen, scheduler, ask(seen["address"]))
