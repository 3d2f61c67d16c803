"""The shared build cache (fgo cacheprog): go's protocol, the local and cluster tiers, two
head nodes sharing one real cluster, and faults that must end in a miss, never a wrong or
failed build. Identity is always checked against oracle_build."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conftest import (FGO, HELLO, RealCluster, make_certs, oracle_build, run_fgo, sha,
                      tls_flags, wait_until, write_tree)
from fgo import paths, toolchain, wire
from fgo.cache import store
from fgo.cache import tier
from fgo.cache import trust
from fgo.wire import CacheEntry, CacheRevocation, HeldEntry
from fgo.cache import protocol
from fgo.cache.local import DiskTier, EntryInfo, lru_victims, namespace
from fgo.settings import parse_size
from fgo.cache.server import remote_verdict
from fgo.cache.session import go_quote
from fgo.cluster import beacon

NS = namespace(toolchain.identity())


# ------------------------------------------------------------------ decisions (pure)

def test_placement_is_rendezvous_hashing() -> None:
    workers = [f"tcp://10.0.0.{i}:9000" for i in range(1, 6)]
    actions = [f"{i:064x}" for i in range(500)]
    before = {a: tier.owner(a, workers) for a in actions}
    assert before == {a: tier.owner(a, list(reversed(workers))) for a in actions}  # order-free
    counts = {w: list(before.values()).count(w) for w in workers}
    assert min(counts.values()) > 60, counts  # 100 each on average
    gone = workers[2]
    after = {a: tier.owner(a, [w for w in workers if w != gone]) for a in actions}
    moved = [a for a in actions if after[a] != before[a]]
    assert moved and all(before[a] == gone for a in moved)  # only the lost worker's share
    assert tier.owner(actions[0], []) is None


def test_lru_evicts_least_recently_used_and_spares_others_recent_files() -> None:
    now = 1000.0
    entries = [EntryInfo("old", 10, 100.0), EntryInfo("mid", 10, 500.0),
               EntryInfo("new", 10, 990.0), EntryInfo("mine", 10, 995.0)]
    assert lru_victims(entries, 25, now, grace=0) == ["old", "mid"]
    assert lru_victims(entries, 40, now, grace=0) == []
    # within the grace another go may still read new/mine; this process released "mine"
    assert lru_victims(entries, 0, now, grace=60) == ["old", "mid"]
    assert lru_victims(entries, 0, now, grace=60, released=frozenset({"mine"})) == \
        ["old", "mid", "mine"]


def test_a_slow_or_failing_remote_is_skipped() -> None:
    assert remote_verdict([], 1.0) is None
    assert remote_verdict([0.01] * 20, 1.0) is None
    assert "took 1.50s" in remote_verdict([0.01, 1.5], 1.0)
    assert "median" in remote_verdict([0.3] * 8, 1.0)      # slower than a quarter of the limit
    assert remote_verdict([0.3] * 7, 1.0) is None           # too few to judge


def test_sizes_quoting_and_batches() -> None:
    assert parse_size("0") == 0 and parse_size("64k") == 65536 and parse_size("5G") == 5 << 30
    with pytest.raises(ValueError):
        parse_size("lots")
    assert go_quote(["/a b/python", "-m", "x"]) == "'/a b/python' -m x"
    assert tier.batches([("a", 5), ("b", 5), ("c", 20), ("d", 1)], 10) == [["a", "b"], ["c"], ["d"]]


STREAMS = [io.BytesIO,  # no peek: lines as they come; a pipe's reader, with a small buffer
           lambda data: io.BufferedReader(io.BytesIO(data), 16)]  # type: ignore[arg-type]


@pytest.mark.parametrize("stream_of", STREAMS)
def test_protocol_round_trip_as_go_frames_it(stream_of: Any) -> None:
    put = protocol.Request(7, "put", bytes(range(32)), bytes(32), b"body\n\x00")
    get = protocol.Request(8, "get", bytes(32))
    stream = stream_of(protocol.encode_request(put) + protocol.encode_request(get))
    assert protocol.read_request(stream) == put
    assert protocol.read_request(stream) == get
    assert protocol.read_request(stream) is None
    resp = protocol.Response(7, output_id=b"\x01" * 32, size=6, time=1.5e9, disk_path="/x/y-d")
    assert protocol.decode_response(protocol.encode_response(resp)) == resp
    assert protocol.encode_response(protocol.Response(3, miss=True)) == b'{"ID":3,"Miss":true}\n'
    with pytest.raises(protocol.ProtocolError):
        protocol.read_request(stream_of(b'{"ID": 1, "Command": "put", "BodySize": 9}\n"eA=="\n'))
    # a body line with JSON escapes (which encoding/json never writes for base64) still reads
    escaped = b'{"ID": 2, "Command": "put", "BodySize": 3}\n"\\u0059\\/8A"\n'
    stream = stream_of(escaped + protocol.encode_request(get))
    assert protocol.read_request(stream).body == base64.b64decode("Y/8A")
    assert protocol.read_request(stream) == get  # the longer line read to its end, no further


def test_disk_tier_refuses_and_deletes_damaged_entries(tmp_path: Path) -> None:
    import hashlib
    store = DiskTier(tmp_path / "t")
    body = b"an archive"
    a, out = "ab" * 32, hashlib.sha256(body).hexdigest()
    with pytest.raises(ValueError):
        store.put(a, "00" * 32, body)  # a body that does not hash to its output ID
    entry = store.put(a, out, body)
    assert store.get(a).path == entry.path and entry.path.read_bytes() == body
    entry.path.write_bytes(b"an archivX")  # damaged on disk: a miss, and deleted
    assert store.get(a) is None and not entry.path.exists()
    store.put(a, out, body)
    assert store.evict_prefix(a[:30]) and store.get(a) is None


def test_a_stamp_vouches_for_an_unchanged_body_only() -> None:
    from types import SimpleNamespace as St
    from fgo.cache.local import RACY_S, body_stamp, stamp_vouches
    st = St(st_ino=7, st_size=100, st_mtime_ns=5_000_000_000, st_ctime_ns=5_000_000_000)
    stamp = body_stamp(st, 5.0 + RACY_S)
    assert stamp_vouches(stamp, st)
    for changed in ({"st_ino": 8}, {"st_size": 101}, {"st_mtime_ns": 5_000_000_001},
                    {"st_ctime_ns": 5_000_000_001}):  # replaced, grown, written, chmod-ed
        assert not stamp_vouches(stamp, St(**{**vars(st), **changed}))
    # taken in the same clock tick as the last write: that write could have left the times
    assert not stamp_vouches(body_stamp(st, 5.0 + RACY_S / 2), st)
    assert not stamp_vouches("", st) and not stamp_vouches("1.2.x", st)


def test_a_get_hashes_a_body_once_until_it_changes(tmp_path: Path, monkeypatch) -> None:
    """A no-op build's gets each hashed their whole body; a stamp spares the hash until
    the body's file changes, and a change is still caught. (RACY_S is set for the test:
    a sleep of a clock tick or more stands for the real 2 s.)"""
    import hashlib
    import time as _time
    from fgo.cache import local
    hashed = []
    real = local.file_sha256
    monkeypatch.setattr(local, "file_sha256", lambda p: hashed.append(p) or real(p))
    monkeypatch.setattr(local, "RACY_S", 3600.0)
    tier_ = DiskTier(tmp_path / "t")
    body = b"an archive" * 100
    a = "ab" * 32
    entry = tier_.put(a, hashlib.sha256(body).hexdigest(), body)
    assert tier_.get(a) and len(hashed) == 1
    # within RACY_S of the put's write, a get hashes and stamps nothing
    assert tier_.get(a).stamp == "" and len(hashed) == 2
    monkeypatch.setattr(local, "RACY_S", 0.0)
    _time.sleep(0.05)
    hashed.clear()
    assert tier_.get(a) and tier_.get(a) and tier_.get(a, verify=True)
    assert len(hashed) == 1, hashed                      # hashed and stamped once
    _time.sleep(0.05)
    os.chmod(entry.path, 0o644)                          # its ctime moved: hashed again
    _time.sleep(0.05)
    assert tier_.get(a) and len(hashed) == 2
    _time.sleep(0.05)
    with open(entry.path, "r+b") as f:                   # same size, other bytes
        f.write(b"X")
    assert tier_.get(a) is None and len(hashed) == 3 and not entry.path.exists()


def test_trimming_is_due_when_the_tier_may_have_outgrown_its_limit() -> None:
    from fgo.cache.local import TRIM_EVERY_S, trim_due
    assert trim_due(None, 0, 100, 0.0)                     # never trimmed
    assert not trim_due((0.0, 60), 0, 100, 10.0)           # a no-op build: nothing listed
    assert not trim_due((0.0, 60), 40, 100, 10.0)
    assert trim_due((0.0, 60), 41, 100, 10.0)              # over the limit now
    assert trim_due((0.0, 0), 0, 100, TRIM_EVERY_S)        # others' puts, an hour on


def test_a_closing_cacheprog_lists_the_tier_only_when_due(tmp_path: Path,
                                                          monkeypatch) -> None:
    import hashlib
    tier_ = DiskTier(tmp_path / "t")
    for i in range(3):
        body = b"x" * 40 + bytes([i])
        tier_.put(f"{i:02x}" * 32, hashlib.sha256(body).hexdigest(), body)
    listed = []
    real = DiskTier.entries
    monkeypatch.setattr(DiskTier, "entries", lambda self: listed.append(1) or real(self))
    assert tier_.trim_if_due(1000, 0.0, frozenset(), 123) == [] and len(listed) == 1
    assert tier_.trim_if_due(1000, 0.0, frozenset(), 0) == [] and len(listed) == 1
    assert (tmp_path / "t" / "trimmed").read_text().split()[1] == "123"  # 3 x 41 bytes
    assert len(tier_.trim_if_due(100, 0.0, frozenset(), 0)) == 1  # 123 > 100: trimmed
    assert len(listed) == 2 and tier_.stats()["bytes"] == 82


def test_a_workers_share_is_listed_at_a_publish_only_when_due(tmp_path: Path,
                                                              monkeypatch) -> None:
    """store_put keeps its worker's share within the limit, listing it only when the puts
    since its last trim may have taken it over."""
    import hashlib
    monkeypatch.setenv("FGO_SHARED_CACHE_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("FGO_CACHE_SIZE", "300")
    listed = []
    real = DiskTier.entries
    monkeypatch.setattr(DiskTier, "entries", lambda self: listed.append(1) or real(self))
    ns = "go1.27.3-0123456789abcdef"

    def entries(first: int, n: int) -> list[CacheEntry]:
        bodies = [bytes([i]) * 100 for i in range(first, first + n)]
        return [CacheEntry(f"{i:02x}" * 32, hashlib.sha256(b).hexdigest(), b, time.time())
                for i, b in enumerate(bodies, first)]
    assert store.store_put(ns, entries(0, 1)) == 1 and len(listed) == 1  # never trimmed
    assert store.store_put(ns, entries(1, 1)) == 1 and len(listed) == 1  # 200 bytes: fits
    assert store.store_put(ns, entries(2, 2)) <= 2 and len(listed) == 2  # 400: trimmed
    assert store.store_stats(ns)["namespaces"][ns]["bytes"] == 300    # the oldest went


def test_a_cacheprog_meets_the_cluster_only_when_a_get_needs_it(tmp_path: Path) -> None:
    """A no-op build's gets are all local hits: the cluster tier is never connected (no
    Dask import beside the answers). A miss connects it; so does a hit a worker produced
    (a head may have revoked it since), and it waits for that."""
    import hashlib
    from fgo.cache.server import Server
    local = DiskTier(tmp_path / "local")
    own, theirs = b"go's own put", b"fetched from a worker"
    local.put("01" * 32, hashlib.sha256(own).hexdigest(), own)
    local.put("02" * 32, hashlib.sha256(theirs).hexdigest(), theirs, producer=W1)
    connects = []

    class NoTier:  # a cluster tier that holds nothing and revokes W1
        where: dict = {}
        records: dict = {}
        forged = refused = 0
        revocations: list = []
        revoked = trust.Revoked()
    NoTier.revoked.add(trust.revoke_producer(KEY, "ns", W1, "wrong", 1.0))

    def remote():
        connects.append(1)
        return NoTier()

    def serve(*actions: str) -> bytes:
        server = Server(local, remote, 2.0, 1 << 40)
        out = io.BytesIO()
        reqs = [protocol.Request(i + 1, "get", bytes.fromhex(a)) for i, a in enumerate(actions)]
        server.serve(io.BytesIO(b"".join(map(protocol.encode_request, reqs))
                                + protocol.encode_request(protocol.Request(99, "close"))), out)
        assert server.counters.remote == ("unused" if not connects else "ready")
        return out.getvalue()

    assert b"DiskPath" in serve("01" * 32) and connects == []       # a local hit alone
    answer = serve("02" * 32)                                      # a worker's: revoked
    assert connects == [1] and b"Miss" in answer and local.get("02" * 32) is None
    connects.clear()
    assert b"Miss" in serve("03" * 32) and connects == [1]          # a miss


def test_a_warm_caches_miss_neither_waits_for_the_cluster_nor_asks_for_it(
        tmp_path: Path) -> None:
    """Under a head that connects on demand (fgo build, a scheduler given): while every get
    missed (a cold build), a miss asks the head to connect (its doorbell) and waits for the
    tier; once one was a local hit (a warm cache: an edit), a miss is answered at once and
    asks for nothing, so an edit never waits for Dask's import and the connect."""
    import hashlib
    import threading
    from fgo.cache.server import Server, miss_waits_for_tier
    assert miss_waits_for_tier(0) and not miss_waits_for_tier(1)
    local = DiskTier(tmp_path / "local")
    body = b"go's own put"
    local.put("01" * 32, hashlib.sha256(body).hexdigest(), body)
    never = threading.Event()

    def remote():  # the head never connects: its index never comes
        never.wait(30)
        raise RuntimeError("not connected")

    def serve(*actions: str) -> tuple[bytes, int, float]:
        asked: list[int] = []
        server = Server(local, remote, 0.1, 1 << 40, want=lambda: asked.append(1))
        out = io.BytesIO()
        reqs = [protocol.Request(i + 1, "get", bytes.fromhex(a)) for i, a in enumerate(actions)]
        t0 = time.monotonic()
        server.serve(io.BytesIO(b"".join(map(protocol.encode_request, reqs))
                                + protocol.encode_request(protocol.Request(99, "close"))), out)
        return out.getvalue(), len(asked), time.monotonic() - t0

    answer, asked, took = serve("03" * 32)                   # cold: asks, waits its limit
    assert b"Miss" in answer and asked == 1 and took >= 0.9, (asked, took)
    answer, asked, took = serve("01" * 32, "03" * 32)        # warm: at once, asks nothing
    assert b"DiskPath" in answer and b"Miss" in answer and asked == 0 and took < 0.5, took
    never.set()


