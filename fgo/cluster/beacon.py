"""The revocation beacon: a token on the scheduler that changes whenever the cluster's
revocations may have.

A head may give go a worker's local cache entry only while it knows every revocation the
cluster keeps; reading them is Dask's import, a connect and a round to every worker
(0.4-0.6 s), which a no-op or an edit would wait for. Instead the scheduler holds a random
token, renewed after every revocation a head sends (ClusterTier.revoke) and whenever a
worker joins (it may keep revocations of its own); a head notes the token before it reads
the index, and a later build asks the beacon for it over one plain TCP line (a
millisecond, no Dask): the same token means the revocations it keeps are the cluster's
(fgo.cache.beacon). A TLS cluster has no beacon (its heads read the revocations).

This module runs on the scheduler (the plugin, `state`, `renew`); fgo.cache.beacon is
the head's side.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlsplit

from distributed.diagnostics.plugin import SchedulerPlugin

from fgo.cache.beacon import QUESTION

ANSWER_S = 5.0  # a client that sends nothing is dropped after this long


class RevocationBeacon(SchedulerPlugin):
    """The token and its listener, on the scheduler's event loop. Installed once per
    scheduler (idempotent): a head's connect must not renew it."""

    name = "fgo-revocation-beacon/1"
    idempotent = True

    def __init__(self) -> None:
        self.token = ""
        self.address = ""   # host:port of the listener, where clients reach the scheduler
        self.server: Any = None

    async def start(self, scheduler: Any) -> None:
        self.renew()
        url = urlsplit(scheduler.address)
        if url.scheme != "tcp" or not url.hostname:
            return  # TLS (or another comm): no beacon, heads read the revocations
        self.server = await asyncio.start_server(self._answer, url.hostname, 0)
        self.address = f"{url.hostname}:{self.server.sockets[0].getsockname()[1]}"

    def renew(self) -> None:
        self.token = secrets.token_hex(16)

    def add_worker(self, scheduler: Any = None, worker: Any = None) -> None:
        self.renew()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            asked = await asyncio.wait_for(reader.readline(), ANSWER_S)
            if asked == QUESTION:
                writer.write(f"{self.token}\n".encode())
                await writer.drain()
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()


def state(dask_scheduler: Any) -> tuple[str, str] | None:
    """(listener address, token) of the scheduler's beacon; None without one (run with
    Client.run_on_scheduler)."""
    beacon = dask_scheduler.plugins.get(RevocationBeacon.name)
    if beacon is None or not beacon.address:
        return None
    return beacon.address, beacon.token


def renew(dask_scheduler: Any) -> bool:
    """A new token: revocations were just sent (run with Client.run_on_scheduler)."""
    beacon = dask_scheduler.plugins.get(RevocationBeacon.name)
    if beacon is None:
        return False
    beacon.renew()
    return True
