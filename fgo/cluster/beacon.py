"""The revocation beacon: a token on the scheduler that changes whenever the cluster's
revocations may have.

A head may give go a worker's local cache entry only while it knows every revocation the
cluster keeps; reading them is Dask's import, a connect and a round to every worker, which
a no-op or an edit would wait for. Instead the scheduler holds a random token (the plugin,
fgo.worker.service.RevocationBeacon, installed once per scheduler), renewed after every
revocation a head sends (`renew`, from ClusterTier.revoke) and whenever a worker joins (it
may keep revocations of its own), and answers one plain TCP line with it. A head notes the
token (`state`) before it reads the cluster's index, keeps the index's revocations beside
its local tier and records both (`write_seen`); a later build asks the beacon (`ask`: a
millisecond, no Dask) before go starts: the same token means the kept revocations are the
cluster's (`current`). Anything else (another scheduler, no answer, another token) and a
build checks the workers' entries it used once connected, as before. A TLS cluster has no
beacon (its heads read the revocations).

No Dask here: the head's side runs before go starts; `state` and `renew` run on the
scheduler (Client.run_on_scheduler) and only look its plugin up.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

NAME = "fgo-revocation-beacon/1"        # the plugin's name on the scheduler
QUESTION = b"fgo-revocations?\n"        # what a head asks; the answer: the token, a line
ANSWER_S = 5.0                          # the beacon drops a client silent this long
ASK_S = 0.3                             # a beacon slower than this is as good as none
REVOCATIONS_SEEN = "revocations-seen"   # beside the local tier's entries


# ------------------------------------------------------------------ on the scheduler

def state(dask_scheduler: Any) -> tuple[str, str] | None:
    """(listener address, token) of the scheduler's beacon; None without one."""
    beacon = dask_scheduler.plugins.get(NAME)
    if beacon is None or not beacon.address:
        return None
    return beacon.address, beacon.token


def renew(dask_scheduler: Any) -> bool:
    """A new token: revocations were just sent."""
    beacon = dask_scheduler.plugins.get(NAME)
    if beacon is None:
        return False
    beacon.renew()
    return True


# ------------------------------------------------------------------ the head's side

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
    """Nothing recorded: the next build checks what it uses (its index was not read)."""
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