def test_fgo_builds_helper_starts_from_its_heads_settings(tmp_path: Path) -> None:
    """The helper go starts under fgo build (fgo.cache.helper.command: the head's settings
    as one JSON argument, no command line): it serves go's protocol as `fgo cacheprog`
    does; settings it cannot read are one line and exit 2, never a traceback."""
    import sys
    from fgo.cache.helper import command
    from fgo.cache.session import go_quote
    key = key_file(tmp_path)
    argv = command("tcp://127.0.0.1:9", (None, None, None), 1 << 30, 1.0, str(key), 0.03)
    assert argv[:3] == [sys.executable, "-I", "-S"] and go_quote(argv)
    env = {**os.environ, "GOCACHE": str(tmp_path / "gc"), "HOME": str(tmp_path)}
    reqs = [protocol.Request(1, "get", b"\x01" * 32), protocol.Request(99, "close")]
    proc = subprocess.run(argv, input=b"".join(map(protocol.encode_request, reqs)), env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b'"KnownCommands"' in proc.stdout and b'"Miss":true' in proc.stdout.replace(b" ", b"")
    for bad in ("{}", "not json"):
        proc = subprocess.run([*argv[:-1], bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("fgo cacheprog: bad settings"), proc.stderr


def _stamped(tier_: DiskTier, action: str, body: bytes, producer: str = "") -> Any:
    """An entry as a get leaves it after hashing its body (stamped 3 s after its change:
    the front trusts only stamps taken RACY_S after it)."""
    import hashlib
    from fgo.cache import local
    e = tier_.put(action, hashlib.sha256(body).hexdigest(), body, 1.7e9 + 0.1234567,
                  0.5, producer, bool(producer), "sig" if producer else "")
    st = e.path.stat()
    return tier_._restamp(tier_._paths(action)[0], e, local.body_stamp(st, st.st_ctime + 3))


def _cacheprog_session(argv: list[str], env: dict[str, str], reqs: list[Any]
                       ) -> tuple[list[protocol.Response], dict[str, Any]]:
    proc = subprocess.run(argv, input=b"".join(map(protocol.encode_request, reqs)), env=env,
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = Path(env["FGO_CACHE_STATS"])
    counters = json.loads(stats.read_text())
    stats.unlink()
    return [protocol.decode_response(line) for line in proc.stdout.splitlines()], counters


def _front_setup(tmp_path: Path, name: str = "gc"
                 ) -> tuple[DiskTier, dict[str, str], list[str], list[str]]:
    """A local tier in tmp_path/NAME (its trim not due), go's environment under fgo build,
    the front's command and the helper's alone."""
    from fgo.cache import front
    from fgo.cache.helper import command
    from fgo.cache.local import local_root
    from fgo.cache.server import Counters
    gocache = tmp_path / name
    root = local_root(gocache, NS)
    root.mkdir(parents=True, exist_ok=True)
    (root / "trimmed").write_text(f"{time.time():.3f} 0\n")
    helper = command("tcp://127.0.0.1:9", (None, None, None), 1 << 30, 0.2,
                     str(key_file(tmp_path)), 0.0)
    env = {**os.environ, "GOCACHE": str(gocache), "HOME": str(tmp_path),
           "FGO_CACHE_STATS": str(tmp_path / f"{name}.json"),
           "FGO_CACHE_PENDING": str(tmp_path / f"{name}.jsonl")}
    argv = front.command(helper, root, 1 << 30, Counters(remote="unused").to_json())
    return DiskTier(root), env, argv, helper


def test_the_cacheprog_front_answers_stamped_hits_and_hands_the_rest_on(tmp_path: Path) -> None:
    """fgo.cache.front: go's gets of a head's own stamped entries answered by the Go front
    as the Python helper answers them; at the first request it cannot answer (a worker's
    entry, a miss, a put with its body) the helper takes the stream over, greeting go
    once, every request answered once; a due trim or kept revocations are the helper's."""
    import hashlib
    from fgo.cache import front
    from fgo.cache.helper import command
    from fgo.cache.local import local_root
    from fgo.cache.server import Counters
    gocache = tmp_path / "gc"
    root = local_root(gocache, NS)
    tier_ = DiskTier(root)
    a, b, c, d, e = ("a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32, "e5" * 32)
    mine, other = _stamped(tier_, a, b"mine" * 50), _stamped(tier_, b, b"also mine")
    _stamped(tier_, c, b"a worker's", producer="tcp://10.0.0.1:9000")
    (root / "trimmed").write_text(f"{time.time():.3f} 0\n")
    helper = command("tcp://127.0.0.1:9", (None, None, None), 1 << 30, 0.2,
                     str(key_file(tmp_path)), 0.0)
    argv = front.command(helper, root, 1 << 30, Counters(remote="unused").to_json())
    assert go_quote(argv)
    env = {**os.environ, "GOCACHE": str(gocache), "HOME": str(tmp_path),
           "FGO_CACHE_STATS": str(tmp_path / "stats.json"),
           "FGO_CACHE_PENDING": str(tmp_path / "pending.jsonl")}
    hits = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "get", bytes.fromhex(b)),
            protocol.Request(3, "close")]
    by_front, counters = _cacheprog_session(argv, env, hits)
    by_helper, alone = _cacheprog_session(helper, env, hits)
    assert by_front[0].known_commands == protocol.COMMANDS
    assert counters["front"] == 2 and counters["gets"] == counters["local_hits"] == 2
    assert counters["inline"] == 0 and set(counters) == set(alone)  # no interpreter ran
    assert alone["inline"] == 2 and alone["front"] == 0
    for x, y, entry_ in zip(by_front[1:3], by_helper[1:3], (mine, other)):
        assert (x.id, x.output_id, x.size, x.disk_path) == (y.id, y.output_id, y.size, y.disk_path)
        assert x.output_id.hex() == entry_.output and x.disk_path == str(entry_.path)
        assert abs(x.time - y.time) < 1e-6 and x.miss is False
    assert by_front[3].id == 3

    body = b"a put's body" * 1000
    rest = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "get", bytes.fromhex(c)),
            protocol.Request(3, "get", bytes.fromhex(d)),
            protocol.Request(4, "put", bytes.fromhex(e), hashlib.sha256(body).digest(), body),
            protocol.Request(5, "close")]
    resps, counters = _cacheprog_session(argv, env, rest)
    assert resps[0].known_commands and resps[-1].id == 5  # greeted once, closed last
    answered = {r.id: r for r in resps}                   # the rest in any order
    assert sorted(r.id for r in resps) == [0, 1, 2, 3, 4, 5]
    assert not answered[1].miss and not answered[2].miss and answered[3].miss
    assert not answered[4].err
    assert counters["front"] == 1 and counters["gets"] == 3 and counters["misses"] == 1
    assert counters["local_hits"] == 2 and counters["puts"] == 1
    assert e in Path(env["FGO_CACHE_PENDING"]).read_text()
    assert tier_.get(e).output == hashlib.sha256(body).hexdigest()

    (root / "trimmed").write_text("0.000 0\n")  # a trim due: the helper closes
    resps, counters = _cacheprog_session(argv, env, hits)
    assert [r.id for r in resps] == [0, 1, 2, 3] and counters["front"] == 2
    assert float((root / "trimmed").read_text().split()[0]) > time.time() - 60

    (root / "revoked").mkdir(exist_ok=True)
    (root / "revoked" / "r.json").write_text("{}")  # only the helper reads them
    resps, counters = _cacheprog_session(argv, env, hits)
    assert [r.id for r in resps] == [0, 1, 2, 3] and counters["front"] == 0
    assert counters["inline"] == 2

    bad = subprocess.run([argv[0], "not json", *helper], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("fgo cacheprog: bad settings")


def test_the_cacheprog_front_hashes_and_stamps_as_the_helper_does(tmp_path: Path) -> None:
    """A head's entry no get has hashed yet (the first rebuild after the build that put
    it): the front hashes its body, answers the hit, and stamps it as DiskTier.get would
    (unless its file changed within RACY_S), so that the next get needs no hash; a body
    that does not hash to its output ID is the helper's, which removes it: a miss."""
    import hashlib
    from fgo.cache import front, local
    from fgo.cache.helper import command
    from fgo.cache.local import local_root
    from fgo.cache.server import Counters
    gocache = tmp_path / "gc"
    root = local_root(gocache, NS)
    tier_ = DiskTier(root)
    a, b = "a1" * 32, "b2" * 32
    fresh = tier_.put(a, hashlib.sha256(b"fresh body").hexdigest(), b"fresh body")
    bad = tier_.put(b, hashlib.sha256(b"good body").hexdigest(), b"good body")
    bad.path.chmod(0o644)
    bad.path.write_bytes(b"evil body")          # same size, other bytes, no stamp
    (root / "trimmed").write_text(f"{time.time():.3f} 0\n")
    helper = command("tcp://127.0.0.1:9", (None, None, None), 1 << 30, 0.2,
                     str(key_file(tmp_path)), 0.0)
    argv = front.command(helper, root, 1 << 30, Counters(remote="unused").to_json())
    env = {**os.environ, "GOCACHE": str(gocache), "HOME": str(tmp_path),
           "FGO_CACHE_STATS": str(tmp_path / "stats.json"),
           "FGO_CACHE_PENDING": str(tmp_path / "pending.jsonl")}
    get_a = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "close")]
    resps, counters = _cacheprog_session(argv, env, get_a)
    assert counters["front"] == 1 and resps[1].output_id.hex() == fresh.output
    assert tier_.record(a).stamp == ""             # too fresh to stamp: hashed again next
    time.sleep(local.RACY_S + 0.1)
    resps, counters = _cacheprog_session(argv, env, get_a)
    assert counters["front"] == 1 and not resps[1].miss
    stamped = tier_.record(a)
    st = fresh.path.stat()
    assert stamped.stamp and local.stamp_vouches(stamped.stamp, st)
    assert stamped.stamp.rsplit(".", 1)[0] == local.body_stamp(st, 0).rsplit(".", 1)[0]
    assert (stamped.output, stamped.size, stamped.put_time) == \
        (fresh.output, fresh.size, round(fresh.put_time, 3))
    resps, counters = _cacheprog_session(
        argv, env, [protocol.Request(1, "get", bytes.fromhex(b)), protocol.Request(2, "close")])
    assert counters["front"] == 0 and resps[1].miss and not bad.path.exists()


