"""Faults injected into real processes during real builds; every case must end with the
binary of plain go build, or a clear one-line error. The session prints the counts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FGO, HELLO, RealCluster, oracle_build, run_fgo, sha, write_tree
from fgo import toolchain
from fgo.head import policy
from test_build import fgo_build, report_of
from test_split import large_package

import isolation


@pytest.fixture
def large(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "large", large_package())


def start_build(project: Path, report: Path, *opts: str, go_args: tuple[str, ...] = ("-a",),
                out: str = "fgo.bin") -> subprocess.Popen[str]:
    return subprocess.Popen([FGO, "build", "-q", "--report", str(report), *opts, str(project),
                             "--", *go_args, "-o", str(project / out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def identical(project: Path, out: str = "fgo.bin", go_args: tuple[str, ...] = ()) -> bool:
    plain = oracle_build(project, *go_args, "-o", str(project / "go.bin"))
    assert plain.returncode == 0, plain.stderr
    return sha(project / out) == sha(project / "go.bin")


def build_under_fault(project: Path, cluster: RealCluster, inject, faults, n: int = 1,
                      undo=None) -> dict:
    """A cold -a build on CLUSTER; INJECT runs while it compiles std remotely (a cold build
    keeps doing that for longer than the 4 s we wait). The binary must equal go build's."""
    report = project.parent / "r.json"
    proc = start_build(project, report, "--scheduler", cluster.address)
    time.sleep(4)
    inject()
    faults.injected(n)
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        if undo:
            undo()
    assert proc.returncode == 0, err
    ok = identical(project)
    faults.outcome(ok, n)
    assert ok
    return report_of(report)


def split_build(project: Path, cluster: RealCluster, faults, *go_args: str,
                env: dict[str, str] | None = None, leader: str = "worker"
                ) -> tuple[str, dict, dict, list[dict]]:
    """PROJECT built on CLUSTER with every package split in two (--split-large=0 --shards 2),
    as one injected fault: the binary must equal go build's. LEADER: where the leaders run,
    on a "worker" (no local slots) or on the "head" (its slots free). Returns the summary
    (stderr), the report, the record of package `big` and the trace's events."""
    trace = project.parent / "trace.json"
    slots = ("--local-slots", "0") if leader == "worker" else ("--local-slots", "2")
    proc, rep = fgo_build(project, *go_args, "-o", str(project / "fgo.bin"), env=env,
                          opts=("--scheduler", cluster.address, "--split-large=0", "--shards", "2",
                                *slots, "--trace", str(trace)))
    faults.injected()
    ok = identical(project)
    faults.outcome(ok)
    assert ok
    big = next(a for a in rep["actions"] if a["package"] == "example.com/large/big")
    return proc.stderr, rep, big, json.loads(trace.read_text())["traceEvents"]


def test_worker_sigkilled_mid_action(hello: Path, real_cluster, faults) -> None:
    rep = build_under_fault(hello, real_cluster,
                            lambda: real_cluster.workers[0].send_signal(signal.SIGKILL), faults)
    assert rep["totals"]["remote"] > 0


def test_all_workers_lost(hello: Path, real_cluster, faults) -> None:
    def kill_all() -> None:
        for w in real_cluster.workers:
            w.send_signal(signal.SIGKILL)
    t = build_under_fault(hello, real_cluster, kill_all, faults, n=2)["totals"]
    assert t["local"] > 0 and "worker lost" in " ".join(t["fallback_reasons"])


def test_scheduler_killed_mid_build(hello: Path, real_cluster, faults) -> None:
    rep = build_under_fault(hello, real_cluster,
                            lambda: real_cluster.scheduler.send_signal(signal.SIGKILL), faults)
    assert rep["totals"]["local"] > 0


