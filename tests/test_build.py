"""fgo build end to end: real go, real Dask (embedded and dask-scheduler/dask-worker)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (GOPATH_ENV, RealCluster, go_build, oracle_build, require_gopath, run_fgo,
                      sha, write_tree)
from fgo.head import policy


def report_of(path: Path) -> dict:
    return json.loads(path.read_text())


def fgo_build(project: Path, *go_args: str, opts: tuple[str, ...] = (), report: Path | None = None,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = report or project.parent / f"report-{time.monotonic_ns()}.json"
    proc = run_fgo("build", "--report", str(report), *opts, str(project), "--", *go_args,
                   env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc, report_of(report)


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold-a"])
def test_embedded_cluster_binary_identical(hello: Path, cold: bool) -> None:
    extra = ("-a",) if cold else ()
    _, rep = fgo_build(hello, *extra, "-o", str(hello / "fgo.bin"))
    plain = oracle_build(hello, *extra, "-o", str(hello / "go.bin"))
    assert plain.returncode == 0, plain.stderr
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")
    t = rep["totals"]
    assert t["remote"] >= 3 if cold else t["remote"] + t["cached"] >= 3
    if cold:  # -a: every package compiled by fgo, nearly all remotely
        assert t["remote"] > 20 and t["cached"] == 0
        assert t["bytes_sent"] == 0  # in place: the embedded workers read the head's files
    for a in rep["actions"]:
        if a["mode"] == "remote":
            assert a["worker"] and a["output_sha256"] and a["bytes_out"] > 0


def test_real_cluster_binary_identical(hello: Path, real_cluster) -> None:
    _, rep = fgo_build(hello, "-a", "-o", str(hello / "fgo.bin"),
                       opts=("--scheduler", real_cluster.address))
    assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")
    t = rep["totals"]
    assert rep["cluster"]["workers"] == 2 and rep["cluster"]["threads"] == 2
    assert t["remote"] > 20 and t["fallbacks"] == 0, t["fallback_reasons"]
    workers = {a["worker"] for a in rep["actions"] if a["mode"] == "remote"}
    assert len(workers) == 2  # both workers took compiles
    # over fgo's own channel to each (fgo.cluster.channel), from the handshake on
    assert rep["cluster"]["channels"] == sorted(workers) and not rep["cluster"]["channels_failed"]
    # each worker has its own store: every blob crossed at most once to each
    assert t["bytes_sent"] <= 2 * t["unique_input_bytes"]
    # the second build finds the stores warm: only what lands on the other worker this
    # time (placement prefers a free thread to locality) and the new importcfgs travel;
    # its compiles over Dask's comms, as where a channel cannot be had
    _, rep2 = fgo_build(hello, "-a", "-o", str(hello / "fgo2.bin"),
                        opts=("--scheduler", real_cluster.address), env={"FGO_CHANNEL": "off"})
    t2 = rep2["totals"]
    assert not rep2["cluster"]["channels"] and t2["remote"] > 20
    assert t2["bytes_sent"] < t["bytes_sent"] and t2["bytes_sent"] <= 2 * t2["unique_input_bytes"]
    assert sha(hello / "fgo2.bin") == sha(hello / "go.bin")
    # the build left the scheduler's own housekeeping quiet (Dask's task machinery as it was)
    client = real_cluster.client()
    try:
        callbacks = client.run_on_scheduler(lambda dask_scheduler: {
            n: pc.callback_time for n, pc in dask_scheduler.periodic_callbacks.items()})
    finally:
        client.close()
    assert (callbacks["tick"], callbacks["monitor"]) == (1000, 5000)


def test_noop_rebuild_and_one_file_edit(hello: Path) -> None:
    fgo_build(hello, "-o", str(hello / "a.bin"))
    _, noop = fgo_build(hello, "-o", str(hello / "a.bin"))
    assert noop["totals"]["remote"] == 0 and noop["totals"]["local"] == 0
    assert noop["totals"]["cached"] > 0
    greet = hello / "greet" / "greet.go"
    greet.write_text(greet.read_text().replace('", "', '"; "'))
    _, edit = fgo_build(hello, "-o", str(hello / "a.bin"))
    compiled = sorted(a["package"] for a in edit["actions"] if a["mode"] != "cached")
    assert compiled == ["example.com/hello", "example.com/hello/greet"]
    assert oracle_build(hello, "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "a.bin") == sha(hello / "go.bin")


def test_compile_error_shown_exactly_as_go_build(hello: Path) -> None:
    (hello / "greet" / "bad.go").write_text("package greet\n\nfunc Bad() int { return \"x\" }\n")
    plain = oracle_build(hello, "-o", str(hello / "x.bin"))  # its own GOCACHE
    mine = run_fgo("build", "-q", str(hello), "--", "-o", str(hello / "x.bin"))
    assert plain.returncode == 1
    assert mine.returncode == plain.returncode
    assert mine.stderr == plain.stderr
    assert "cannot use \"x\"" in mine.stderr and "Traceback" not in mine.stderr


def test_compile_error_on_a_worker_shown_exactly_as_go_build(hello: Path, real_cluster,
                                                             tmp_path: Path) -> None:
    """Every compile on the workers (--local-slots 0): the user's error fails there first,
    then in go's own run, which shows it exactly as plain go build does, with its exit
    status; no worker is blamed for it (only a failure go's run then built blames one)."""
    (hello / "greet" / "bad.go").write_text("package greet\n\nfunc Bad() int { return \"x\" }\n")
    plain = oracle_build(hello, "-o", str(hello / "x.bin"))  # its own GOCACHE
    report = tmp_path / "r.json"
    mine = run_fgo("build", "-q", "--report", str(report), "--scheduler", real_cluster.address,
                   "--local-slots", "0", str(hello), "--", "-o", str(hello / "x.bin"))
    assert plain.returncode == 1
    assert mine.returncode == plain.returncode and mine.stderr == plain.stderr, mine.stderr
    rep = json.loads(report.read_text())
    assert any(why.startswith(policy.FAILED_ELSEWHERE)
               for why in rep["totals"]["fallback_reasons"]), rep["totals"]  # it ran remote
    assert rep["cluster"]["host_faults"] == {} and rep["cluster"]["left_out_failing"] == []


def test_shim_answers_version_queries_like_the_tool() -> None:
    from fgo import toolchain
    from fgo.head.shim import shim_path
    tool = str(toolchain.tool_path("compile"))
    direct = subprocess.run([tool, "-V=full"], capture_output=True, text=True)
    shimmed = subprocess.run([str(shim_path()), tool, "-V=full"], capture_output=True, text=True,
                             env={**os.environ, "FGO_SOCKET": "/nonexistent/socket"})
    assert shimmed.stdout == direct.stdout and shimmed.returncode == 0


@pytest.mark.parametrize("args,needle", [
    (["build", "/nonexistent/project"], "does not exist"),
    (["build", "/"], "not a Go project"),
    (["build", "--scheduler", "tcp://127.0.0.1:9", "."], "cannot reach scheduler"),
    (["build", "--workers", "0", "."], "--workers"),
    (["build", "--no-such-flag", "."], "no-such-flag"),
    (["build", ".", "--", "-toolexec", "x"], "toolexec"),
    (["build", "--tls-ca-file", "/nope", "."], "no such file: /nope"),
    (["build", "--tls-ca-file", __file__, "."], "TLS needs all of"),
    (["build", "--shards", "0", "."], "--shards"),
    (["build", "--local-slots", "-1", "."], "--local-slots"),
    (["build", "--verify-rate", "2", "."], "--verify-rate"),
])
def test_bad_input_one_line_error(hello: Path, args: list[str], needle: str) -> None:
    start = time.monotonic()
    proc = run_fgo(*args, cwd=hello, timeout=30)
    assert time.monotonic() - start < 10
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr


def test_check_compares_with_plain_build(hello: Path) -> None:
    """--check: every archive (the module's and the standard library's) and the binary,
    each by sha256 against one plain go build into an empty GOCACHE."""
    _, rep = fgo_build(hello, "-o", str(hello / "c.bin"), opts=("--check",))
    kinds = {c["what"] for c in rep["checks"]}
    assert kinds == {"archive", "binary"} and all(c["ok"] for c in rep["checks"])
    archives = {c["name"] for c in rep["checks"] if c["what"] == "archive"}
    assert {"example.com/hello", "example.com/hello/greet", "runtime", "fmt"} <= archives
    assert len(archives) > 40
    assert all(c["detail"].startswith("sha256 ") for c in rep["checks"])


@pytest.mark.slow
def test_gin_gopath_identical(tmp_path: Path) -> None:
    gin = require_gopath("github.com/gin-gonic/gin", "golang-github-gin-gonic-gin-dev")
    work = write_tree(tmp_path / "ginapp", {"main.go": (
        'package main\n\nimport "github.com/gin-gonic/gin"\n\n'
        'func main() { r := gin.Default(); _ = r }\n')})
    env = {**GOPATH_ENV}
    assert gin.is_dir()
    _, rep = fgo_build(work, "-o", str(work / "fgo.bin"), env=env)
    plain = oracle_build(work, "-o", str(work / "go.bin"), env={**os.environ, **env})
    assert plain.returncode == 0, plain.stderr
    assert sha(work / "fgo.bin") == sha(work / "go.bin")
    assert rep["totals"]["remote"] + rep["totals"]["cached"] > 10


def test_unreachable_scheduler_with_fallback_local(hello: Path) -> None:
    report = hello.parent / "fallback.json"
    proc = run_fgo("build", "--fallback-local", "--report", str(report), "--scheduler",
                   "tcp://127.0.0.1:9", str(hello), "--", "-o", str(hello / "f.bin"))
    assert proc.returncode == 0, proc.stderr
    assert "building locally" in proc.stderr
    assert oracle_build(hello, "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "f.bin") == sha(hello / "go.bin")
    t = report_of(report)["totals"]
    assert t["remote"] == 0 and set(t["fallback_reasons"]) <= {"scheduler unreachable"}


def test_rebuild_starts_go_build_while_connecting(hello: Path, tmp_path: Path) -> None:
    """A build of a target built on the same scheduler before starts go build at once and
    connects when something needs the cluster, sized as that build found it: its compiles
    still reach the workers, its binary is the oracle's; a no-op never connects, an edit on
    the head's slots defers its puts to the next build that connects. The scheduler gone:
    one line and a non-zero exit (go build stopped), or with --fallback-local a local build
    that is the oracle's too."""
    # stores and a GOCACHE of its own: no entry of another test's in the cluster tier (a
    # get of an entry fetched from the workers checks the cluster's revocations: it connects)
    cluster = RealCluster(tmp_path / "cluster", workers=2,
                          stores={i: tmp_path / f"store{i}" for i in range(2)})
    try:
        _rebuilds_on(cluster, hello, {"GOCACHE": str(tmp_path / "gocache")})
    finally:
        cluster.close()


def _rebuilds_on(cluster: RealCluster, hello: Path, own: dict[str, str]) -> None:
    args = ("-a", "-o", str(hello / "fgo.bin"))
    opts = ("--scheduler", cluster.address)
    # the first build connects first, and shares nothing: the cluster tier stays empty
    _, first = fgo_build(hello, *args, opts=(*opts, "--no-shared-cache"), env=own)
    assert not first["cluster"]["connected_beside_go"]
    assert not first["cluster"]["go_before_head"]
    _, again = fgo_build(hello, *args, opts=opts, env=own)
    # ... and before the head has built what serves its shim: go's first compiles wait in
    # the shim socket's backlog, and still reach the workers
    assert again["cluster"]["connected_beside_go"] and again["cluster"]["go_before_head"]
    assert again["cluster"]["workers"] == 2
    # a compile for the workers waits for the connect: none ran beside the head's slots
    assert again["totals"]["remote"] > 10 and again["totals"]["fallbacks"] == 0, again["totals"]
    assert oracle_build(hello, "-a", "-o", str(hello / "go.bin")).returncode == 0
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")
    # a no-op needs nothing of the cluster (every get a local hit, nothing compiled or put):
    # it never connects, and does not wait for it
    noop_args = ("-o", str(hello / "fgo.bin"))
    _, noop = fgo_build(hello, *noop_args, opts=opts, env=own)
    assert noop["cluster"]["not_waited_for"], noop["cluster"]
    assert noop["totals"]["remote"] == noop["totals"]["local"] == 0, noop["totals"]
    assert noop["shared_cache"]["remote"] == "unused" and noop["shared_cache"]["puts"] == 0
    # an edit on the warm cache (the head's slots, a user's default): compiled there at
    # once, its puts kept for the next build that connects, and then published by it
    (hello / "greet" / "extra.go").write_text("package greet\n\nfunc Extra() int { return 7 }\n")
    _, edit = fgo_build(hello, *noop_args, opts=(*opts, "--local-slots", "2"), env=own)
    assert edit["cluster"]["not_waited_for"] and edit["totals"]["local"] >= 1, edit["totals"]
    assert 1 <= edit["shared_cache"]["deferred"] <= edit["shared_cache"]["puts"]
    assert oracle_build(hello, "-o", str(hello / "go-edit.bin")).returncode == 0
    assert sha(hello / "fgo.bin") == sha(hello / "go-edit.bin")
    _, later = fgo_build(hello, *args, opts=opts, env=own)  # -a: its workers' compiles connect
    assert later["shared_cache"]["published_deferred"] == edit["shared_cache"]["deferred"]
    (hello / "greet" / "extra.go").unlink()
    cluster.close()
    started = time.monotonic()
    gone = run_fgo("build", *opts, str(hello), "--", *args, timeout=120,
                   env={**os.environ, **own})
    took = time.monotonic() - started
    assert gone.returncode != 0, gone.stderr
    assert [line for line in gone.stderr.splitlines() if "cannot reach" in line], gone.stderr
    assert "Traceback" not in gone.stderr
    assert took < 60, f"{took:.1f} s to say so: {gone.stderr}"
    (hello / "fgo.bin").unlink()
    _, local = fgo_build(hello, *args, opts=("--fallback-local", *opts), env=own)
    assert local["totals"]["remote"] == 0, local["totals"]
    assert sha(hello / "fgo.bin") == sha(hello / "go.bin")


def test_plain_go_build_reuses_fgos_cache(tmp_path: Path) -> None:
    """fgo and go build share one cache: after fgo build, plain go build compiles nothing,
    cgo packages included (go asks `gcc -###` through -toolexec for their cache keys)."""
    app = write_tree(tmp_path / "netapp", {
        "go.mod": "module example.com/netapp\n\ngo 1.22\n",
        "main.go": 'package main\n\nimport (\n\t"fmt"\n\t"net"\n)\n\n'
                   'func main() { fmt.Println(net.ParseIP("127.0.0.1")) }\n'})
    env = {"GOCACHE": str(tmp_path / "gocache"), "CGO_ENABLED": "1"}
    fgo_build(app, "-o", str(app / "fgo.bin"), env=env)
    again = go_build(app, "-x", "-o", str(app / "go.bin"), env={**os.environ, **env})
    assert again.returncode == 0, again.stderr
    compiled = [line for line in again.stderr.splitlines() if "/compile " in line]
    assert not compiled, compiled[:3]
    assert sha(app / "fgo.bin") == sha(app / "go.bin")  # the reuse; correctness is below
    assert oracle_build(app, "-o", str(app / "oracle.bin"),
                        env={**os.environ, "CGO_ENABLED": "1"}).returncode == 0
    assert sha(app / "fgo.bin") == sha(app / "oracle.bin")