def test_an_edits_rebuild_is_served_by_the_front_alone(tmp_path: Path) -> None:
    """An edit's rebuild: hits, then a miss (the first after hits, which the helper too
    answers at once: its cluster tier is not ready before it has been asked for), then go's
    put of what it compiled. The front answers all of it, no interpreter started: the put
    stored and listed for fgo build as the helper stores and lists it. A second miss is the
    helper's (it looks at the cluster tier), which carries the front's counts and puts on;
    a miss before any hit (a cold build's, which waits for the cluster tier) stays its."""
    import hashlib

    from fgo.cache.stage import read_puts
    a, d, e = "a1" * 32, "d4" * 32, "e5" * 32
    body = b"the edit's archive" * 100
    put_d = protocol.Request(3, "put", bytes.fromhex(d), hashlib.sha256(body).digest(), body)

    def tier_and_env(name: str) -> tuple[DiskTier, dict[str, str], list[str], list[str]]:
        tier_, env, argv, helper = _front_setup(tmp_path, name)
        _stamped(tier_, a, b"mine" * 50)
        return tier_, env, argv, helper

    tier_, env, argv, helper = tier_and_env("front")
    edit = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "get", bytes.fromhex(d)),
            put_d, protocol.Request(4, "close")]
    resps, counters = _cacheprog_session(argv, env, edit)
    assert [r.id for r in resps] == [0, 1, 2, 3, 4]
    assert not resps[1].miss and resps[2].miss and not resps[3].err
    assert counters["inline"] == 0  # no interpreter ran
    assert (counters["front"], counters["front_misses"], counters["front_puts"]) == (1, 1, 1)
    assert (counters["gets"], counters["misses"], counters["puts"]) == (2, 1, 1)
    assert counters["stamp_later"] == 1
    by_front = tier_.record(d)
    assert resps[3].disk_path == str(by_front.path) and by_front.path.read_bytes() == body
    assert float((tier_.root / "trimmed").read_text().split()[1]) == len(body)  # counted

    alone, env_alone, _, _ = tier_and_env("helper")
    resps, counters = _cacheprog_session(helper, env_alone, edit)
    by_helper = alone.record(d)
    assert (by_front.output, by_front.size, by_front.seconds, by_front.producer) == \
        (by_helper.output, by_helper.size, by_helper.seconds, by_helper.producer)
    assert abs(by_front.put_time - by_helper.put_time) < 60
    listed = [read_puts(Path(v["FGO_CACHE_PENDING"]).read_bytes().splitlines())
              for v in (env, env_alone)]
    assert listed[0] == listed[1] and [p.action for p in listed[0]] == [d]

    tier_, env, argv, _ = tier_and_env("second")
    two = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "get", bytes.fromhex(d)),
           put_d, protocol.Request(4, "get", bytes.fromhex(e)), protocol.Request(5, "close")]
    resps, counters = _cacheprog_session(argv, env, two)
    answered = {r.id: r for r in resps}
    assert answered[2].miss and not answered[3].err and answered[4].miss
    assert (counters["front_misses"], counters["misses"], counters["front_puts"]) == (1, 2, 1)
    assert counters["puts"] == 1 and counters["stamp_later"] == 1  # the front's put, carried

    tier_, env, argv, _ = tier_and_env("cold")
    cold = [protocol.Request(1, "get", bytes.fromhex(e)), protocol.Request(2, "get", bytes.fromhex(a)),
            protocol.Request(3, "close")]
    resps, counters = _cacheprog_session(argv, env, cold)
    answered = {r.id: r for r in resps}
    assert answered[1].miss and not answered[2].miss
    assert (counters["front"], counters["front_misses"], counters["misses"]) == (0, 0, 1)


def test_what_a_build_wrote_is_stamped_after_it_not_at_the_next_get(tmp_path: Path) -> None:
    """The helper the front exec'd leaves the entries it wrote to the front's stamper at its
    close (front.go stampLater): once their bodies are RACY_S old each is hashed and stamped
    as a get would (the next get hashes nothing), but not a body changed after its put (a
    wrong body stays the next get's, which removes it). The helper alone (plain go) starts
    none."""
    import hashlib

    from fgo.cache import local
    tier_, env, argv, helper = _front_setup(tmp_path)
    root = tier_.root
    # stamped in this order: once the second is, the first was looked at
    bodies = {"b2" * 32: b"tampered" * 500, "a1" * 32: b"kept" * 1000}
    puts = [protocol.Request(i, "put", bytes.fromhex(a), hashlib.sha256(b).digest(), b)
            for i, (a, b) in enumerate(bodies.items(), 1)]
    resps, counters = _cacheprog_session(argv, env, [*puts, protocol.Request(3, "close")])
    assert not any(r.err for r in resps) and counters["stamp_later"] == 2
    bad, good = (tier_.record(a) for a in bodies)
    assert good.stamp == bad.stamp == ""  # a stamp now could not tell a write in this tick
    bad.path.chmod(0o644)
    bad.path.write_bytes(b"Tampered" * 500)  # same size, other bytes
    deadline = time.time() + 30
    while not tier_.record("a1" * 32).stamp and time.time() < deadline:
        time.sleep(0.2)
    good = tier_.record("a1" * 32)
    assert good.stamp and local.stamp_vouches(good.stamp, good.path.stat())
    assert tier_.record("b2" * 32).stamp == ""
    assert list((root / "stamping").glob("list-*")) == []  # its list, removed once read
    resps, counters = _cacheprog_session(
        argv, env, [protocol.Request(1, "get", bytes.fromhex("b2" * 32)),
                    protocol.Request(2, "close")])
    assert resps[1].miss and tier_.record("b2" * 32) is None

    other = {**env, "GOCACHE": str(tmp_path / "plain")}
    _, alone = _cacheprog_session(helper, other, [puts[0], protocol.Request(3, "close")])
    assert alone["puts"] == 1 and alone["stamp_later"] == 0


def test_workers_hits_are_answered_at_once_and_logged_for_the_heads_check(
        tmp_path: Path) -> None:
    """Under fgo build (FGO_CACHE_CHECK_AFTER) a worker's local entry is given to go without
    waiting for the cluster's revocations, by the front and by the helper it hands over
    to alike, each logged first as trust.used_line writes it (the producer's address
    escaped by Go and by Python, read back the same); a kept revocation still refuses its
    entry, unlogged. Without the variable the front leaves a worker's entry to the helper."""
    from fgo.cache import front
    from fgo.cache.helper import command
    from fgo.cache.local import local_root
    from fgo.cache.server import Counters
    gocache = tmp_path / "gc"
    root = local_root(gocache, NS)
    tier_ = DiskTier(root)
    a, b, c, d = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32
    w1, w2 = "tcp://10.0.0.1:9000", "tcp://10.0.0.2:9000+tcp://10.0.0.3:9000"
    first, second = _stamped(tier_, a, b"one", producer=w1), _stamped(tier_, b, b"two", producer=w2)
    (root / "trimmed").write_text(f"{time.time():.3f} 0\n")
    helper = command("tcp://127.0.0.1:9", (None, None, None), 1 << 30, 0.2,
                     str(key_file(tmp_path)), 0.0)
    argv = front.command(helper, root, 1 << 30, Counters(remote="unused").to_json())
    log = tmp_path / "check-after"
    env = {**os.environ, "GOCACHE": str(gocache), "HOME": str(tmp_path),
           "FGO_CACHE_STATS": str(tmp_path / "stats.json"),
           "FGO_CACHE_PENDING": str(tmp_path / "pending.jsonl")}
    # (the first miss after a hit the front answers too; the second is the helper's)
    reqs = [protocol.Request(1, "get", bytes.fromhex(a)), protocol.Request(2, "get", bytes.fromhex(c)),
            protocol.Request(5, "get", bytes.fromhex("e5" * 32)),
            protocol.Request(3, "get", bytes.fromhex(b)), protocol.Request(4, "close")]

    resps, counters = _cacheprog_session(argv, {**env, "FGO_CACHE_CHECK_AFTER": str(log)}, reqs)
    answered = {r.id: r for r in resps}
    assert not answered[1].miss and answered[2].miss and not answered[3].miss
    assert answered[5].miss and counters["front_misses"] == 1
    assert counters["front"] == 1 and counters["checked_after"] == 2  # the front's, the helper's
    assert trust.used_entries(log.read_text()) == [(a, first.output, w1), (b, second.output, w2)]

    log.unlink()
    resps, counters = _cacheprog_session(argv, env, reqs)  # plain: the helper's, no log
    assert counters["front"] == 0 and counters["checked_after"] == 0 and not log.exists()

    key = trust.load_key(key_file(tmp_path), create=True)
    _stamped(tier_, d, b"three", producer=w1)
    tier_.keep_revocations([wire.encode(trust.revoke_producer(key, NS, w1, "test", time.time()))])
    resps, counters = _cacheprog_session(
        argv, {**env, "FGO_CACHE_CHECK_AFTER": str(log)},
        [protocol.Request(1, "get", bytes.fromhex(d)), protocol.Request(2, "get", bytes.fromhex(b)),
         protocol.Request(3, "close")])
    answered = {r.id: r for r in resps}
    assert answered[1].miss and not answered[2].miss and counters["refused"] == 1
    assert trust.used_entries(log.read_text()) == [(b, second.output, w2)]

    # the head's beacon said the kept revocations are the cluster's: it lists them (what
    # session.check_revocations writes), nothing is logged, the front refuses around them
    log.unlink()
    _stamped(tier_, d, b"three", producer=w1)
    listed = tmp_path / "revoked"
    listed.write_text(f"p {quote(w1, safe='')}\ne {'f6' * 32} {'0' * 64}\n")
    resps, counters = _cacheprog_session(
        argv, {**env, "FGO_CACHE_REVOKED": str(listed)},
        [protocol.Request(1, "get", bytes.fromhex(b)), protocol.Request(2, "get", bytes.fromhex(d)),
         protocol.Request(3, "close")])
    answered = {r.id: r for r in resps}
    assert not answered[1].miss and answered[2].miss and counters["refused"] == 1
    assert counters["front"] == 1 and counters["checked_after"] == 0 and not log.exists()


def test_a_check_after_log_and_what_a_revocation_covers_in_it() -> None:
    """trust.used_entries reads whole lines only (a helper killed mid-write left its last
    line short, and go never had that answer); revoked_in_use names each covered use once:
    by its entry or by any of its producers."""
    a, b, c = "a1" * 32, "b2" * 32, "c3" * 32
    text = trust.used_line(a, "o1", "tcp://w:1") + trust.used_line(b, "o2", "tcp://w:2+tcp://w:3") \
        + trust.used_line(a, "o1", "tcp://w:1") + trust.used_line(c, "o3", "tcp://w:4")[:-5]
    used = trust.used_entries(text)
    assert used == [(a, "o1", "tcp://w:1"), (b, "o2", "tcp://w:2+tcp://w:3"), (a, "o1", "tcp://w:1")]
    revoked = trust.Revoked(producers={"tcp://w:3"})
    assert trust.revoked_in_use(used, revoked) == [(b, "o2", "tcp://w:2+tcp://w:3")]
    revoked.entries.add((a, "o1"))
    assert trust.revoked_in_use(used, revoked) == [used[0], used[1]]
    assert trust.revoked_in_use(used, trust.Revoked(entries={(a, "other")})) == []


def test_a_revoked_workers_entries_are_named_once_each_worker() -> None:
    """fgo build's line for the revoked entries go was given: one per producer, counted,
    its first entry named."""
    from fgo.head.driver import _revoked_lines
    used = [("a1" * 32, "o", "tcp://w:1"), ("b2" * 32, "o", "tcp://w:2"),
            ("c3" * 32, "o", "tcp://w:1")]
    assert _revoked_lines(used) == [
        f"fgo: 2 cache entries of tcp://w:1, revoked in the cluster, given to go (first {'a1' * 8})",
        f"fgo: 1 cache entry of tcp://w:2, revoked in the cluster, given to go (first {'b2' * 8})"]


def test_the_cacheprog_fronts_rules_are_the_helpers() -> None:
    """The Go front repeats three of the Python side's rules: they must agree."""
    from fgo.cache import front, local
    source = front.SOURCE.read_text()
    assert re.search(rf"racyNanos\s*=\s*{int(local.RACY_S * 1e9):_}\n", source)
    assert re.search(rf"trimEvery\s*=\s*{local.TRIM_EVERY_S}", source)
    assert re.search(rf'headProduct\s*=\s*"{trust.HEAD}"', source)


def test_the_helpers_module_path() -> None:
    """The helper starts without `site`: its path is the head's, without the working
    directory, and the directory holding fgo (found by an import hook when installed
    editable) once."""
    from fgo.cache.helper import module_path
    assert module_path(["", "/lib/py", "/venv/site"], "/src/fgo/__init__.py") == \
        ["/lib/py", "/venv/site", "/src"]
    assert module_path(["/src", "/lib/py"], "/src/fgo/__init__.py") == ["/src", "/lib/py"]
    assert module_path(["/a:b", "/lib/py"], "/src/fgo/__init__.py") == ["/lib/py", "/src"]