def test_straggler_is_raced_locally(hello: Path, real_cluster, faults) -> None:
    """A worker frozen by SIGSTOP mid-build: a compile of it that runs past STRAGGLER_MIN_S
    makes the head ask whether it is alive; it does not answer, so it is left out for the
    rest of the build (its compiles run elsewhere, nothing is published to it). Before, each
    compile sent there waited for its own straggler deadline (10-70 s) and the publish for
    its 30 s: 129 s for hello's std."""
    frozen = real_cluster.workers[0]
    rep = build_under_fault(hello, real_cluster, lambda: frozen.send_signal(signal.SIGSTOP),
                            faults, undo=lambda: frozen.send_signal(signal.SIGCONT))
    reasons = rep["totals"]["fallback_reasons"]
    assert any(r.startswith(("straggler", "worker lost")) for r in reasons), reasons
    assert len(rep["cluster"]["unresponsive"]) == 1, rep["cluster"]
    assert rep["totals"]["wall_s"] < 90, rep["totals"]   # a bound on waiting, not a speed


def test_worker_stopped_before_connect(hello: Path, real_cluster, faults) -> None:
    """A worker stopped (SIGSTOP) before the build connects: installing fgo's service and
    the handshake have deadlines, so the build leaves it out, reports it, and finishes on
    the other worker (it used to wait forever in Client.register_plugin)."""
    frozen = real_cluster.workers[0]
    frozen.send_signal(signal.SIGSTOP)
    report = hello.parent / "stopped.json"
    try:
        t0 = time.monotonic()
        proc = start_build(hello, report, "--scheduler", real_cluster.address)
        faults.injected()
        _, err = proc.communicate(timeout=300)
        took = time.monotonic() - t0
    finally:
        frozen.send_signal(signal.SIGCONT)
    assert proc.returncode == 0, err
    ok = identical(hello)
    faults.outcome(ok)
    rep = report_of(report)
    assert ok and rep["totals"]["remote"] > 0, rep["totals"]
    assert len(rep["cluster"]["unresponsive"]) == 1, rep["cluster"]
    assert took < 240, took


@pytest.mark.parametrize("fault, leader", [("corrupt-transfer", "worker"),
                                           ("corrupt-shard", "worker"),
                                           ("truncate-shard", "worker"),
                                           ("corrupt-shard", "head")])
def test_damaged_data_is_detected(large: Path, tmp_path: Path, faults, fault: str,
                                  leader: str) -> None:
    os.environ["FGO_FAULT"] = fault  # read by the workers of this cluster only
    try:
        cluster = RealCluster(tmp_path / "c", workers=2)
    finally:
        del os.environ["FGO_FAULT"]
    with cluster:
        _, rep, big, _ = split_build(large, cluster, faults, leader=leader)
    if fault == "corrupt-transfer":  # every transfer is refused by the store: all local
        assert rep["totals"]["remote"] == 0 and big["mode"] == "local"
        assert any("corrupt" in r for r in rep["totals"]["fallback_reasons"])
    else:  # the merge refused the damaged shard: the package's normal compile was used
        assert big["mode"] == ("remote" if leader == "worker" else "local"), big
        assert "merge-refused" in big["split"]["fallback"], big["split"]
        if leader == "head":  # the head's own leader refused it
            assert big["split"]["fallback"].startswith("merge-refused: "), big["split"]


@pytest.mark.parametrize("slots", ["0", "2"], ids=["worker-leads", "head-leads"])
def test_shard_worker_killed(large: Path, real_cluster, faults, slots: str) -> None:
    report = large.parent / "killed.json"
    proc = start_build(large, report, "--scheduler", real_cluster.address, "--split-large=0",
                       "--shards", "2", "--local-slots", slots, go_args=())
    killed = False
    deadline = time.monotonic() + 300
    while not killed and time.monotonic() < deadline and proc.poll() is None:
        shards = subprocess.run(["pgrep", "-f", "--", "-fgoshard=1/2"], capture_output=True, text=True)
        for pid in shards.stdout.split():
            ppid = int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1])
            for w in real_cluster.workers:
                if w.pid == ppid:
                    w.send_signal(signal.SIGKILL)
                    killed = True
        time.sleep(0.05)
    _, err = proc.communicate(timeout=600)
    assert killed, "no shard ran"
    faults.injected()
    assert proc.returncode == 0, err
    ok = identical(large)
    faults.outcome(ok)
    big = [a for a in report_of(report)["actions"] if a["package"] == "example.com/large/big"][0]
    assert ok and big["mode"] in ("remote", "local") and big["split"]["fallback"], big


