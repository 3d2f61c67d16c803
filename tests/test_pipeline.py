"""Pipelined compilation (fgo.head.speculation): dependents compiled ahead of go build from
their imports' early export data, taken only when the real request's content key matches,
and the output byte-identical to a plain go build's. The decisions are pure; the builds
run real `dask scheduler`/`dask worker` processes and compare with oracle_build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fgo.head import speculation as sp
from fgo.head.action import rewrite_buildid
from fgo.head.policy import RemoteFailure
from fgo.planner.prediction import Prediction, differs
from conftest import RealCluster, oracle_build, run_fgo, sha, write_tree

# A chain (main -> d -> c -> b -> a) over std: each link can only start from the export
# data of the one before. a's 2,000 small functions give its backend ~0.5 s after its export
# data is out: long enough that b's speculation starts before go build can ask for b, on a
# slow machine too (a tiny a left that a race of milliseconds, lost once in CI).
_BULK = "".join(f"func F{i}(x int) int {{\n\ts := {i}\n\tfor j := 0; j < x; j++ {{\n"
                f"\t\ts += j*{i} ^ (s >> 3)\n\t}}\n\treturn s\n}}\n\n" for i in range(2000))
CHAIN = {
    "a/bulk.go": "package a\n\n" + _BULK,
    "go.mod": "module example.com/chain\n\ngo 1.22\n",
    "a/a.go": 'package a\n\nimport "fmt"\n\nfunc A(x int) string { return fmt.Sprint(x * 2) }\n',
    "b/b.go": 'package b\n\nimport "example.com/chain/a"\n\nfunc B(x int) string { return a.A(x) + "b" }\n',
    "c/c.go": 'package c\n\nimport "example.com/chain/b"\n\nfunc C(x int) string { return b.B(x) + "c" }\n',
    "d/d.go": 'package d\n\nimport (\n\t"strings"\n\n\t"example.com/chain/c"\n)\n\n'
              'func D(x int) string { return strings.ToUpper(c.C(x)) }\n',
    "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/chain/d"\n)\n\n'
               'func main() { fmt.Println(d.D(21)) }\n',
}


def _pred(pkg: str, imports: dict[str, str], **kw) -> Prediction:
    base = dict(package=pkg, p=pkg, argv=("compile", "-o", "$WORK/b/_pkg_.a", "-p", pkg),
                cwd="/s", sources=(f"/s/{pkg}.go",), imports=tuple(imports),
                importcfg="".join(f"packagefile {i}\n" for i in imports),
                import_files=tuple(imports.items()))
    return Prediction(**{**base, **kw})


# ------------------------------------------------------------------ decisions

def test_pipeline_is_on_with_hosts_and_threads_enough_unless_told() -> None:
    assert not sp.pipeline_wanted(None, 1, 16) and sp.pipeline_wanted(None, 2, 4)
    assert not sp.pipeline_wanted(None, 2, 2)   # measured: a loss on 2 one-core hosts
    assert sp.pipeline_wanted(True, 1, 1) and not sp.pipeline_wanted(False, 4, 64)


def test_the_plan_is_read_only_once_speculation_is_wanted(tmp_path: Path) -> None:
    from fgo.head.speculation import Speculator
    started: list[str] = []
    quiet = Speculator(None, None, None, str(tmp_path / "a"))
    quiet.plan_when_wanted(lambda: started.append("quiet"))
    quiet.workers_known(hosts=2, threads=2)   # below MIN_THREADS: never read
    assert started == []
    quiet.workers_known(hosts=2, threads=8)   # workers joined: now it pays
    assert started == ["quiet"]
    forced = Speculator(None, None, None, str(tmp_path / "b"), forced=True)
    forced.plan_when_wanted(lambda: started.append("forced"))
    assert started == ["quiet", "forced"]
    for s in (quiet, forced):
        s.close()


def test_export_data_is_kept_only_while_speculation_may_run(tmp_path: Path,
                                                            monkeypatch) -> None:
    """Until the workers are known, what arrives first (what the most compiles import) is
    kept; once they make speculation not worth it, nothing is read or kept (a head's CPU
    per compile); workers that join and make it worth it start keeping again."""
    from fgo.head import exports
    from fgo.head.speculation import Speculator
    archive = tmp_path / "idle.a"
    archive.write_bytes(b"!<arch>\n")
    read: list[str] = []
    real = exports.read_export_data
    monkeypatch.setattr(exports, "read_export_data", lambda path: read.append(path) or real(path))
    s = Speculator(None, None, None, str(tmp_path / "s"))
    s.export_ready("first", b"export data")             # counted as it arrives
    s.workers_known(hosts=1, threads=2)
    s.export_ready("idle", b"export data")
    s.archive_written("idle", str(archive))
    assert s.exports.early == 1 and read == []
    s.workers_known(hosts=2, threads=8)
    s.export_ready("later", b"export data")
    s.archive_written("later", str(archive))
    assert s.exports.early == 2 and read == [str(archive)]
    s.close()
    idle = Speculator(None, None, None, str(tmp_path / "idle"))
    idle.workers_known(hosts=1, threads=2)  # its thread parks until close
    idle.poke()
    idle.close()
    for thread in (s._thread, idle._thread):
        thread.join(5)
        assert not thread.is_alive()


def test_what_cannot_be_speculated() -> None:
    assert sp.not_speculable(_pred("x", {})) is None
    assert "cgo" in sp.not_speculable(_pred("x", {}, work_inputs=("$WORK/b/_cgo_gotypes.go",)))
    asm = _pred("x", {}, argv=("compile", "-asmhdr", "$WORK/b/go_asm.h", "-p", "x"))
    assert sp.not_speculable(asm) == "writes more than its archive"


def test_ready_needs_the_export_data_of_every_import_the_build_makes() -> None:
    preds = {"a": _pred("a", {"fmt": "/cache/fmt-d"}),
             "b": _pred("b", {"a": "$WORK/b/_pkg_.a", "fmt": "/cache/fmt-d"}),
             "c": _pred("c", {"b": "$WORK/b/_pkg_.a"}),
             "d": _pred("d", {"b": "$WORK/b/_pkg_.a"}),
             "g": _pred("g", {}, work_inputs=("$WORK/b/x.go",))}
    q = sp.ReadyQueue(preds, {"a": 3, "b": 2, "c": 1, "d": 5})
    # a imports only a cached archive: ready at once; g is never offered (cgo)
    assert q.next() == "a"
    q.take("a")                       # started
    assert q.next() is None           # b waits for a's export data
    q.exported("a")
    assert q.next() == "b"
    q.take("b")                       # go build asked for it: never speculated now
    q.exported("b")
    assert q.next() == "d"            # the higher priority first
    q.take("d")
    assert q.next() == "c"
    q.exported("b")                   # told twice: nothing offered twice
    q.take("c")
    assert q.next() is None


def test_a_pgo_build_waits_for_its_profile() -> None:
    """-pgo=auto: every compile reads the one profile an earlier action makes; speculation
    waits until a real compile has named its path."""
    pgo = _pred("p", {}, work_inputs=(sp.PGO_PROFILE,))
    assert sp.not_speculable(pgo) is None
    assert "cgo" in sp.not_speculable(_pred("q", {}, work_inputs=(sp.PGO_PROFILE, "$WORK/b/symabis")))
    q = sp.ReadyQueue({"p": pgo}, {})
    assert q.next() is None
    q.exported(sp.PGO_PROFILE)
    assert q.next() == "p"


def test_a_missed_or_unused_speculation_lets_go_of_its_archive(tmp_path: Path) -> None:
    """The build keeps every speculation for its report; the encoded archive its future
    holds goes once the speculation is discarded, or left unused at the end."""
    import concurrent.futures

    from fgo.head.action import ActionRecord

    def ended(body: bytes) -> concurrent.futures.Future:
        f: concurrent.futures.Future = concurrent.futures.Future()
        f.set_result(body)
        return f
    s = sp.Speculator(None, None, None, str(tmp_path / "s"))
    missed = sp.Speculation("m", ("a", "b", "c"), "/o/m", "id", "w", 0.0, ended(b"x" * 1000))
    s._discard(missed, "miss", "sources differ", ActionRecord(package="m", tool="compile",
                                                               mode="local", start=0.0))
    unused = sp.Speculation("u", ("a", "b", "c"), "/o/u", "id", "w", 0.0, ended(b"y" * 1000))
    s.specs["u"] = unused
    s.close()
    for spec, outcome in ((missed, "miss"), (unused, "unused")):
        assert spec.outcome == outcome and spec.future.done() and spec.future.result() is None


def test_priorities_are_bottom_levels() -> None:
    preds = {"a": _pred("a", {}), "b": _pred("b", {"a": "$WORK"}), "c": _pred("c", {"a": "$WORK"}),
             "d": _pred("d", {"b": "$WORK"})}
    level = sp.priorities(preds, {"a": 1, "b": 5, "c": 2, "d": 1})
    assert level == {"a": 7, "b": 6, "c": 2, "d": 1}
    # a random plan of 300 compiles: networkx's longest path to a sink, cost included
    import random

    import networkx as nx
    rnd = random.Random(7)
    names = [f"p{i}" for i in range(300)]
    preds = {n: _pred(n, {m: "$WORK" for m in rnd.sample(names[:i], min(i, rnd.randint(0, 6)))})
             for i, n in enumerate(names)}
    cost = {n: rnd.uniform(0.1, 3) for n in names}
    g = nx.DiGraph((imp, n) for n, p in preds.items() for imp in p.imports)
    g.add_nodes_from(names)
    want: dict[str, float] = {}
    for n in reversed(list(nx.topological_sort(g))):
        want[n] = cost[n] + max((want[d] for d in g.successors(n)), default=0.0)
    assert sp.priorities(preds, cost) == pytest.approx(want)


def test_buildid_rewrite_is_in_place() -> None:
    old = sp.placeholder_buildid()
    half = old.split("/")
    assert len(half[0]) == 20 and half[0] == half[1]
    new = "A" * 20 + "/" + "A" * 20
    data = b"!<arch>\nbuild id \"" + old.encode() + b"\"\n...go object " + old.encode()
    out = rewrite_buildid(data, old, new)
    assert len(out) == len(data) and out.count(new.encode()) == 2 and old.encode() not in out
    with pytest.raises(RemoteFailure, match="lengths"):
        rewrite_buildid(data, old, "short/short")
    with pytest.raises(RemoteFailure, match="not in the output"):
        rewrite_buildid(b"nothing", old, new)


def test_head_start_and_work_dir() -> None:
    assert sp.head_start(requested=10.0, started=8.0, took=5.0) == 2.0
    assert sp.head_start(requested=10.0, started=2.0, took=5.0) == 5.0   # done before asked
    assert sp.head_start(requested=10.0, started=11.0, took=5.0) == 0.0
    assert sp.work_dir("/tmp/go-build42/b007/_pkg_.a") == "/tmp/go-build42"
    assert sp.work_dir("/elsewhere/x.a") is None


def test_a_miss_names_the_part_that_differs() -> None:
    assert differs(("1", "2", "3"), ("1", "2", "3")) is None
    assert differs(("1", "2", "3"), ("1", "x", "y")) == "sources differ"
    assert differs(("1", "2", "3"), ("1", "2", "y")) == "imports' export data differs"


def test_a_speculations_archive_is_staged_not_made_on_its_worker() -> None:
    """A speculation's worker kept the archive it compiled under the speculation's build ID:
    the publish cannot have it make go's body, so the head stages the body it wrote."""
    from fgo.head.driver import _provenance
    from fgo.report.record import speculation_hit
    hit = {"outcome": "hit", "started": 0.0}
    assert speculation_hit(hit) and not speculation_hit(None)
    assert not speculation_hit({"outcome": "none", "why": "not predicted"})
    actions = [{"package": p, "mode": "remote", "worker": "tcp://w", "duration_s": 1.0,
                "build_id": f"{a * 20}/{a * 20}", "output_sha256": "ab" * 32, "speculation": spec}
               for p, a, spec in (("x", "A", None), ("y", "B", hit))]
    known = _provenance(actions, [])
    assert list(known.archive.values()) == [("ab" * 32, f"{'A' * 20}/{'A' * 20}")]
    assert len(known.producer) == 2   # both remote, by that worker