def test_the_index_a_head_read_serves_its_helper(tmp_path: Path) -> None:
    """What fgo build read of the cluster tier at its start (save_index) is the index its
    helper loads (ClusterTier.from_file): signatures and revocations judged as when the
    helper asks the workers; a worker that answered with an error is a miss."""
    from fgo.cache.tier import ClusterTier, save_index
    good = trust.sign_entry(KEY, "ns", entry("ab" * 32))
    other = trust.sign_entry(KEY, "ns", entry("cd" * 32, producer=W2))
    forged = entry("ef" * 32)  # unsigned
    gone = trust.revoke_producer(KEY, "ns", W2, "wrong", 1.0)
    found = {W1: wire.encode(wire.CacheIndex([replace_body(good), replace_body(forged)], [])),
             W2: wire.encode(wire.CacheIndex([replace_body(other)], [gone])),
             "tcp://10.0.0.3:9000": RuntimeError("gone")}
    save_index(found, tmp_path / "index")
    tier_ = ClusterTier.from_file(tmp_path / "index", "ns", KEY)
    assert tier_.client is None and tier_.where == {"ab" * 32: W1}, tier_.where
    assert (tier_.forged, tier_.refused) == (1, 1) and tier_.revoked.covers("x", "y", W2)
    (tmp_path / "bad").write_bytes(b"\xc1")
    with pytest.raises(ValueError):
        ClusterTier.from_file(tmp_path / "bad", "ns", KEY)


def replace_body(e: CacheEntry) -> CacheEntry:
    """E as an index holds it: its fields, no body."""
    from dataclasses import replace
    return replace(e, body=b"", size=e.length)


def test_a_helper_under_fgo_build_connects_only_for_an_entry_its_index_names(
        tmp_path: Path) -> None:
    """A cold build, or an edit: the index fgo build read names no entry go asks for, so
    the helper (a real `fgo cacheprog` process) answers its misses without a client of its
    own: its scheduler here does not even exist. Only a get of an entry the index names
    makes it connect (and that fails here: a miss, the tier skipped)."""
    from fgo.cache.handover import INDEX_ENV, PENDING_ENV, STATS_ENV
    from fgo.cache.tier import save_index
    key = key_file(tmp_path)
    signed = trust.sign_entry(key.read_bytes(), NS, entry("ab" * 32))
    save_index({W1: wire.encode(wire.CacheIndex([replace_body(signed)], []))},
               tmp_path / "index")
    env = {**os.environ, INDEX_ENV: str(tmp_path / "index"), "GOCACHE": str(tmp_path / "gc"),
           PENDING_ENV: str(tmp_path / "pending"), STATS_ENV: str(tmp_path / "stats"),
           "HOME": str(tmp_path)}

    def serve(*actions: bytes) -> dict[str, Any]:
        reqs = [protocol.Request(i + 1, "get", a) for i, a in enumerate(actions)]
        # no re-check: one drawn (3% by default) answers the named entry as a miss unasked
        proc = subprocess.run([FGO, "cacheprog", "--scheduler", "tcp://127.0.0.1:9",
                               "--cache-key", str(key), "--cache-timeout", "0.2",
                               "--cache-recheck", "0"],
                              input=b"".join(map(protocol.encode_request, reqs))
                              + protocol.encode_request(protocol.Request(99, "close")),
                              env=env, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.replace(b" ", b"").count(b'"Miss":true') == len(actions)
        return json.loads((tmp_path / "stats").read_text())

    stats = serve(b"\x01" * 32, b"\x02" * 32)                  # misses it cannot answer
    assert stats["remote"] == "ready" and stats["connected"] is False, stats
    assert stats["indexed"] == 1 and stats["misses"] == 2
    stats = serve(bytes.fromhex("ab" * 32))                     # one it names: connects
    assert stats["remote"].startswith("skipped: unreachable"), stats


@pytest.mark.parametrize("found", [{}, None], ids=["unreachable", "unread"])
def test_a_helper_waits_for_the_index_its_head_is_still_reading(
        tmp_path: Path, found: dict | None) -> None:
    """go build starts while its head connects: the helper's first miss waits for the
    index the head writes once connected (here 0.5 s after go's gets). An empty one (the
    head could not reach the cluster) answers every miss with no connection; None (the
    head's read failed) has the helper ask the workers itself (none here: a miss)."""
    import threading
    from fgo.cache.handover import INDEX_ENV, PENDING_ENV, STATS_ENV
    from fgo.cache.tier import save_index
    key = key_file(tmp_path)
    index = tmp_path / "index"
    env = {**os.environ, INDEX_ENV: str(index), "GOCACHE": str(tmp_path / "gc"),
           PENDING_ENV: str(tmp_path / "pending"), STATS_ENV: str(tmp_path / "stats"),
           "HOME": str(tmp_path)}
    reqs = [protocol.Request(1, "get", b"\x01" * 32), protocol.Request(99, "close")]
    writer = threading.Timer(0.5, save_index, (found, index))
    writer.start()
    proc = subprocess.run([FGO, "cacheprog", "--scheduler", "tcp://127.0.0.1:9",
                           "--cache-key", str(key), "--cache-timeout", "1"],
                          input=b"".join(map(protocol.encode_request, reqs)),
                          env=env, capture_output=True, timeout=120)
    writer.join()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.replace(b" ", b"").count(b'"Miss":true') == 1, proc.stdout
    stats = json.loads((tmp_path / "stats").read_text())
    if found is None:
        assert stats["remote"].startswith("skipped: unreachable"), stats
    else:
        assert stats["remote"] == "ready" and stats["connected"] is False, stats
        assert stats["indexed"] == 0


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "cache.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------ trust (pure)

KEY = bytes(range(32))
W1, W2 = "tcp://10.0.0.1:9000", "tcp://10.0.0.2:9000"


def entry(action: str = "ab" * 32, body: bytes = b"an archive", **kw) -> CacheEntry:
    import hashlib
    return CacheEntry(action, hashlib.sha256(body).hexdigest(), body, 1.7e9 + 0.1234567,
                      **{"seconds": 0.5, "producer": W1, **kw})


def test_canonical_encoding_is_unambiguous() -> None:
    # a separator moved between fields changes the bytes
    assert trust.canonical("d", ("ab", "c")) != trust.canonical("d", ("a", "bc"))
    assert trust.canonical("d", ("a", "")) != trust.canonical("d", ("a",))
    assert trust.canonical("d", ("é",)) == b"\0\0\0\x01d\0\0\0\x02\xc3\xa9"
    e = entry()
    # the body counts only through output and size; times as milliseconds
    assert trust.entry_message("ns", e) == trust.entry_message("ns", CacheEntry(
        e.action, e.output, b"", e.put_time + 1e-5, e.seconds, e.producer, size=len(e.body)))
    assert trust.entry_message("ns", e) != trust.revocation_message(
        "ns", CacheRevocation(e.action, e.output))  # another domain


def test_a_signature_covers_every_field_and_the_namespace() -> None:
    from dataclasses import replace
    signed = trust.sign_entry(KEY, "ns", entry())
    assert trust.entry_signed(KEY, "ns", signed) and trust.body_matches(signed)
    assert signed.put_time == round(1.7e9 + 0.1234567, 3)
    assert not trust.entry_signed(bytes(32), "ns", signed)          # another key
    assert not trust.entry_signed(KEY, "other-ns", signed)          # moved to another toolchain
    for change in ({"action": "cd" * 32}, {"output": "00" * 32}, {"size": 3},
                   {"producer": W2}, {"checked": True}, {"put_time": 1.0}, {"seconds": 9.0},
                   {"signature": ""}, {"signature": "zz"}, {"signature": None},
                   {"put_time": "not a time"}):
        assert not trust.entry_signed(KEY, "ns", replace(signed, **change)), change
    # another body under the same signed fields is signed, and caught by its hash
    other = replace(signed, body=b"an archivX")
    assert trust.entry_signed(KEY, "ns", other) and not trust.body_matches(other)
    assert not trust.body_matches(replace(signed, body=signed.body + b"!"))
    # an index entry (no body) carries its size
    index = replace(signed, body=b"", size=len(signed.body))
    assert trust.entry_signed(KEY, "ns", index)


def test_revocations_are_signed_and_cover_entries_or_producers() -> None:
    from dataclasses import replace
    one = trust.revoke_entry(KEY, "ns", "ab" * 32, "01" * 32, "re-check", 5.0)
    worker = trust.revoke_producer(KEY, "ns", W1, "verification", 5.0)
    assert trust.revocation_signed(KEY, "ns", one) and trust.revocation_signed(KEY, "ns", worker)
    assert not trust.revocation_signed(KEY, "ns", replace(one, output="02" * 32))
    assert not trust.revocation_signed(KEY, "ns", replace(worker, producer=W2))
    assert not trust.revocation_signed(bytes(32), "ns", worker)
    revoked = trust.Revoked()
    revoked.add(one)
    assert revoked.covers("ab" * 32, "01" * 32, W2)
    assert not revoked.covers("ab" * 32, "02" * 32, W2)   # a sound entry published since
    revoked.add(worker)
    assert revoked.covers("cd" * 32, "03" * 32, W1)
    assert revoked.covers("cd" * 32, "03" * 32, trust.join_producers([W2, W1]))  # a split
    assert not revoked.covers("cd" * 32, "03" * 32, trust.HEAD)
    found = [{"action": "ab" * 32, "producer": trust.join_producers([W1, W2]),
              "signed_output": "01" * 32, "output": "02" * 32}]
    rs = trust.recheck_revocations(KEY, "ns", found + found, 5.0)
    assert sorted((r.action, r.producer) for r in rs) == [("", W1), ("", W2), ("ab" * 32, "")]
    assert all(trust.revocation_signed(KEY, "ns", r) for r in rs)


def test_rechecks_are_sampled_by_a_secret_only_for_workers_unchecked_entries() -> None:
    actions = [f"{i:064x}" for i in range(4000)]
    a, b = b"secret a" * 4, b"secret b" * 4
    chosen = {x for x in actions if trust.sampled(a, x, 0.03)}
    assert 80 < len(chosen) < 160                               # 120 expected
    other = {x for x in actions if trust.sampled(b, x, 0.03)}
    assert len(chosen & other) < 20                             # ~4 expected by chance
    assert all(trust.sampled(a, x, 1.0) for x in actions[:100])
    assert not any(trust.sampled(a, x, 0.0) for x in actions)
    assert trust.new_secret() != trust.new_secret()
    assert trust.recheck_wanted(a, entry(producer=W1), 1.0)
    assert trust.recheck_wanted(a, entry(producer=trust.join_producers([W1, W2])), 1.0)
    assert not trust.recheck_wanted(a, entry(producer=trust.HEAD), 1.0)  # the head's own
    assert not trust.recheck_wanted(a, entry(producer=W1, checked=True), 1.0)


def test_the_key_file_is_made_once_private_and_refused_when_open(tmp_path: Path) -> None:
    import stat as st
    path = tmp_path / "cfg" / "fgo" / "cache.key"
    key = trust.load_key(path)
    assert len(key) == 32 and trust.load_key(path) == key and trust.load_key(path, False) == key
    assert st.S_IMODE(path.stat().st_mode) == 0o600
    assert st.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["cache.key"]  # no temporary left
    with pytest.raises(trust.CacheKeyError, match="does not exist"):
        trust.load_key(tmp_path / "none", create=False)
    path.chmod(0o644)
    with pytest.raises(trust.CacheKeyError, match="chmod 600"):
        trust.load_key(path)
    path.chmod(0o640)  # a team's group may share it
    assert trust.load_key(path) == key
    short = tmp_path / "short"
    short.write_bytes(b"x" * 8)
    short.chmod(0o600)
    with pytest.raises(trust.CacheKeyError, match="fewer than 16"):
        trust.load_key(short)
    assert trust.key_path("~/k") == Path.home() / "k"


def test_where_the_key_is() -> None:
    home = Path.home()
    assert trust.key_location("~/team.key", "/etc/fgo/tls/head.key") == (home / "team.key",
                                                                         False)
    assert trust.key_location(None, "/etc/fgo/tls/head.key") == (
        Path("/etc/fgo/tls/cache.key"), True)  # beside the TLS files
    assert trust.key_location(None, None) == (home / ".config" / "fgo" / "cache.key", True)


def test_what_a_head_makes_of_an_entry() -> None:
    from dataclasses import replace
    good = trust.sign_entry(KEY, "ns", entry())
    index = replace(good, body=b"", size=len(good.body))
    none = trust.Revoked()
    assert trust.index_verdict(KEY, "ns", index, none) == "usable"
    assert trust.index_verdict(None, "ns", index, none) == "forged"  # no key: nothing trusted
    assert trust.index_verdict(KEY, "ns", replace(index, signature=""), none) == "forged"
    assert trust.index_verdict(bytes(32), "ns", index, none) == "forged"
    gone = trust.Revoked()
    gone.add(trust.revoke_producer(KEY, "ns", W1, "wrong", 1.0))
    assert trust.index_verdict(KEY, "ns", index, gone) == "refused"
    assert trust.fetched_verdict(KEY, "ns", index, good) == "usable"
    assert trust.fetched_verdict(KEY, "ns", index, replace(good, body=b"an archivX")) == "altered"
    # a body cut short under its signed size; one whose size is its own is not signed
    assert trust.fetched_verdict(KEY, "ns", index, replace(good, body=b"",
                                                           size=len(good.body))) == "altered"
    assert trust.fetched_verdict(KEY, "ns", index, replace(good, body=b"")) == "forged"
    other = trust.sign_entry(KEY, "ns", entry(body=b"another archive"))  # signed, not this one
    assert trust.fetched_verdict(KEY, "ns", index, other) == "forged"
    assert trust.fetched_verdict(KEY, "ns", index, replace(good, producer=W2)) == "forged"
    assert trust.fetched_verdict(None, "ns", index, good) == "forged"


def test_a_key_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    """fgo build and fgo cacheprog refuse a named key file that is missing, not a file or
    open to others: one line, exit 2, before any cluster is reached."""
    project = write_tree(tmp_path / "p", HELLO)
    loose = tmp_path / "loose.key"
    loose.write_bytes(bytes(32))
    loose.chmod(0o666)
    env = {**os.environ, "FGO_CACHE_KEY": str(tmp_path / "missing.key")}
    for bad, why in ((tmp_path / "missing.key", "does not exist"),
                     (tmp_path, "is not a file"), (loose, "chmod 600")):
        for verb in (["build", "--scheduler", "tcp://127.0.0.1:9", "--cache-key", str(bad),
                      str(project)],
                     ["cacheprog", "--scheduler", "tcp://127.0.0.1:9", "--cache-key",
                      str(bad)]):
            proc = run_fgo(*verb, env=env, input="", timeout=120)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2 and len(lines) == 1 and why in lines[0], proc.stderr
            assert "--cache-key" in lines[0] and "Traceback" not in proc.stderr
    proc = run_fgo("cacheprog", "--scheduler", "tcp://127.0.0.1:9", env=env, input="",
                   timeout=120)  # FGO_CACHE_KEY names it just the same
    assert proc.returncode == 2 and "does not exist" in proc.stderr, proc.stderr


def test_many_heads_making_the_key_at_once_end_with_one(tmp_path: Path) -> None:
    import concurrent.futures
    path = tmp_path / "k" / "cache.key"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: trust.load_key(path), range(32)))
    assert len(keys) == 1