def test_worker_store_wiped_between_builds(hello: Path, real_cluster, faults) -> None:
    fgo_build(hello, "-a", "-o", str(hello / "first.bin"), opts=("--scheduler", real_cluster.address))
    for store in real_cluster.root.glob("store-*"):
        shutil.rmtree(store)
    faults.injected()
    _, rep = fgo_build(hello, "-a", "-o", str(hello / "fgo.bin"),
                       opts=("--scheduler", real_cluster.address))
    ok = identical(hello)
    faults.outcome(ok)
    assert ok and rep["totals"]["remote"] > 20 and rep["totals"]["fallbacks"] == 0


def test_two_builds_share_one_cluster(tmp_path: Path, real_cluster, faults) -> None:
    a = write_tree(tmp_path / "a", HELLO)
    b = write_tree(tmp_path / "b", {**HELLO, "words/hi.txt": "bonjour"})
    procs = [start_build(p, tmp_path / f"{p.name}.json", "--scheduler", real_cluster.address)
             for p in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    faults.injected()
    ok = identical(a) and identical(b) and sha(a / "fgo.bin") != sha(b / "fgo.bin")
    faults.outcome(ok)
    assert ok


def test_unreachable_scheduler_is_one_line(hello: Path) -> None:
    """Bad input, not an output fault: not counted in the fault line (no output to check)."""
    proc = run_fgo("build", "--scheduler", "tcp://127.0.0.1:9", str(hello), timeout=30)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_full_disk_in_a_worker_store(hello: Path, tmp_path: Path, faults) -> None:
    """Worker 0's store is a 512 kB tmpfs: its compiles fail to store inputs and run
    elsewhere or locally; the other worker carries on."""
    small = tmp_path / "small-store"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        cluster = RealCluster(tmp_path / "c", workers=2, stores={0: small})
        try:
            _, rep = fgo_build(hello, "-a", "-o", str(hello / "fgo.bin"),
                               opts=("--scheduler", cluster.address))
        finally:
            cluster.close()
    finally:
        subprocess.run(["umount", str(small)], check=False)
    faults.injected()
    ok = identical(hello)
    faults.outcome(ok)
    reasons = rep["totals"]["fallback_reasons"]
    assert ok and any("store-error" in r and "No space left" in r for r in reasons), reasons
    assert rep["totals"]["remote"] > 0  # the healthy worker kept working


def foreign_compiler(root: Path) -> Path:
    """A cache dir (FGO_CACHE_DIR) holding the patched compiler under another build ID:
    same patch series, same code, but to the compiler a different build, as when a
    worker's toolchain was rebuilt from other sources."""
    exe = isolation.install_patched_compiler(root)
    build_id = subprocess.run([str(toolchain.go_binary()), "tool", "buildid", str(exe)],
                              capture_output=True, text=True, check=True).stdout.strip().encode()
    other = build_id[:-1] + (b"A" if build_id[-1:] != b"A" else b"B")
    data = exe.read_bytes()
    assert data.count(build_id) >= 1
    exe.write_bytes(data.replace(build_id, other))
    return root


def test_shard_result_from_another_compiler_build(large: Path, tmp_path: Path, faults) -> None:
    """Worker 1's patched compiler is another build: whichever of the two workers leads
    the merge, it refuses the other's shard result and the package compiles normally."""
    cache = foreign_compiler(tmp_path / "foreign")
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_CACHE_DIR": str(cache)}}) as cluster:
        summary, rep, big, events = split_build(large, cluster, faults)
    why = "merge-refused: shard result fgo-shard-1.res was made by another compiler"
    assert big["mode"] == "remote" and big["split"]["fallback"] == why, big["split"]
    # visible in the summary line and in the trace
    assert rep["totals"]["split_fallback_reasons"].get(why, 0) >= 1, rep["totals"]
    assert "split fell back" in summary and why in summary, summary
    spans = [e for e in events if e["ph"] == "X" and e["name"] == "build example.com/large/big"]
    assert spans and spans[0]["args"].get("split_fallback") == why, spans


@pytest.fixture(scope="session")
def worker_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A worker's own installation, as on another host (isolation.make_install)."""
    return isolation.make_install(tmp_path_factory.mktemp("worker-install") / "install")


def test_workers_that_share_no_filesystem(large: Path, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory,
                                          worker_install: Path, faults) -> None:
    """Workers in their own mount namespace, with the head's project, GOROOT, caches and
    temp directories hidden under empty tmpfs mounts, build the identical binary, split
    package included: nothing reaches them except through fgo's own transfers."""
    why = isolation.unavailable()
    if why:
        pytest.skip(why)
    hide = isolation.head_dirs([tmp_path_factory.getbasetemp()])
    w = isolation.MOUNT
    env = isolation.worker_env()
    wrap = isolation.isolate_prefix(worker_install, hide)
    head_tmp = tmp_path / "head-tmp"  # go build's WORK directory: hidden with the rest of BASE
    head_tmp.mkdir()
    with RealCluster(tmp_path / "c", workers=2, envs={0: env, 1: env}, wrap=wrap) as cluster:
        from distributed import Client
        with Client(cluster.address) as client:
            seen = client.run(lambda: (str(toolchain.goroot()), os.path.exists(large / "big")))
        assert all(root.startswith(w) and not project for root, project in seen.values()), seen
        _, rep, big, events = split_build(large, cluster, faults, "-a", env={"TMPDIR": str(head_tmp)})
    assert big["mode"] == "split", big
    # the trace draws every split compile in its leader's worker lane
    workers = {e["pid"] for e in events if e["ph"] == "M" and e["args"]["name"].startswith("worker ")}
    split_spans = {e["name"].split(" ", 1)[1] for e in events
                   if e["ph"] == "X" and e["args"].get("mode") == "split" and e["pid"] in workers}
    assert split_spans == {a["package"] for a in rep["actions"] if a["mode"] == "split"}
    t = rep["totals"]  # --split-large=0: std's packages are split too
    assert t["local"] == 0 and t["remote"] + t["split"] > 20 and t["fallbacks"] == 0, t


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("func (){}[]<>\"'`/*\n\t=;:.,_aAxT0 \\")),
               max_size=300))