# ------------------------------------------------------------------ real builds

def _build(tree: Path, tmp_path: Path, *flags: str, env: dict[str, str] | None = None,
           cluster: RealCluster | None = None, report: str = "r.json") -> dict:
    """`fgo build -a` of TREE on CLUSTER (else a new one of two 1-thread workers, each
    its own store: two hosts) into tmp_path's GOCACHE; the report."""
    path = tmp_path / report
    own = cluster is None
    cluster = cluster or RealCluster(tmp_path / "c", workers=2)
    try:
        proc = run_fgo("build", "--report", str(path), "--scheduler", cluster.address,
                       "--no-shared-cache", *flags, str(tree), "--", "-a", "-o",
                       str(tree / "fgo.bin"),
                       env={**os.environ, "GOCACHE": str(tmp_path / "gocache"), **(env or {})})
    finally:
        if own:
            cluster.close()
    assert proc.returncode == 0, proc.stderr
    return json.loads(path.read_text())


def test_a_pipelined_build_is_byte_identical(tmp_path: Path) -> None:
    """Two worker hosts (stores), --pipeline. Dependents start from early export data,
    their results are taken, and the binary is the oracle's; --check compares every archive
    with a plain build's as well."""
    tree = write_tree(tmp_path / "chain", CHAIN)
    rep = _build(tree, tmp_path, "--pipeline", "--check")
    assert oracle_build(tree, "-a", "-o", str(tree / "go.bin")).returncode == 0
    assert sha(tree / "fgo.bin") == sha(tree / "go.bin")
    assert rep["checks"] and all(c["ok"] for c in rep["checks"])
    spec = rep["speculation"]
    assert spec["active"] and spec["early_exports"] > 0
    assert spec["hits"] >= 5, spec
    assert spec["misses"] == 0, spec["reasons"]
    taken = {s["package"] for s in spec["speculations"] if s["outcome"] == "hit"}
    assert taken & {"example.com/chain/b", "example.com/chain/c", "example.com/chain/d"}
    hits = [a for a in rep["actions"] if (a.get("speculation") or {}).get("outcome") == "hit"]
    assert len(hits) == spec["hits"] and all(a["mode"] == "remote" for a in hits)
    # a speculative result is verified against a local compile like a remote one
    assert any(c["kind"] == "speculative" and c["matched"] for c in rep["verification"]["checks"])