def test_the_disk_tier_keeps_signed_fields_and_revocations(tmp_path: Path) -> None:
    t = DiskTier(tmp_path / "t")
    e = trust.sign_entry(KEY, "ns", entry(producer="tcp://[::1]:9 x+y%z", checked=True))
    t.put(e.action, e.output, e.body, e.put_time, e.seconds, e.producer, e.checked, e.signature)
    got = t.record(e.action)
    back = CacheEntry(got.action, got.output, b"", got.put_time, got.seconds, got.producer,
                      got.checked, got.signature, got.size)
    assert trust.entry_signed(KEY, "ns", back) and got.producer == e.producer
    t.put("cd" * 32, e.output, e.body)  # go's own put: no signed fields
    assert t.record("cd" * 32).signature == "" and t.stats()["entries"] == 2
    r = wire.encode(trust.revoke_producer(KEY, "ns", W1, "why", 1.0))
    assert t.keep_revocations([r, r]) == 1 and t.keep_revocations([r]) == 0
    assert t.revocations() == [r] and t.stats()["entries"] == 2


def _raw_and_go_archive(tmp_path: Path, action: str, body: str) -> tuple[bytes, bytes]:
    """A compile's archive given `-buildid ACTION/ACTION`, and what `go tool buildid -w` makes
    of it (what go build caches)."""
    (tmp_path / "p.go").write_text(body)
    placeholder = f"{action}/{action}"
    go = str(toolchain.go_binary())
    subprocess.run([go, "tool", "compile", "-p", "p", "-buildid", placeholder, "-o", "raw.a",
                    "p.go"], cwd=tmp_path, check=True, env=toolchain.go_env(os.environ))
    raw = (tmp_path / "raw.a").read_bytes()
    (tmp_path / "go.a").write_bytes(raw)
    subprocess.run([go, "tool", "buildid", "-w", "go.a"], cwd=tmp_path, check=True,
                   env=toolchain.go_env(os.environ))
    return raw, (tmp_path / "go.a").read_bytes()


def test_a_worker_makes_the_archive_go_caches_as_go_tool_buildid_does(tmp_path: Path) -> None:
    """go build rewrites a compile's placeholder build ID with the archive's content hash
    before caching it; `go tool buildid -w` is that same rewrite (cmd/internal/buildid).
    The head reads the ID go wrote from its cached copy's first bytes; the worker writes it
    over its archive and hashes the result in one pass, straddling chunks or not."""
    import hashlib
    from fgo import gobuildid
    action = "abcdefghijklmnopqrst"
    placeholder = f"{action}/{action}"
    raw, body = _raw_and_go_archive(tmp_path, action,
                                    "package p\n\nfunc F(x int) int { return x * 2 }\n")
    assert raw.count(placeholder.encode()) >= 2 and raw != body
    written = gobuildid.written_build_id(body[:gobuildid.CACHED_HEAD_BYTES], placeholder)
    assert written is not None and written != placeholder and written.startswith(action + "/")
    held = bytearray(raw)   # as a worker reads a kept archive: rewritten in place, not copied
    assert gobuildid.write_build_id(held, placeholder, written) and held == body
    for chunk in (7, len(placeholder), len(placeholder) + 1, 1 << 20):  # straddling ones
        (tmp_path / "held.a").write_bytes(raw)
        assert gobuildid.write_build_id_file(str(tmp_path / "held.a"), placeholder, written,
                                             chunk) == hashlib.sha256(body).hexdigest()
        assert (tmp_path / "held.a").read_bytes() == body
    other = "zzzzzzzzzzzzzzzzzzzz/zzzzzzzzzzzzzzzzzzzz"
    assert gobuildid.written_build_id(body, other) is None
    assert gobuildid.written_build_id(b"\x7fELF" + body[8:], placeholder) is None
    assert not gobuildid.write_build_id(bytearray(raw), other, written)
    (tmp_path / "held.a").write_bytes(raw)
    assert gobuildid.write_build_id_file(str(tmp_path / "held.a"), other, written) is None
    assert (tmp_path / "held.a").read_bytes() == raw   # no occurrence: left as it was


def test_held_bodies_past_their_budget_go_oldest_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker holds its compiles' archives up to HELD_BYTES: past it the oldest go (its
    running sum kept across keeps, releases and a body kept again under the same hash)."""
    from fgo.cache import held
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(held, "HELD_BYTES", 100)
    held.clear()
    try:
        shas = [f"{i}" * 64 for i in range(4)]
        for sha in shas[:3]:
            held.keep_bytes(sha, b"x" * 40)
        assert held.read(shas[0]) is None and held.read(shas[1]) == b"x" * 40  # 120 > 100
        held.release(shas[1])
        held.keep_bytes(shas[2], b"y" * 40)  # again: counted once
        held.keep_bytes(shas[3], b"z" * 60)  # 40 + 60: within
        assert held.read(shas[2]) == b"y" * 40 and held.read(shas[3]) == b"z" * 60
        held.keep_bytes(shas[1], b"w")       # 101: the oldest goes
        assert held.read(shas[2]) is None and held.read(shas[3]) is not None
    finally:
        held.clear()


def test_a_held_archive_is_adopted_in_place_only_when_nothing_else_links_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's publish rewrites a held archive's build ID in place and moves the file
    into the tier, with the bytes `go tool buildid -w` makes; a file its sandbox still links
    is read and copied instead, and left as it was. An entry whose head does not say what
    go wrote, or whose output ID is not what that makes, is not adopted."""
    import hashlib
    from fgo import gobuildid
    from fgo.cache import held, store
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FGO_SHARED_CACHE_DIR", str(tmp_path / "tier"))
    action = "bcdefghijklmnopqrstu"
    placeholder = f"{action}/{action}"
    raw, body = _raw_and_go_archive(tmp_path, action,
                                    "package p\n\nfunc F(x int) int { return x * 3 }\n")
    written = gobuildid.written_build_id(body, placeholder)
    sha = hashlib.sha256(raw).hexdigest()
    ns = "go1.27.3-" + "0" * 16
    held.clear()
    try:
        for i, linked in enumerate((True, False)):
            act = f"{i}" * 64
            entry = CacheEntry(act, hashlib.sha256(body).hexdigest(), b"", 1.0, size=len(body))
            sandbox_output = tmp_path / f"out{i}.a"
            sandbox_output.write_bytes(raw)
            held.keep(str(sandbox_output), sha)
            if not linked:
                sandbox_output.unlink()     # the compile's sandbox let go of it
            assert (held.exclusive(sha) is None) == linked
            assert store.store_adopt(ns, [HeldEntry(entry, sha, placeholder)]) == []  # unsaid
            assert store.store_adopt(ns, [HeldEntry(entry, sha, placeholder, written)]) == [act]
            assert store._store(ns).read(act)[1] == body
            assert held.read(sha) is None                 # adopted: no longer held
            if linked:
                assert sandbox_output.read_bytes() == raw  # the sandbox's file untouched
        wrong = CacheEntry("9" * 64, "1" * 64, b"", 1.0, size=len(raw))  # not go's body
        (tmp_path / "out9.a").write_bytes(raw)
        held.keep(str(tmp_path / "out9.a"), sha)
        (tmp_path / "out9.a").unlink()
        assert store.store_adopt(ns, [HeldEntry(wrong, sha, placeholder, written)]) == []
        assert held.read(sha) is None and store._store(ns).record("9" * 64) is None
    finally:
        held.clear()


def test_only_a_single_workers_own_archive_is_published_by_reference() -> None:
    from fgo.cache.publish import Provenance, held_by_producer
    stub = lambda action, producer: CacheEntry(action, "00" * 32, b"", 0.0,  # noqa: E731
                                               producer=producer, size=10)
    known = Provenance(archive={"a" * 30: ("11" * 32, "X/X"), "b" * 30: ("22" * 32, "Y/Y"),
                                "c" * 30: ("33" * 32, "Z/Z"), "d" * 30: ("44" * 32, "V/V")})
    stubs = [stub("a" * 64, "tcp://w1"), stub("b" * 64, trust.join_producers(["tcp://w1",
                                                                               "tcp://w2"])),
             stub("c" * 64, trust.HEAD), stub("d" * 64, "tcp://gone"),
             stub("e" * 64, "tcp://w1")]   # no archive: a subkey ("stdout"), a local compile
    got = held_by_producer(stubs, known, frozenset({"tcp://gone"}))
    assert got == {"tcp://w1": [(stubs[0], "11" * 32, "X/X")]}


def test_the_head_stages_its_own_compiles_bodies_each_once_on_their_owner() -> None:
    from fgo.cache import stage
    from fgo.cache.publish import staged_by_worker
    lines = [json.dumps({"action": a * 64, "output": "0" * 64, "size": n})
             for a, n in (("a", 1 << 20), ("b", 100), ("c", 1 << 20), ("d", 1 << 20))]
    puts = stage.read_puts([line.encode() for line in lines] + [b"not a put"])
    assert [p.action[0] for p in puts] == ["a", "b", "c", "d"]
    workers = ["tcp://w1", "tcp://w2"]
    got = stage.to_stage(puts, lambda prefix, size: prefix != "c" * 30, workers, {"d" * 64})
    # b is too small to be worth a message, c a remote compile's (on its worker), d staged
    assert [p.action[0] for ps in got.values() for p in ps] == ["a"]
    assert list(got) == [tier.owner("a" * 64, workers)]
    stub = CacheEntry("a" * 64, "0" * 64, b"", 0.0, size=1 << 20)
    assert staged_by_worker([stub], {"a" * 64: "tcp://w1"}, frozenset()) == \
        {"tcp://w1": [(stub, "0" * 64, "")]}
    assert staged_by_worker([stub], {"a" * 64: "tcp://w1"}, frozenset({"tcp://w1"})) == {}


def test_a_worker_holds_a_large_staged_body_from_its_parts_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    from fgo.cache import held
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path))
    held.clear()
    body = os.urandom(10_000)
    sha = hashlib.sha256(body).hexdigest()
    try:
        assert held.keep_part(sha, 0, len(body), body[:4000])
        assert held.read(sha) is None                              # not whole yet
        assert not held.keep_part(sha, 6000, len(body), body[6000:])  # a part went missing
        assert held.keep_part(sha, 4000, len(body), body[4000:8000])
        assert held.keep_part(sha, 8000, len(body), body[8000:])
        assert held.read(sha) == body
        assert not held.keep_part(sha, 0, 10, b"x" * 11)           # past its size
        held.release(sha)
        assert held.read(sha) is None
    finally:
        held.clear()