def test_planner_never_crashes_on_fuzzed_source(text: str) -> None:
    """Whatever the source, the planner answers with units or a ScanError, nothing else."""
    from fgo.planner.gosource import ScanError, scan_source
    try:
        scan_source("package p\n" + text, "fuzz.go")
    except ScanError:
        pass


# --- wrong outputs: well-formed, pass every integrity check; only verification sees them ---

def caught(proc: subprocess.CompletedProcess[str], report: Path, kind: str) -> dict:
    """The build failed and named the package and a symbol. (That it left nothing wrong
    behind is each caller's `plain_build_is_right`: `evicted` is rightly empty when none of
    the excluded worker's outputs reached go's cache, its wrong compile checked before go
    had it and the build stopped; CI once met that order.)"""
    assert proc.returncode != 0, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("fgo: verification failed:")]
    assert lines and f"{kind} compile of " in lines[0], proc.stderr
    rep = report_of(report)
    bad = rep["verification"]["mismatched"]
    assert bad and all(m["symbol"] for m in bad), bad
    return rep


def plain_build_is_right(project: Path, env: dict[str, str] | None = None) -> bool:
    """After the failed build, a plain go build in the same GOCACHE gives the oracle's
    binary: no wrong archive was left for it to reuse."""
    after = subprocess.run([str(toolchain.go_binary()), "build", "-o", str(project / "after.bin")],
                           cwd=project, env=toolchain.go_env({**os.environ, **(env or {})}),
                           capture_output=True, text=True)
    assert after.returncode == 0, after.stderr
    assert oracle_build(project, "-o", str(project / "go.bin")).returncode == 0
    return sha(project / "after.bin") == sha(project / "go.bin")