def test_off_by_default_below_four_threads_and_with_no_pipeline(tmp_path: Path) -> None:
    """Two hosts of one thread each (below MIN_THREADS): go's plan is not even read, nothing
    is speculated, and the build is right; with --no-pipeline there is no speculator at all."""
    tree = write_tree(tmp_path / "chain", CHAIN)
    with RealCluster(tmp_path / "c", workers=2) as cluster:
        rep = _build(tree, tmp_path, cluster=cluster)
        assert rep["speculation"]["active"] is False and rep["speculation"]["started"] == 0
        assert rep["speculation"]["predicted"] == 0
        assert oracle_build(tree, "-a", "-o", str(tree / "go.bin")).returncode == 0
        assert sha(tree / "fgo.bin") == sha(tree / "go.bin")
        off = _build(tree, tmp_path, "--no-pipeline", cluster=cluster, report="off.json")
    assert "speculation" not in off
    assert not any(a.get("speculation") for a in off["actions"])
    assert off["totals"]["remote"] > 0  # (-a: compiled again, on the cluster)


def test_pipelining_with_split_packages(tmp_path: Path) -> None:
    """--split-large with --pipeline: a split package's export data comes from its
    leader's frontend (on the leader's connection), its dependents are speculated, and the binary is the
    oracle's."""
    tree = write_tree(tmp_path / "chain", CHAIN)
    rep = _build(tree, tmp_path, "--pipeline", "--split-large=0", "--shards", "2")
    assert oracle_build(tree, "-a", "-o", str(tree / "go.bin")).returncode == 0
    assert sha(tree / "fgo.bin") == sha(tree / "go.bin")
    split = {a["package"] for a in rep["actions"] if a["mode"] == "split"}
    assert split, "nothing was split"
    spec = rep["speculation"]
    assert spec["hits"] > 0 and spec["misses"] == 0, spec["reasons"]
    # the leaders sent their export data early (each leader is shard 0's process)
    assert set(spec["early_exports_split"]) & split


