"""A split's leader, wherever it runs (a worker, fgo.worker.shard, or the head,
fgo.head.headlead): the shards' results fetched into the files its compiler polls for,
its -fgostats read back, the one line a refusing compiler gives.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fgo.wire import CompilerStats, ShardInfo, ShardPeer, ShardResult

JOIN_S = 5.0  # the longest a leader's end waits for its fetch to finish


@dataclass
class Fetched:
    """What a leader's fetch of its shards' results gave: the shards merged, their bytes,
    or why it stopped."""

    shards: list[ShardInfo] = field(default_factory=list)
    bytes: int = 0
    error: str | None = None


def fetch_into(peers: Sequence[ShardPeer], files: dict[int, str],
               get: Callable[[ShardPeer], ShardResult], ended: Callable[[], bool],
               stop: Callable[[], None]) -> Fetched:
    """Each of PEERS' results (GET, all at once) written to FILES[k] as it comes, whole or
    not at all, until the leader has ENDED; on any failure STOP the leader."""
    fetched = Fetched()
    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, len(peers)),
                                                   thread_name_prefix="fgo-fetch") as pool:
            futures = {pool.submit(get, p): p for p in peers}
            for future in concurrent.futures.as_completed(futures):
                if ended():
                    break
                peer, result = futures[future], future.result()
                if not result.ok:
                    raise RuntimeError(f"shard {peer.k} on {result.worker}: {result.status}: "
                                       f"{result.reason}")
                path = files[peer.k]
                Path(path + ".part").write_bytes(result.result)
                os.replace(path + ".part", path)  # the compiler sees a whole file or none
                fetched.bytes += len(result.result)
                fetched.shards.append(ShardInfo(peer.k, result.worker, len(result.result),
                                                round(result.tool_done - result.tool_start, 3),
                                                result.stats or CompilerStats(),
                                                round(time.time() - result.tool_done, 3),
                                                result.tool_start))
    except Exception as exc:  # noqa: BLE001  (lost, late or refused: stop the leader)
        fetched.error = f"{type(exc).__name__}: {exc}"
        stop()
    fetched.shards.sort(key=lambda s: s.k)
    return fetched


def fetch_in_background(peers: Sequence[ShardPeer], files: dict[int, str],
                        get: Callable[[ShardPeer], ShardResult], ended: Callable[[], bool],
                        stop: Callable[[], None]) -> Callable[[], Fetched]:
    """`fetch_into` in a thread of its own, started now; what it gives waits for it, once
    the leader has ended, at most JOIN_S (a shard that never answers: nothing fetched, the
    leader's exit status tells)."""
    done: concurrent.futures.Future[Fetched] = concurrent.futures.Future()
    threading.Thread(target=lambda: done.set_result(fetch_into(peers, files, get, ended, stop)),
                     name="fgo-shard-fetch", daemon=True).start()

    def fetched() -> Fetched:
        try:
            return done.result(timeout=JOIN_S)
        except concurrent.futures.TimeoutError:
            return Fetched()
    return fetched


def stats(path: str) -> CompilerStats | None:
    """A process's -fgostats, if it wrote them."""
    try:
        return CompilerStats.from_json(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return None


def refusal(output: bytes, box: str = "") -> str:
    """The patched compiler's one-line 'fgo: ...' reason, if it gave one, else its last
    line; BOX (a sandbox) removed from paths, so the same reason reads the same in every
    build's summary."""
    text = (output.replace(box.encode() + b"/", b"") if box else output).decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("fgo: "):
            return line[5:]
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"