def test_a_compile_that_fails_on_its_worker_is_not_the_users_error(hello: Path,
                                                                  tmp_path: Path,
                                                                  faults) -> None:
    """Worker 1 loses a Go source of every compile from its sandbox (as CI once met), so
    its compiler fails on good code: each such compile is run by go instead, the build
    succeeds and its binary is the oracle's; the report says why. Once go's own runs have
    built two of its failures, worker 1 is left out: it fails no more than those and the
    compiles it already had (at most go's -p), not every compile it would have got. The
    next build on that scheduler leaves it out from the start: it fails nothing there."""
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache")}
    report, again = tmp_path / "r.json", tmp_path / "again.json"
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_FAULT": "lose-input"}}) as cluster:
        proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address,
                       "--no-shared-cache", str(hello), "--", "-a", "-o",
                       str(hello / "fgo.bin"), env=env)
        assert proc.returncode == 0, proc.stderr
        second = run_fgo("build", "--report", str(again), "--scheduler", cluster.address,
                         "--no-shared-cache", str(hello), "--", "-a", "-o",
                         str(hello / "again.bin"), env=env)
    faults.injected()
    assert proc.returncode == 0, proc.stderr
    assert second.returncode == 0, second.stderr
    ok = identical(hello) and sha(hello / "again.bin") == sha(hello / "go.bin")
    faults.outcome(ok)
    assert ok
    rep = report_of(report)
    totals = rep["totals"]
    lost = {why: n for why, n in totals["fallback_reasons"].items()
            if why.startswith(policy.FAILED_ELSEWHERE)}
    assert lost, totals["fallback_reasons"]  # the fault hit, and was not the user's error
    assert totals["remote"] > 0, totals     # worker 0 compiled the rest
    failing = rep["cluster"]["left_out_failing"]
    assert len(failing) == 1 and failing[0] in next(iter(lost)), (failing, lost)
    assert "left out" in proc.stderr, proc.stderr
    in_flight = rep["cluster"]["go_parallelism"]  # the most go build asks for at once
    assert sum(lost.values()) <= policy.HOST_FAULTS_TO_LEAVE_OUT + in_flight, (lost, totals)
    # the next build: worker 1 backed off at its handshake, worker 0 compiles, nothing fails
    rep2 = report_of(again)
    assert list(rep2["cluster"]["backed_off"]) == failing, rep2["cluster"]
    assert "earlier build" in second.stderr, second.stderr
    assert rep2["cluster"]["host_faults"] == {}, rep2["cluster"]
    assert not any(why.startswith(policy.FAILED_ELSEWHERE)
                   for why in rep2["totals"]["fallback_reasons"]), rep2["totals"]
    assert rep2["totals"]["remote"] > 0, rep2["totals"]
    assert len(rep2["cluster"]["failing_hosts"]) == 1, rep2["cluster"]  # still remembered


@pytest.mark.parametrize("check", [False, True], ids=["default", "check"])
def test_a_worker_returning_a_wrong_archive_is_caught(hello: Path, tmp_path: Path, faults,
                                                      check: bool) -> None:
    """Worker 1 compiles everything with -N -l (well-formed, wrong archives): the default
    verification (each worker's first compile) catches it, as does --check."""
    env = {"GOCACHE": str(tmp_path / "gocache"), "FGO_LEDGER": str(tmp_path / "ledger.json")}
    report = tmp_path / "r.json"
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_FAULT": "wrong-archive"}}) as cluster:
        proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address,
                       *(["--check"] if check else []), str(hello), "--", "-o",
                       str(hello / "fgo.bin"), env={**os.environ, **env})
    faults.injected()
    rep = caught(proc, report, "remote")
    assert not (hello / "fgo.bin").exists()  # the link was refused
    bad_worker = rep["verification"]["mismatched"][0]["worker"]
    assert rep["verification"]["excluded"] == [bad_worker]
    ok = plain_build_is_right(hello, env)
    faults.outcome(ok)
    assert ok