# The chain with a backend in b as well: c's speculation may start from b's early export
# data, the speculation's or the real compile's, while b's backend runs (~0.5 s), not only
# in the window b's speculation leaves before go build asks for c (lost once in CI).
LONG_B = {**CHAIN, "b/bulk.go": "package b\n\n" + _BULK}


def test_a_stale_prediction_is_discarded(tmp_path: Path, faults) -> None:
    """A source added after go's plan was read (fault edit-after-plan): c's speculation
    compiles the predicted file set, the real request names one more file, so it is
    discarded ("command line differs") and c compiles as usual; whatever was speculated
    from c's stale export data misses too. The binary is the edited tree's."""
    tree = write_tree(tmp_path / "chain", LONG_B)
    extra = tree / "c" / "extra.go"
    Path(f"{extra}.next").write_text('package c\n\nconst Extra = "!"\n\n'
                                     'func init() { suffix = Extra }\n')
    (tree / "c" / "c.go").write_text('package c\n\nimport "example.com/chain/b"\n\nvar suffix = "c"\n\n'
                                     'func C(x int) string { return b.B(x) + suffix }\n')
    rep = _build(tree, tmp_path, "--pipeline", env={"FGO_FAULT": f"edit-after-plan:{extra}"})
    faults.injected()
    assert extra.exists()
    assert oracle_build(tree, "-a", "-o", str(tree / "go.bin")).returncode == 0
    identical = sha(tree / "fgo.bin") == sha(tree / "go.bin")
    faults.outcome(identical)
    assert identical
    specs = {s["package"]: s for s in rep["speculation"]["speculations"]}
    c = specs.get("example.com/chain/c")
    asked = [a.get("speculation") for a in rep["actions"]
             if a.get("package") == "example.com/chain/c"]
    assert c is not None, f"c was never speculated (the fault was not observed): {asked}, " \
                          f"{rep['speculation']['reasons']}"
    assert (c["outcome"], c["why"]) == ("miss", "command line differs")


