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
from pathlib import Path

import pytest

from conftest import FGO, HELLO, RealCluster, oracle_build, run_fgo, sha, wait_until, write_tree
from fgo import paths, toolchain
from fgo.cache import store
from fgo.cache import tier
from fgo.wire import CacheEntry
from fgo.cache import protocol
from fgo.cache.local import DiskTier, EntryInfo, lru_victims
from fgo.settings import parse_size
from fgo.cache.server import remote_verdict
from fgo.cache.session import go_quote

NS = tier.namespace(toolchain.identity())


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


def test_protocol_round_trip_as_go_frames_it() -> None:
    put = protocol.Request(7, "put", bytes(range(32)), bytes(32), b"body\n\x00")
    get = protocol.Request(8, "get", bytes(32))
    stream = io.BytesIO(protocol.encode_request(put) + protocol.encode_request(get))
    assert protocol.read_request(stream) == put
    assert protocol.read_request(stream) == get
    assert protocol.read_request(stream) is None
    resp = protocol.Response(7, output_id=b"\x01" * 32, size=6, time=1.5e9, disk_path="/x/y-d")
    assert protocol.decode_response(protocol.encode_response(resp)) == resp
    assert protocol.encode_response(protocol.Response(3, miss=True)) == b'{"ID":3,"Miss":true}\n'
    with pytest.raises(protocol.ProtocolError):
        protocol.read_request(io.BytesIO(b'{"ID": 1, "Command": "put", "BodySize": 9}\n"eA=="\n'))
    # a body line with JSON escapes (which encoding/json never writes for base64) still reads
    escaped = b'{"ID": 2, "Command": "put", "BodySize": 3}\n"\\u0059\\/8A"\n'
    assert protocol.read_request(io.BytesIO(escaped)).body == base64.b64decode("Y/8A")


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


# ------------------------------------------------------------------ real go, real cluster

def go_env(head: Path, **extra: str) -> dict[str, str]:
    """A head node of its own: its own GOCACHE and HOME (fgo's cache dir stays shared so
    the shim is not rebuilt)."""
    return toolchain.go_env({**os.environ, "GOCACHE": str(head / "gocache"),
                             "HOME": str(head / "home"), "FGO_LEDGER": str(head / "ledger.json"),
                             "FGO_CACHE_DIR": str(paths.cache_dir()), **extra})


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
    from distributed import Client
    with Client(cluster.address, timeout=30) as c:
        return c.run(store.store_index, ns)


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
    proc, rep_b = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin",
                             "--trace", str(tmp_path / "b.trace"))
    cb = rep_b["shared_cache"]
    assert hit_rate(rep_b) >= 0.95, (cb, [(x["package"], x["mode"]) for x in rep_b["actions"]
                                        if x["mode"] != "cached"])
    assert cb["remote_hits"] > 60 and cb["bytes_fetched"] > 1e6 and cb["saved_s"] > 0, cb
    assert "cluster)" in proc.stderr.splitlines()[-1]  # the summary line
    trace = json.loads((tmp_path / "b.trace").read_text())
    assert trace["otherData"]["shared_cache"]["remote_hits"] == cb["remote_hits"]
    assert sha(tmp_path / "b.bin") == sha(tmp_path / "a.bin") == oracle_sha(b)


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


def test_a_corrupted_entry_is_a_miss_and_deleted(heads: tuple[Path, Path], tmp_path: Path,
                                                 real_cluster: RealCluster, faults) -> None:
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
    faults.injected()
    _, rep = head_build(b, real_cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    ok = sha(tmp_path / "b.bin") == oracle_sha(b)
    faults.outcome(ok)
    assert ok
    c = rep["shared_cache"]
    assert c["remote_hits"] > 10 and c["misses"] > 10, c
    # what B asked for was deleted, recompiled, and published again, now sound
    asked = set(DiskTier(tmp_path / "B" / "gocache" / "fgo" / NS).actions()) & set(corrupted)
    assert asked and all(store.get(x) is not None for x in asked)


def test_a_full_cluster_tier_is_a_miss(heads: tuple[Path, Path], tmp_path: Path,
                                       faults) -> None:
    a, b = heads
    full = {"FGO_CACHE_SIZE": "0"}
    with RealCluster(tmp_path / "c", workers=2, envs={0: full, 1: full}) as cluster:
        _, rep_a = head_build(a, cluster, go_env(tmp_path / "A"), tmp_path / "a.bin")
        faults.injected()
        _, rep_b = head_build(b, cluster, go_env(tmp_path / "B"), tmp_path / "b.bin")
    # the limit leaves room for empty bodies only (go stores a few, e.g. empty stdout)
    assert rep_a["shared_cache"]["puts"] > 60 and rep_a["shared_cache"]["published"] < 5
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
    other = tier.namespace(toolchain.Identity(toolchain.go_version(), "f" * 64))
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
    wrong archives leave the local tier, and a plain go build under the helper (same
    GOCACHE) gives the oracle's binary."""
    env = go_env(tmp_path / "head")
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_FAULT": "wrong-archive"}}) as cluster:
        proc, rep = head_build(hello, cluster, env, tmp_path / "fgo.bin", ok=False)
        faults.injected()
        assert proc.returncode != 0 and "verification failed" in proc.stderr
        assert sum(len(v) for v in cluster_entries(cluster).values()) == 0
    c = rep["shared_cache"]
    assert c["published"] == 0 and c["withheld"] and c["puts"] > 0
    assert any("/fgo/" in p for p in rep["verification"]["evicted"])
    after = plain_go(hello, {**env, "GOCACHEPROG": cacheprog()}, "build", "-trimpath", "-o",
                     str(tmp_path / "after.bin"))
    ok = sha(tmp_path / "after.bin") == oracle_sha(hello)
    faults.outcome(ok)
    assert ok, after.stderr


def test_shared_cache_is_off_when_asked() -> None:
    from fgo import settings
    from fgo.head import driver
    from fgo.head.session import BuildOptions
    opts = BuildOptions(project=".", scheduler="tcp://127.0.0.1:1", shared_cache=False)
    assert driver._shared_cache(opts, cluster=object(), tmp=Path("/nonexistent")) is None
    assert settings.resolve(Path("/"), {}, {"FGO_SHARED_CACHE": "0"})["shared_cache"] is False
    assert settings.resolve(Path("/"), {}, {})["shared_cache"] is True