def test_an_intermittently_wrong_worker_is_caught(hello: Path, tmp_path: Path, faults) -> None:
    """Worker 1 compiles half its compiles wrong (-N -l), the others right: its first check
    may pass. --verify-catch 0.3 checks enough of each worker's compiles (13: the build's
    size from an earlier build of the same target) that one wrong on half of them escapes
    with probability 0.5^13; it is caught, excluded, and nothing wrong is kept."""
    env = {**os.environ, "GOCACHE": str(tmp_path / "gocache"),
           "FGO_LEDGER": str(tmp_path / "ledger.json")}
    args = ("--", "-a", "-o", str(hello / "fgo.bin"))
    with RealCluster(tmp_path / "warm", workers=2) as cluster:  # learns the build's size
        first = run_fgo("build", "-q", "--scheduler", cluster.address, "--no-shared-cache",
                        str(hello), *args, env=env)
    assert first.returncode == 0, first.stderr
    report = tmp_path / "r.json"
    with RealCluster(tmp_path / "c", workers=2, envs={1: {"FGO_FAULT": "wrong:0.5"}}) as cluster:
        proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address,
                       "--no-shared-cache", "--verify-catch", "0.3", str(hello), *args,
                       env=env)
    faults.injected()
    rep = caught(proc, report, "remote")
    v = rep["verification"]
    assert v["rate"] > 0.2 and len(v["excluded"]) == 1, v
    ok = plain_build_is_right(hello, {k: env[k] for k in ("GOCACHE", "FGO_LEDGER")})
    faults.outcome(ok)
    assert ok


WRONG_SHARD_REFUSED = ("merge-refused: shard result fgo-shard-1.res was compiled with other settings: "
                       "shard debug ssa/dse/off; leader none")


@pytest.mark.parametrize("verify", ["default", "check", "off"])
def test_a_wrong_shard_with_valid_digests_is_refused_by_the_merge(large: Path, tmp_path: Path, faults,
                                                                 verify: str) -> None:
    """Shard processes run with dead store elimination off (GOCOMPILEDEBUG): well-formed
    results with valid digests and a stock frontend, but other code. The split's fingerprint
    covers the compiler's effective settings (patch 0017), so the leader's merge refuses the
    shard, naming the difference, and the package compiles normally: the binary is the
    oracle's without any verification (`--verify-splits off`, cold with -a: the issue's
    acceptance), and verification has nothing to catch."""
    # a cache key of its own: the session's GOCACHE may hold `big` from other tests
    (large / "big" / "salt.go").write_text(f'package big\n\nconst salt = "{time.time_ns()}"\n')
    ledger = tmp_path / "ledger.json"
    env = {"FGO_LEDGER": str(ledger)}
    report = tmp_path / "r.json"
    fault = {"FGO_FAULT": "wrong-shard"}
    opts = {"default": [], "check": ["--check"], "off": ["--verify-splits", "off"]}[verify]
    go_args = ("-a",) if verify == "off" else ()
    with RealCluster(tmp_path / "c", workers=2, envs={0: fault, 1: fault}) as cluster:
        proc = run_fgo("build", "--report", str(report), "--scheduler", cluster.address,
                       "--split-large=0", "--shards", "2", *opts, str(large), "--", *go_args, "-o",
                       str(large / "fgo.bin"), env={**os.environ, **env})
    faults.injected()
    assert proc.returncode == 0, proc.stderr
    ok = identical(large, go_args=go_args)
    faults.outcome(ok)
    assert ok
    rep = report_of(report)
    big = next(a for a in rep["actions"] if a["package"] == "example.com/large/big")
    assert big["mode"] == "remote" and big["split"]["fallback"] == WRONG_SHARD_REFUSED, big["split"]
    assert rep["totals"]["split_fallback_reasons"].get(WRONG_SHARD_REFUSED, 0) >= 1, rep["totals"]
    assert not rep.get("verification", {}).get("mismatched"), rep.get("verification")
    disabled = json.loads(ledger.read_text()).get("disabled", {}) if ledger.exists() else {}
    assert not any(k.endswith(" example.com/large/big") for k in disabled), disabled