def test_a_second_head_installing_the_service_keeps_what_the_first_is_owed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each head installs fgo's service on the workers; Dask tears the old one down when it
    is replaced. Only the worker's close drops the archives it keeps for a publish."""
    import hashlib
    from distributed import Client, LocalCluster
    from fgo.cache import held
    from fgo.worker.service import CompileService, worker_closing
    assert worker_closing("closing") and not worker_closing("running")
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path))
    body = os.urandom(5000)
    sha = hashlib.sha256(body).hexdigest()
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    try:
        with Client(cluster, set_as_default=False) as client:
            client.register_plugin(CompileService())
            assert held.keep_bytes(sha, body)       # the worker's (in this process)
            client.register_plugin(CompileService())  # another head's build begins
            assert held.read(sha) == body
    finally:
        cluster.close()
    assert held.read(sha) is None


def test_a_put_is_read_from_the_file_go_put_it_from(tmp_path: Path) -> None:
    """The head lists each compile's -o by action-ID prefix; the cacheprog takes a put's body
    from that file, not from its base64 line, only when it is exactly the body go names."""
    import hashlib
    from fgo.cache.outputs import OutputLog, OutputPaths, parse
    assert parse([b"a /x", b"b /y z", b"c"]) == {"a": "/x", "b": "/y z"}
    body = os.urandom(5000)
    (tmp_path / "_pkg_.a").write_bytes(body)
    action = bytes(range(32))
    log = OutputLog(tmp_path / "outputs.txt")
    paths = OutputPaths(tmp_path / "outputs.txt")
    assert paths.body(action, hashlib.sha256(body).digest(), len(body)) is None  # not listed yet
    log.add(action[:15].hex(), str(tmp_path / "_pkg_.a"))
    assert paths.body(action, hashlib.sha256(body).digest(), len(body)) == body
    assert paths.body(action, hashlib.sha256(b"other").digest(), len(body)) is None
    assert paths.body(action, hashlib.sha256(body).digest(), len(body) + 1) is None
    put = protocol.Request(7, "put", action, hashlib.sha256(body).digest(), body)
    got = protocol.read_request(io.BytesIO(protocol.encode_request(put)),
                                lambda a, o, n: paths.body(a, o, n) or False)
    assert got == put and not got.reused
    log.close()


def test_a_compiles_archive_is_linked_into_the_local_tier_not_copied(tmp_path: Path) -> None:
    """The file go put from becomes the tier's body by a hard link (no 166 MB of writes on
    the head's core in a cold etcd build); a file that is not the body go names is not
    linked, and a body changed after it was linked is caught by the next get's hash."""
    import hashlib
    from fgo.cache.outputs import OutputLog
    from fgo.cache.server import Server
    body = os.urandom(7000)
    archive = tmp_path / "b001" / "_pkg_.a"
    archive.parent.mkdir()
    archive.write_bytes(body)
    action, output = bytes(range(32)), hashlib.sha256(body).digest()
    tier = DiskTier(tmp_path / "local")
    with pytest.raises(ValueError):
        tier.put_link(action.hex(), "00" * 32, str(archive))
    assert tier.get(action.hex()) is None
    assert not [p for p in (tmp_path / "local").rglob("*") if p.is_file()]  # nothing left
    log = OutputLog(tmp_path / "outputs.txt")
    log.add(action[:15].hex(), str(archive))
    server = Server(tier, None, 2.0, 1 << 40, outputs=tmp_path / "outputs.txt")
    out = io.BytesIO()
    server.serve(io.BytesIO(protocol.encode_request(protocol.Request(1, "put", action, output,
                                                                     body))
                            + protocol.encode_request(protocol.Request(2, "close"))), out)
    entry = tier.get(action.hex())
    assert entry is not None and entry.path.stat().st_ino == archive.stat().st_ino
    assert (server.counters.from_files, server.counters.reused, server.counters.puts) == (1, 0, 1)
    assert str(entry.path) in out.getvalue().decode()  # go reads it from the tier, as ever
    archive.unlink()                      # go removes its $WORK: the body stays
    assert tier.get(action.hex()) is not None
    with open(entry.path, "r+b") as f:    # written to after the put: never answered
        f.write(b"X")
    assert tier.get(action.hex()) is None
    log.close()


@pytest.mark.parametrize("stream_of", STREAMS)
def test_a_put_go_sends_again_is_not_decoded(stream_of: Any) -> None:
    import hashlib
    body = os.urandom(3000)
    put = protocol.Request(1, "put", b"\x01" * 32, hashlib.sha256(body).digest(), body)
    asked = []

    def known(action: bytes, output: bytes, size: int) -> bool:
        asked.append(size)
        return True
    got = protocol.read_request(stream_of(protocol.encode_request(put)), known)
    assert got.reused and got.body == b"" and asked == [3000]
    # a line of another length is decoded (and then refused by its size)
    bad = protocol.encode_request(put).replace(b'"\n', b'AAAA"\n')
    with pytest.raises(protocol.ProtocolError):
        protocol.read_request(stream_of(bad), known)
    assert protocol.read_request(stream_of(protocol.encode_request(put)),
                                 lambda *a: False) == put


def test_replayed_puts_cost_less_when_the_local_tier_has_them(tmp_path: Path) -> None:
    """What go sends again (a -a build, a re-check, a second go process) is not decoded or
    hashed: a replay of puts shaped like etcd's (1452 puts, 259 MB; here a fifth of them),
    through the whole loop, CPU measured both ways."""
    import hashlib
    import random
    import resource
    from fgo.cache.server import Server
    rng = random.Random(7)
    sizes = [int(rng.paretovariate(1.2) * 60_000) for _ in range(290)]
    scale = 52e6 / sum(sizes)
    bodies = [rng.randbytes(max(1, int(n * scale))) for n in sizes]
    stream = b"".join(protocol.encode_request(protocol.Request(
        i + 1, "put", hashlib.sha256(b"a%d" % i).digest(), hashlib.sha256(b).digest(), b))
        for i, b in enumerate(bodies)) + protocol.encode_request(protocol.Request(9999, "close"))

    def serve(reuse: bool) -> tuple[float, Server]:
        server = Server(DiskTier(tmp_path / "local"), None, 2.0, 1 << 40)
        if not reuse:
            server.known = lambda *a: False
        out = io.BytesIO()
        t0 = resource.getrusage(resource.RUSAGE_SELF)
        server.serve(io.BytesIO(stream), out)
        t1 = resource.getrusage(resource.RUSAGE_SELF)
        assert out.getvalue().count(b"DiskPath") == len(bodies)
        return (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime), server

    serve(True)  # the first time: every body stored
    again, full = [], []
    for _ in range(2):
        s, server = serve(False)
        full.append(s)
        assert server.counters.reused == 0
        s, server = serve(True)
        again.append(s)
        assert server.counters.reused == len(bodies)
    print(f"\nreplay of {len(bodies)} puts, {sum(map(len, bodies)) / 1e6:.0f} MB: "
          f"{min(full):.2f} CPU-s decoding, {min(again):.2f} CPU-s reused")
    assert min(again) < 0.5 * min(full)


# ------------------------------------------------------------------ real go, real cluster

def go_env(head: Path, **extra: str) -> dict[str, str]:
    """A head node of its own: its own GOCACHE and HOME (fgo's cache dir stays shared so
    the shim is not rebuilt); the cache key is the team's, shared by every head beside it
    (made by the first that needs it). No hit is re-checked unless a test asks: the hit
    counts these tests compare are then exact."""
    trust.load_key(head.parent / "cache.key")  # a key named must exist
    return toolchain.go_env({**os.environ, "GOCACHE": str(head / "gocache"),
                             "HOME": str(head / "home"), "FGO_LEDGER": str(head / "ledger.json"),
                             "FGO_CACHE_DIR": str(paths.cache_dir()),
                             "FGO_CACHE_KEY": str(head.parent / "cache.key"),
                             "FGO_CACHE_RECHECK": "0", **extra})


def cacheprog(*args: str) -> str:
    return go_quote([FGO, "cacheprog", *args])


def plain_go(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(toolchain.go_binary()), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return proc


def head_build(project: Path, cluster: RealCluster, env: dict[str, str], out: Path,
               *opts: str, ok: bool = True) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = out.with_suffix(".json")
    proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address, *opts,
                   str(project), "--", "-trimpath", "-o", str(out), env=env)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc, json.loads(report.read_text())


def oracle_sha(project: Path) -> str:
    out = project.parent / "oracle.bin"
    plain = oracle_build(project, "-trimpath", "-o", str(out))
    assert plain.returncode == 0, plain.stderr
    return sha(out)


def hit_rate(rep: dict) -> float:
    t = rep["totals"]
    return t["cached"] / t["actions"]


def cluster_entries(cluster: RealCluster, ns: str = NS) -> dict[str, list[str]]:
    with cluster.client(30) as c:
        got = c.run(store.store_index, ns)
    return {w: [e["action"] for e in v["entries"]] for w, v in got.items()}


def worker_store(cluster: RealCluster, i: int, ns: str = NS) -> DiskTier:
    return DiskTier(Path(f"{cluster.root / f'store-{i}'}-gocache") / ns)


@pytest.fixture
def heads(tmp_path: Path) -> tuple[Path, Path]:
    """The same sources in two directories (-trimpath keeps go's action IDs independent of
    where a checkout lives)."""
    return (write_tree(tmp_path / "A" / "hello", HELLO),
            write_tree(tmp_path / "B" / "elsewhere" / "hello", HELLO))


def counted(stderr: str) -> tuple[int, int]:
    """(hits, misses) from `fgo cacheprog -v`'s line."""
    m = re.search(r"cache (\d+) hits .*?, (\d+) misses", stderr)
    assert m, stderr
    return int(m.group(1)), int(m.group(2))


def test_plain_go_build_through_the_helper(hello: Path, tmp_path: Path) -> None:
    """go's own client: the second build of a fresh GOCACHE is answered from the local tier,
    and its binary is the oracle's."""
    env = go_env(tmp_path / "head", GOCACHEPROG=cacheprog("-v"))
    first = plain_go(hello, env, "build", "-trimpath", "-o", str(tmp_path / "1.bin"))
    second = plain_go(hello, env, "build", "-trimpath", "-o", str(tmp_path / "2.bin"))
    hits, misses = counted(first.stderr)
    assert hits == 0 and misses > 50
    hits, misses = counted(second.stderr)
    assert hits > 100 and misses < 10, second.stderr  # the few go asks but never puts
    assert sha(tmp_path / "2.bin") == sha(tmp_path / "1.bin") == oracle_sha(hello)
    assert list((tmp_path / "head" / "gocache" / "fgo" / NS).glob("*/*-d"))


def test_two_heads_share_one_cluster(heads: tuple[Path, Path], tmp_path: Path,
                                     real_cluster: RealCluster) -> None:
    a, b = heads
    _, rep_a = head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    ca = rep_a["shared_cache"]
    assert ca["remote"] == "ready" and ca["puts"] > 60 and ca["published"] == ca["puts"], ca
    # a remote compile's archive is published from the worker that kept it, unless go
    # appended its assembly's objects (runtime, math/big, ...: their bodies are sent),
    # and the head's own compiles' bodies were staged on the workers while go build ran
    remote = rep_a["totals"]["remote"]
    assert remote > 10 and ca["bytes_staged"] > 1e6 and \
        ca["published_by_reference"] > remote / 2 + 10, (remote, ca)
    # every compile's body was read from its archive, not decoded from go's base64 line
    assert ca["from_files"] >= rep_a["totals"]["actions"] - 2, ca
    # published beside the link, as its gate let it run: go build's later puts, few, after
    assert ca["published_early"] > ca["published"] - 5, ca
    proc, rep_b = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin",
                             "--trace", str(tmp_path / "b.trace"))
    cb = rep_b["shared_cache"]
    assert hit_rate(rep_b) >= 0.95, (cb, [(x["package"], x["mode"]) for x in rep_b["actions"]
                                        if x["mode"] != "cached"])
    assert cb["remote_hits"] > 60 and cb["bytes_fetched"] > 1e6 and cb["saved_s"] > 0, cb
    assert cb["altered"] == cb["forged"] == 0, cb  # the adopted bodies are go's
    assert "cluster)" in proc.stderr.splitlines()[-1]  # the summary line
    trace = json.loads((tmp_path / "b.trace").read_text())
    assert trace["otherData"]["shared_cache"]["remote_hits"] == cb["remote_hits"]
    assert sha(tmp_path / "b.bin") == sha(tmp_path / "a.bin") == oracle_sha(b)