# ------------------------------------------------------------------ the worker's idle time

def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_speculation_runs_only_in_idle_time() -> None:
    """A real process stands in for a speculative compile: stopped while the real compiles
    fill the worker's threads, continued when one ends, and running once go build waits
    for it whatever the real compiles do."""
    import subprocess
    import time

    from fgo.worker.idle import IdleTime, runs
    assert runs(0, 1, False) and not runs(1, 1, False) and runs(1, 1, True) and runs(1, 2, False)
    idle = IdleTime(threads=1)
    proc = subprocess.Popen(["sleep", "60"])
    try:
        idle.spec_started("/spec/b1/_pkg_.a", proc.pid)
        assert _state(proc.pid) in "SRD"   # D: briefly in the kernel (exec, page-in) on a loaded machine
        idle.real_started()
        time.sleep(0.1)
        assert _state(proc.pid) == "T"          # stopped
        idle.real_ended()
        time.sleep(0.1)
        assert _state(proc.pid) in "SRD"        # continued
        idle.real_started()
        assert idle.promote("/spec/b1/_pkg_.a", nice=3) and not idle.promote("/other")
        time.sleep(0.1)
        assert _state(proc.pid) in "SRD"        # wanted: runs beside the real compile,
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, os.getpriority(
            os.PRIO_PROCESS, 0) + 3)            # as nice as a real one
        idle.spec_ended("/spec/b1/_pkg_.a")
    finally:
        proc.kill()
        proc.wait()