def test_a_worker_revoked_after_its_entries_were_fetched(heads: tuple[Path, Path],
                                                         tmp_path: Path,
                                                         real_cluster: RealCluster,
                                                         faults) -> None:
    """B fetched entries workers made. Its no-op gives them all to go from the front, at
    once: the scheduler's beacon still has the token B noted when it read the cluster's
    revocations. Then three of worker P's entries in B's local tier hold each other's
    archives (as a wrong worker's would), and a head revokes P in the cluster only (B keeps
    no revocation; the beacon's token changes): B's next build is given them without a
    wait, logged for its head's check, which refuses the link, removes P's entries and
    builds again without them (current again: the head read the revocations meanwhile):
    the binary is the oracle's. The front answers around the revocation kept since."""
    import hashlib
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    env_b = go_env(tmp_path / "B")
    _, rep = head_build(b, real_cluster, env_b, tmp_path / "b.bin")
    assert rep["shared_cache"]["remote_hits"] > 60, rep["shared_cache"]
    local = DiskTier(tmp_path / "B" / "gocache" / "fgo" / NS)
    assert (local.root / beacon.REVOCATIONS_SEEN).exists()
    _, rep = head_build(b, real_cluster, env_b, tmp_path / "b.bin")  # a no-op
    cb = rep["shared_cache"]
    assert rep["totals"]["cached"] == rep["totals"]["actions"], rep["totals"]
    assert cb["revocations_current"] and cb["front"] == cb["gets"] > 60, cb  # no helper
    assert cb["checked_after"] == 0, cb
    made = [e.producer for e in local.records() if trust.from_workers(e.producer)]
    producer = max(set(made), key=made.count)
    victims = [e for e in local.records() if e.producer == producer and e.size > 1000][:3]
    assert len(victims) == 3
    bodies = [e.path.read_bytes() for e in victims]
    for e, body in zip(victims, bodies[1:] + bodies[:1]):
        local.put(e.action, hashlib.sha256(body).hexdigest(), body, e.put_time, e.seconds,
                  e.producer, e.checked, e.signature)
    key = trust.load_key(tmp_path / "cache.key", create=False)
    with real_cluster.client() as cl:
        tier.ClusterTier(cl, NS, key).revoke(
            [trust.revoke_producer(key, NS, producer, "test: found wrong", time.time())], 30)
    assert not local.revocations()
    faults.injected()
    proc, rep = head_build(b, real_cluster, env_b, tmp_path / "b2.bin")
    assert f"of {producer}, revoked in the cluster, given to go" in proc.stderr, proc.stderr
    assert "building again" in proc.stderr
    # built again, current: the first try's head had read the cluster's revocations
    assert rep["exit_code"] == 0 and rep["shared_cache"]["revocations_current"], \
        rep["shared_cache"]
    assert not any(producer in trust.producers(e.producer) for e in local.records())
    assert local.revocations()
    ok = sha(tmp_path / "b2.bin") == oracle_sha(b)
    faults.outcome(ok)
    _, rep = head_build(b, real_cluster, env_b, tmp_path / "b2.bin")
    cb = rep["shared_cache"]
    assert cb["revocations_current"] and cb["front"] == cb["gets"], cb
    assert ok


def test_the_revocation_beacon_changes_only_when_revocations_may_have(
        real_cluster: RealCluster) -> None:
    """The scheduler's beacon, installed by every head and kept once: its token over one
    TCP line equals the one the scheduler gives a client; installing it again keeps it, a
    revocation sent renews it; a wrong question is answered with nothing."""
    import socket

    from fgo.cluster.beacon import renew, state
    from fgo.worker.service import RevocationBeacon
    with real_cluster.client() as cl:
        cl.register_plugin(RevocationBeacon())
        address, token = state_of(cl)
        assert len(token) == 32 and beacon.ask(address) == token
        cl.register_plugin(RevocationBeacon())  # another head's connect
        assert state_of(cl) == (address, token)
        key = os.urandom(32)
        tier.ClusterTier(cl, NS, key).revoke(
            [trust.revoke_entry(key, NS, "ab" * 32, "cd" * 32, "test", time.time())], 30)
        renewed = beacon.ask(address)
        assert renewed and renewed != token
        assert cl.run_on_scheduler(renew) and beacon.ask(address) not in (token, renewed)
        assert cl.run_on_scheduler(state)
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"hello?\n")
        assert s.recv(100) == b""
    assert beacon.ask("127.0.0.1:9") is None


def state_of(client: Any) -> tuple[str, str]:
    from fgo.cluster.beacon import state
    got = client.run_on_scheduler(state)
    return got[0], got[1]


def test_a_builds_revocations_are_current_only_with_the_beacons_token() -> None:
    """fgo.cluster.beacon.current: the record of this scheduler, and the token it noted."""
    seen = {"scheduler": "tcp://h:1", "address": "h:2", "token": "t1"}
    assert beacon.current(seen, "tcp://h:1", "t1")
    assert not beacon.current(seen, "tcp://h:1", "t2")       # a revocation, or a worker joined
    assert not beacon.current(seen, "tcp://other:1", "t1")   # another cluster
    assert not beacon.current(seen, "tcp://h:1", None)       # no answer
    assert not beacon.current(None, "tcp://h:1", "t1")
    assert not beacon.current({**seen, "token": ""}, "tcp://h:1", "")


def test_go_test_through_the_helper_caches_results(tmp_path: Path,
                                                   real_cluster: RealCluster) -> None:
    project = write_tree(tmp_path / "t", {
        **HELLO, "words/words_test.go": 'package words\n\nimport "testing"\n\n'
        'func TestHi(t *testing.T) { if Hi != "hello" { t.Fatal(Hi) } }\n'})
    env = go_env(tmp_path / "head", GOCACHEPROG=cacheprog("--scheduler", real_cluster.address))
    first = plain_go(project, env, "test", "./...")
    second = plain_go(project, env, "test", "./...")
    assert "(cached)" not in first.stdout and "ok  \texample.com/hello/words" in first.stdout
    assert "(cached)" in second.stdout, second.stdout
    # a plain go build under the helper published at close: a new head finds its entries
    assert sum(len(v) for v in cluster_entries(real_cluster).values()) > 50


def test_fgo_cache_stats_trim_clear(tmp_path: Path, real_cluster: RealCluster,
                                    hello: Path) -> None:
    env = go_env(tmp_path / "head", GOCACHEPROG=cacheprog("--scheduler", real_cluster.address))
    plain_go(hello, env, "build", "-o", str(tmp_path / "h.bin"))
    verb = ("--scheduler", real_cluster.address)
    stats = run_fgo("cache", "stats", *verb, env=env)
    assert stats.returncode == 0, stats.stderr
    local_line, *worker_lines = stats.stdout.splitlines()
    assert re.search(r"local .*: [1-9]\d* entries", local_line), stats.stdout
    assert len(worker_lines) == 2 and all(NS in w for w in worker_lines), stats.stdout
    assert sum(int(re.search(r"(\d+) entries", w).group(1)) for w in worker_lines) > 50
    trim = run_fgo("cache", "trim", "--size", "0", *verb, env=env)
    assert trim.returncode == 0 and "entries removed" in trim.stdout, trim.stderr
    from distributed import Client
    with Client(real_cluster.address, timeout=30) as c:  # only empty bodies fit in 0 bytes
        left = c.run(store.store_stats, NS)
    assert all(s["namespaces"][NS]["bytes"] == 0 for s in left.values()), left
    clear = run_fgo("cache", "clear", *verb, env=env)
    assert clear.returncode == 0 and clear.stdout.startswith("local: "), clear.stderr
    assert all(not v for v in cluster_entries(real_cluster).values())
    assert DiskTier(tmp_path / "head" / "gocache" / "fgo" / NS).stats()["entries"] == 0
    bad = run_fgo("cache", "trim", "--size", "lots", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


# ------------------------------------------------------------------ faults: a miss, never wrong

def test_cache_worker_killed_mid_build(heads: tuple[Path, Path], tmp_path: Path,
                                       real_cluster: RealCluster, faults) -> None:
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    victim = max(range(2), key=lambda i: len(worker_store(real_cluster, i).entries()))
    proc = subprocess.Popen([FGO, "build", "-q", "--report", str(tmp_path / "b.json"),
                             "--scheduler", real_cluster.address, str(b), "--", "-trimpath",
                             "-o", str(tmp_path / "b.bin")], env=go_env(tmp_path / "B"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fetched = tmp_path / "B" / "gocache" / "fgo" / NS
    assert wait_until(lambda: any(fetched.glob("*/*-d")), timeout=120, step=0.02)
    real_cluster.workers[victim].kill()  # while B fetches from the cluster tier
    faults.injected()
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    rep = json.loads((tmp_path / "b.json").read_text())
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok
    c = rep["shared_cache"]
    assert c["remote"].startswith("skipped") or c["misses"] > 2, c  # its share: misses


def entries_of(t: DiskTier) -> list[CacheEntry]:
    """T's entries as a head signed them (bodies included)."""
    out = []
    for e in t.records():
        body = e.path.read_bytes()
        out.append(CacheEntry(e.action, e.output, body, e.put_time, e.seconds, e.producer,
                              e.checked, e.signature))
    return out


def plant(t: DiskTier, e: CacheEntry) -> None:
    """E on T's disk as it is (what a bad worker, or a damaged disk, can do)."""
    t.put(e.action, e.output, e.body, e.put_time, e.seconds, e.producer, e.checked,
          e.signature)


def test_altered_entries_are_never_used(heads: tuple[Path, Path], tmp_path: Path,
                                        real_cluster: RealCluster, faults) -> None:
    """On worker 0's disk every body damaged (its index intact: signed, but another body);
    on worker 1's every other entry's body and output ID in the index replaced by another
    entry's, consistently (the worker's own hash check passes; the signature does not)."""
    import hashlib
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    store = worker_store(real_cluster, 0)
    corrupted = []
    for e in store.entries():
        body = store.root / e.action[:2] / f"{e.action}-d"
        if e.size:
            data = bytearray(body.read_bytes())
            data[len(data) // 2] ^= 0xFF
            body.write_bytes(bytes(data))
            corrupted.append(e.action)
    assert len(corrupted) > 10
    second = worker_store(real_cluster, 1)
    theirs = [e for e in entries_of(second) if e.body]
    swapped = []
    for e, other in zip(theirs[::2], theirs[1::2]):
        index = second.root / e.action[:2] / f"{e.action}-a"
        (second.root / e.action[:2] / f"{e.action}-d").write_bytes(other.body)
        fields = index.read_text().split()
        fields[:2] = [hashlib.sha256(other.body).hexdigest(), str(len(other.body))]
        index.write_text(" ".join(fields) + "\n")
        assert second.get(e.action) is not None  # sound as far as the worker can tell
        swapped.append(e.action)
    assert len(swapped) > 10
    faults.injected(2)
    _, rep = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok, 2)
    assert ok
    c = rep["shared_cache"]
    assert c["remote_hits"] > 10 and c["misses"] > 10, c
    assert c["altered"] > 10 and c["forged"] >= len(swapped), c
    # what B asked for was removed, recompiled, and published again, now sound
    # (on its owner, or on the worker that compiled it again and kept the archive)
    asked = set(DiskTier(tmp_path / "B" / "gocache" / "fgo" / NS).actions()) & set(corrupted)
    assert asked and all(any(worker_store(real_cluster, i).get(x) is not None
                             for i in range(2)) for x in asked)


def test_forged_entries_are_never_used(heads: tuple[Path, Path], tmp_path: Path,
                                       real_cluster: RealCluster, faults) -> None:
    """Every entry in the cluster tier replaced by a worker with a wrong body (another
    entry's, its output ID consistent) under no signature, another key's, another entry's
    valid signature, or a valid one made for another toolchain's namespace: B uses none."""
    import hashlib
    from dataclasses import replace
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    key = trust.load_key(tmp_path / "cache.key", create=False)
    other_ns = namespace(toolchain.Identity(toolchain.go_version(), "e" * 64))
    n = 0
    for i in range(2):
        t = worker_store(real_cluster, i)
        mine = entries_of(t)
        for j, (e, other) in enumerate(zip(mine, mine[1:] + mine[:1])):
            wrong = replace(e, body=other.body, output=hashlib.sha256(other.body).hexdigest())
            wrong = [replace(wrong, signature=""),
                     trust.sign_entry(b"not the team's key" * 2, NS, wrong),
                     replace(wrong, signature=other.signature),
                     trust.sign_entry(key, other_ns, wrong)][j % 4]
            plant(t, wrong)
            n += 1
    assert n > 60
    faults.injected()
    _, rep = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok
    c = rep["shared_cache"]
    assert c["indexed"] == 0 and c["remote_hits"] == 0 and c["forged"] == n, c


def test_a_wrong_entry_found_by_a_recheck_is_revoked(heads: tuple[Path, Path], tmp_path: Path,
                                                     real_cluster: RealCluster,
                                                     faults) -> None:
    """Three entries a worker P produced hold another package's archive, signed by a head
    (its verification sampled them out). B re-checks every hit (--cache-recheck 1): go's
    own compile differs from those three and from nothing else; they, and everything P
    produced, are revoked across the cluster; a worker that keeps one anyway cannot make C
    use it; every binary is the oracle's."""
    import hashlib
    from dataclasses import replace
    a, b = heads
    c_dir = write_tree(tmp_path / "C" / "third" / "hello", HELLO)
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    key = trust.load_key(tmp_path / "cache.key", create=False)
    stores = [worker_store(real_cluster, i) for i in range(2)]
    held = [(t, e) for t in stores for e in entries_of(t)
            if e.body and trust.from_workers(e.producer) and not e.checked]
    producer = max({e.producer for _, e in held},
                   key=lambda p: sum(e.producer == p for _, e in held))
    victims = [(t, e) for t, e in held if e.producer == producer][:3]
    assert len(victims) == 3
    wrong = {}
    for (t, e), (_, other) in zip(victims, victims[1:] + victims[:1]):
        bad = trust.sign_entry(key, NS, replace(
            e, body=other.body, output=hashlib.sha256(other.body).hexdigest()))
        plant(t, bad)
        wrong[e.action] = (t, bad)
    faults.injected()
    _, rep_b = head_build(b, real_cluster, go_env(tmp_path / "B", FGO_CACHE_RECHECK="1"),
                          tmp_path / "b.bin")
    cb = rep_b["shared_cache"]
    assert {m["action"] for m in cb["recheck_mismatched"]} == set(wrong), cb
    assert all(m["conclusive"] and m["producer"] == producer for m in cb["recheck_mismatched"])
    assert cb["recheck_matched"] > 10 and cb["rechecked"] >= cb["recheck_matched"] + 3, cb
    assert cb["revoked"] == 4 and cb["revoked_entries"] >= 3, cb  # 3 entries and P
    assert {r.get("producer") for r in cb["revocations"]} >= {producer}
    assert "revoked" in proc_line(rep_b)
    # nothing P produced is left on the workers' disks, and both keep the revocations
    assert not any(e.producer == producer for t in stores for e in t.records())
    with real_cluster.client() as cl:
        kept = cl.run(store.store_index, NS)
    assert all(any(r["producer"] == producer for r in v["revoked"]) for v in kept.values())
    # a worker that ignores a revocation keeps its wrong entry: C still never uses it
    action, (t, bad) = next(iter(wrong.items()))
    plant(t, bad)
    _, rep_c = head_build(c_dir, real_cluster, go_env(tmp_path / "C", FGO_CACHE_RECHECK="0"),
                          tmp_path / "c.bin")
    cc = rep_c["shared_cache"]
    assert cc["refused"] >= 1 and cc["remote_hits"] > 10, cc
    fetched = DiskTier(tmp_path / "C" / "gocache" / "fgo" / NS).records()
    assert fetched and not any(producer in trust.producers(e.producer) for e in fetched)
    # C compiled on P too, and (knowing the revocation) published none of that
    t.remove(action)
    assert any(a["worker"] == producer for a in rep_c["actions"] if a["mode"] == "remote")
    assert not any(e.producer == producer for t in stores for e in t.records())
    ok = sha(tmp_path / "b.bin") == sha(tmp_path / "c.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok


def test_plain_go_rechecks_and_revokes_at_close(hello: Path, tmp_path: Path,
                                                real_cluster: RealCluster, faults) -> None:
    """Under plain go the helper settles a re-check itself (go computed the put on this
    head): A's entries, published as a worker's, one of them holding another's body; B
    re-checks every hit, finds exactly that one, and at close revokes it and its producer
    on every worker before publishing its own."""
    import hashlib
    from dataclasses import replace
    plain_go(hello, go_env(tmp_path / "A", GOCACHEPROG=cacheprog()), "build", "-trimpath",
             "-o", str(tmp_path / "a.bin"))
    key = trust.load_key(tmp_path / "cache.key")
    worker = "tcp://127.0.0.1:1"  # said to have compiled them
    records = sorted((e for e in DiskTier(tmp_path / "A" / "gocache" / "fgo" / NS).records()
                      if e.size), key=lambda e: -e.size)
    entries = [trust.sign_entry(key, NS, CacheEntry(e.action, e.output, e.path.read_bytes(),
                                                    e.put_time, 0.1, worker))
               for e in records]
    victim, other = entries[0], entries[1]
    entries[0] = trust.sign_entry(key, NS, replace(
        victim, body=other.body, output=hashlib.sha256(other.body).hexdigest()))
    with real_cluster.client(30) as c:
        assert tier.ClusterTier(c, NS, key).put_many(entries, 60) == len(entries) > 50
    faults.injected()
    b = plain_go(hello, go_env(tmp_path / "B", GOCACHEPROG=cacheprog(
        "-v", "--scheduler", real_cluster.address, "--cache-recheck", "1")),
        "build", "-trimpath", "-o", str(tmp_path / "b.bin"))
    assert re.search(r"\d+ rechecked, 2 revoked, 1 re-checks DIFFERED", b.stderr), b.stderr
    with real_cluster.client(30) as c:
        kept = c.run(store.store_index, NS)
    assert all([r["producer"] for r in v["revoked"] if r["producer"]] == [worker]
               and any(r["action"] == victim.action for r in v["revoked"])
               for v in kept.values()), kept
    now = {e["action"]: e for v in kept.values() for e in v["entries"]}
    assert not any(e["producer"] == worker for e in now.values())
    assert now[victim.action]["output"] == victim.output  # B's own, published after
    ok = sha(tmp_path / "b.bin") == oracle_sha(hello)
    faults.outcome(ok)
    assert ok


def proc_line(report: dict) -> str:
    from fgo.report.record import summary_line
    return summary_line(report)


def test_cacheprog_over_tls(heads: tuple[Path, Path], tmp_path: Path) -> None:
    """go through `fgo cacheprog` with the TLS flags against a cluster that speaks only
    TLS: B gets A's entries; without the certificate the cluster tier is a miss, never a
    failure."""
    a, b = heads
    certs = make_certs(tmp_path / "certs")
    with RealCluster(tmp_path / "c", workers=2, tls=certs) as cluster:
        prog = cacheprog("-v", "--scheduler", cluster.address, *tls_flags(certs))
        first = plain_go(a, go_env(tmp_path / "A", GOCACHEPROG=prog), "build", "-trimpath",
                         "-o", str(tmp_path / "a.bin"))
        assert "published" in first.stderr, first.stderr
        second = plain_go(b, go_env(tmp_path / "B", GOCACHEPROG=prog), "build", "-trimpath",
                          "-o", str(tmp_path / "b.bin"))
        hits = re.search(r"cache (\d+) hits \((\d+) cluster\)", second.stderr)
        assert hits and int(hits.group(2)) > 50, second.stderr
        assert "forged" not in second.stderr and "altered" not in second.stderr
        plain = cacheprog("-v", "--scheduler", cluster.address)
        third = plain_go(b, go_env(tmp_path / "B2", GOCACHEPROG=plain), "build", "-trimpath",
                         "-o", str(tmp_path / "c.bin"))
        assert "cluster tier skipped" in third.stderr and "speaks TLS" in third.stderr
    assert sha(tmp_path / "a.bin") == sha(tmp_path / "b.bin") == sha(tmp_path / "c.bin") \
        == oracle_sha(b)


def test_a_full_cluster_tier_is_a_miss(heads: tuple[Path, Path], tmp_path: Path,
                                       faults) -> None:
    a, b = heads
    full = {"FGO_CACHE_SIZE": "0"}
    with RealCluster(tmp_path / "c", workers=2, envs={0: full, 1: full}) as cluster:
        _, rep_a = head_build(a, cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
        kept = [worker_store(cluster, i).stats() for i in range(2)]
        faults.injected()
        _, rep_b = head_build(b, cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    # the limit leaves room for empty bodies only (go stores a few, e.g. an empty stdout:
    # how many depends on the build, so the claim is on bytes)
    c = rep_a["shared_cache"]
    assert c["puts"] > 60 and c["published"] < c["puts"] / 10, c
    assert sum(k["bytes"] for k in kept) == 0, kept
    assert rep_b["shared_cache"]["bytes_fetched"] == 0 and rep_b["totals"]["cached"] == 0
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok


def test_a_full_local_disk_is_a_miss(heads: tuple[Path, Path], tmp_path: Path,
                                     real_cluster: RealCluster, faults) -> None:
    """B's local tier on a 256 KiB tmpfs: most puts and fetched entries do not fit; go
    still gets a file for each (spilled until close), and the build is right."""
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    tiny = tmp_path / "B" / "gocache" / "fgo"
    tiny.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(tiny)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        faults.injected()
        _, rep = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
    c = rep["shared_cache"]
    assert c["spilled"] > 20, c  # kept only for go's build, not in the cache
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("fgo-cacheprog-*/*"))
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok


def test_another_toolchains_entries_are_never_used(heads: tuple[Path, Path], tmp_path: Path,
                                                   real_cluster: RealCluster, faults) -> None:
    """The cluster holds, for every action ID of this build, a sound entry (its body hashes
    to its output ID) filed by a toolchain with another compiler: B must not see one."""
    import hashlib

    from distributed import Client
    a, b = heads
    head_build(a, real_cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
    other = namespace(toolchain.Identity(toolchain.go_version(), "f" * 64))
    actions = [x for v in cluster_entries(real_cluster).values() for x in v]
    with Client(real_cluster.address, timeout=30) as c:
        c.run(store.store_clear)
        foreign = tier.ClusterTier(c, other)
        bodies = [f"another compiler's output for {x}".encode() for x in actions]
        stored = foreign.put_many([CacheEntry(x, hashlib.sha256(body).hexdigest(), body, 0.0)
                                   for x, body in zip(actions, bodies)], timeout=60)
    assert stored == len(actions) > 60
    faults.injected()
    _, rep = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    assert rep["shared_cache"]["indexed"] == 0 and rep["shared_cache"]["remote_hits"] == 0
    assert rep["totals"]["cached"] == 0
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok


def test_a_verification_mismatch_publishes_nothing_and_leaves_nothing(
        hello: Path, tmp_path: Path, faults) -> None:
    """Worker 1 compiles with -N -l: the build fails, nothing reaches the cluster tier, the
    wrong archives leave the local tier, every cluster entry worker 1 produced earlier is
    revoked (on whichever worker holds it; every worker keeps the revocation), and a plain
    go build under the helper (same GOCACHE) gives the oracle's binary."""
    env = go_env(tmp_path / "head")
    key = trust.load_key(tmp_path / "cache.key")  # the team's key, made before any head
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_FAULT": "wrong-archive"}}) as cluster:
        with cluster.client(30) as c:
            stores = c.run(lambda: os.environ["FGO_STORE"])
        bad = next(w for w, path in stores.items() if path.endswith("store-1"))
        good = next(w for w in stores if w != bad)
        earlier = {p: trust.sign_entry(key, NS, entry(f"{i:064x}", f"by {p}".encode(), producer=p))
                   for i, p in enumerate((bad, good))}
        held = worker_store(cluster, 0)
        for e in earlier.values():
            plant(held, e)
        proc, rep = head_build(hello, cluster, env, tmp_path / "fgo.bin", ok=False)
        faults.injected()
        assert proc.returncode != 0 and "verification failed" in proc.stderr
        assert held.record(earlier[bad].action) is None                # revoked
        assert held.record(earlier[good].action) is not None           # another's stays
        assert {a for v in cluster_entries(cluster).values() for a in v} == \
            {earlier[good].action}                                      # nothing published
        with cluster.client(30) as c:
            kept = c.run(store.store_index, NS)
        assert all([r["producer"] for r in v["revoked"]] == [bad] for v in kept.values())
    c = rep["shared_cache"]
    assert c["published"] == 0 and c["withheld"] and c["puts"] > 0
    assert c["revoked"] == 1 and c["revoked_entries"] == 1, c
    assert any("/fgo/" in p for p in rep["verification"]["evicted"])
    after = plain_go(hello, {**env, "GOCACHEPROG": cacheprog()}, "build", "-trimpath", "-o",
                     str(tmp_path / "after.bin"))
    ok = sha(tmp_path / "after.bin") == oracle_sha(hello)
    faults.outcome(ok)
    assert ok, after.stderr


def test_shared_cache_is_off_when_asked() -> None:
    from fgo import settings
    from fgo.head import driver
    from fgo.head.options import BuildOptions
    opts = BuildOptions(project=".", scheduler="tcp://127.0.0.1:1", shared_cache=False)
    assert driver._cache_key(opts) is None  # no key is even read
    assert driver._shared_cache(opts, cluster=object(), tmp=Path("/nonexistent"),
                                key=driver._cache_key(opts)) is None
    assert settings.resolve(Path("/"), {}, {"FGO_SHARED_CACHE": "0"})["shared_cache"] is False
    assert settings.resolve(Path("/"), {}, {})["shared_cache"] is True