_SPECULATING_WORKER = """
import sys, threading, time
from fgo.worker import runner
from fgo.worker.idle import IDLE
IDLE.real_started()  # a real compile holds the worker's one thread: a speculation is stopped
argv = sys.argv[1:]
threading.Thread(target=runner.run, args=("spec", argv, ".", None),
                 kwargs={"speculative": "/spec/_pkg_.a"}, daemon=True).start()
while not IDLE.specs:
    time.sleep(0.01)
print(next(iter(IDLE.specs.values())).pid, flush=True)
time.sleep(600)
"""


def test_a_stopped_speculation_ends_when_its_worker_is_killed(tmp_path: Path) -> None:
    """A worker SIGKILLed while its speculative compile is stopped leaves no compiler
    behind: the real compiler, reading its source from a pipe that stays open (so that only
    a signal can end it), is gone or a zombie within seconds of its worker's death, never
    stopped for good as it was before it had a process group of its own."""
    import signal
    import subprocess
    import sys
    import time

    from fgo import toolchain
    go = toolchain.go_binary()
    argv = [str(go), "tool", "compile", "-p", "main", "-o", str(tmp_path / "_pkg_.a"),
            "/dev/stdin"]
    worker = subprocess.Popen([sys.executable, "-c", _SPECULATING_WORKER, *argv],
                              cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    compiler = 0
    try:
        assert worker.stdout is not None
        compiler = int(worker.stdout.readline())
        end = time.monotonic() + 30
        while _state(compiler) != "T":
            assert time.monotonic() < end, f"the speculation was never stopped: {_state(compiler)}"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        end = time.monotonic() + 10
        while (state := _state_or_gone(compiler)) not in ("gone", "Z"):
            assert time.monotonic() < end, f"the orphaned compiler is left in state {state}"
            time.sleep(0.05)
    finally:
        worker.kill()
        worker.wait()
        if compiler and _state_or_gone(compiler) not in ("gone", "Z"):
            os.kill(compiler, signal.SIGKILL)
        assert worker.stdin is not None
        worker.stdin.close()


def _state_or_gone(pid: int) -> str:
    try:
        return _state(pid)
    except OSError:
        return "gone"


def test_a_closing_worker_kills_its_speculations_and_lets_real_compiles_run() -> None:
    """What the worker's service does at its close: a speculation (in a process group of
    its own, not reached by a signal to its worker's group) is killed and answered as
    cancelled; a real compile runs on (a head may still take its result: killing it
    answered the head with exit -9, go build's failure); and nothing stays set for the
    speculations that start later (another worker in the same process)."""
    import signal
    import subprocess

    from fgo.worker.runner import Running
    running = Running()
    spec, real, later = (subprocess.Popen(["sleep", "60"], process_group=0) for _ in range(3))
    try:
        assert running.add("spec", spec, speculative=True) and running.add("real", real)
        assert running.kill_speculations() == 1
        assert spec.wait(timeout=10) == -signal.SIGKILL and real.poll() is None
        assert running.was_cancelled("spec") and not running.was_cancelled("real")
        assert running.reason("spec") == "the worker is closing"
        assert running.reason("real") == "cancelled by the head"
        assert running.add("later", later, speculative=True) and later.poll() is None
    finally:
        for p in (spec, real, later):
            p.kill()
            p.wait()
