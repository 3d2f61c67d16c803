"""Item 8 (issue 14, part 2; issue 24): two cores' worth of fgo against go build on one.

Single-core worker hosts emulated by experiments/hosts.py (network namespaces, 1 Gb/s tbf
links, own installations and stores, nothing shared with the head but the network); the head
(fgo, go build, the Dask scheduler) pinned to core 0. Against `go build -p 1` pinned to core 0:

- whole builds, cold (`-a`, empty GOCACHE, empty worker stores, a fresh cluster each run):
  the head compiles on its own core (`--local-slots 1`, what fgo's default gives a head
  pinned to one core) and one host on core 1 takes the overflow: `taskset -c 0 fgo build
  --scheduler ... --local-slots 1` against `taskset -c 0 go build -p 1`, for gin, etcd
  (GOPATH mode) and cmd/compile. (Before issue 24 the head had no slot and a second host
  sat on core 0 beside it.)
- the case fgo exists for (issue 25), in the same arrangement: aws-sdk-go's quick subset
  (its five largest services and their 229 dependencies, linked by a main package written
  into a GOPATH entry in front of Debian's, experiments/aws.subset_program) plain, with
  `--split-large` (the model's own choice) and with `--pipeline`: full run only.
- one giant package alone (its dependencies in GOCACHE, it not): split in two in the same
  arrangement, the leader on the head's slot (core 0) and its shard on the host (core 1)
  (`--split-large=0 --shards 2 --verify-splits off`, what a warm verification ledger does;
  before the head could lead, both ran on hosts on cores 0 and 1) against the stock compile
  (-c=1: one core) of `go build -p 1`: `cmd/compile/internal/ssa`, and aws-sdk-go's
  `service/ec2` (178k lines, full run only).

- the ceiling of all of these on this machine (experiments/interference.py): `go build -a
  -p 1` on core 0 alone against the same with another copy of it on core 1, for gin and etcd
  (results/interference.json; full run only);
- where each whole build's speedup went (experiments/gap.py), read again from its pair's go
  action graph and fgo report: go's own graph's ceiling on two slots, and how much longer
  the same compiles took on the head's slot and on the host (results/gap.json).

Sides alternate, PAIRS pairs each; speedup = go's wall / fgo's wall within a pair, the
median reported, efficiency = speedup / 2 (two cores). Every fgo binary (or archive) must be
byte-identical to the go side's of its pair: a plain go build into an empty GOCACHE of its
own that fgo never wrote to. Each fgo run's --report JSON and each go run's action graph are
kept in results/scaleout/ (what the simulator is validated against), with the CPU seconds of
the head's command tree, of the scheduler and of each host's processes, and (as root, with
Debian's acct) every process's CPU charged to its role (`cpu_by_role`, experiments/acct.py:
the head, go build, the shims, the cacheprog, each host's compiles and Python).

Results: results/scaleout.json; re-running one project replaces only its rows:
`.venv/bin/pytest experiments/test_8_scaleout.py --benchmark -k etcd`.
Needs root (network namespaces, tc); skipped with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from experiments import acct
from experiments import aws
from experiments import gap
from experiments import hosts as hostsmod
from experiments import interference
from experiments import lab as labmod
from experiments.lab import CORPUS, GOCODE, Project
from fgo import toolchain
from fgo.analysis import actiongraph

HEAD_CORE = 0
WHOLE_HOSTS = (1,)            # whole builds: the head's slot on core 0, one host on core 1
SPLIT_HOSTS = WHOLE_HOSTS     # a split in two: its leader on the head's slot, its shard there
CORES = 2                     # what fgo has, in both arrangements; go build has one
WHOLE_OPTS = ["--local-slots", "1"]
PAIRS = int(os.environ.get("FGO_SCALEOUT_PAIRS", "3"))  # fewer only to try the harness out
QUICK = {"gin": 1}            # the --quick subset: one pair of gin
TARGETS = {"etcd": 1.6, "ssa": 1.35, "aws": 1.8, "ec2": 1.6}
SSA = "cmd/compile/internal/ssa"
GIANTS = {  # one package compiled alone and split in two
    "ssa": Project("ssa", SSA, gopath=False, binary=False, note="split in two"),
    "ec2": Project("ec2", f"{aws.AWS}/service/ec2", gopath=True, binary=False,
                   note="split in two"),
}
# aws-sdk-go's subset built whole: plain, and with each of fgo's two ways to use more hosts
AWS_VARIANTS = {"aws": [], "aws --split-large": ["--split-large"],
                "aws --pipeline": ["--pipeline"]}
# the template GOCACHE holds the package's dependencies: go must read it as a plain directory
# (fgo's cacheprog would start from an empty local tier and rebuild, and split, all of them)
SPLIT_OPTS = ["--split-large=0", "--shards", "2", "--verify-splits", "off", "--no-shared-cache",
              *WHOLE_OPTS]
RESULTS = "scaleout"


@pytest.fixture(scope="module")
def hosts(lab, request):
    """Hosts on the cores the test names (indirect parametrization: pytest finishes one
    arrangement's tests and tears it down before it builds the next)."""
    why = hostsmod.unavailable()
    if why:
        pytest.skip(why)
    cores = request.param
    h = hostsmod.Hosts(cores=cores, workdir=lab.tmpdir("hosts"), head_core=HEAD_CORE,
                       hide=[GOCODE])
    with h:
        h.probe_link(len(cores) - 1)  # the host off the head's core
        yield h
    assert h.leftovers() == []  # namespaces, veths and bridge are gone


@dataclass
class Run:
    wall_s: float
    cpu_s: float               # user + sys of the command and everything it waited for
    load1: float | None


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
    """CMD pinned to the head's core; its wall and CPU seconds. A failure fails the run."""
    load = labmod.loadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(["taskset", "-c", str(HEAD_CORE), *cmd], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(round(wall, 3), round(cpu, 3), load[0] if load else None)


def output_name(p: Project) -> str:
    return p.name.replace("/", "_") + ("" if p.binary else ".a")


def go_side(lab, p: Project, cache: Path, extra: list[str], graph: Path) -> tuple[Run, Path, str]:
    """`go build -p 1` on the head's core into CACHE (empty, or SSA's dependencies only)."""
    out = lab.tmpdir("out")
    binary = out / output_name(p)
    args = ["build", "-p", "1", f"-debug-actiongraph={graph}", *extra, "-o", str(binary), p.target]
    run = timed([str(toolchain.go_binary()), *args], p.env(GOCACHE=str(cache)), p.source_dir())
    return run, binary, "taskset -c 0 go " + " ".join(args)


def fgo_side(lab, hosts, p: Project, cache: Path, extra: list[str], opts: list[str],
             report: Path) -> tuple[Run, Path, str, dict[str, float]]:
    """`fgo build` on the head's core with a fresh cluster of cold hosts; also the CPU
    seconds the scheduler and each host spent during the build."""
    out = lab.tmpdir("out")
    binary = out / output_name(p)
    head = lab.tmpdir("head")  # the head's own store (fallbacks, verification) and ledger
    env = p.env(GOCACHE=str(cache), FGO_STORE=str(head / "store"),
                FGO_LEDGER=str(head / "ledger.json"))
    # process accounting (where present) stays on until the cluster's processes have
    # exited: only then are they accounted
    with contextlib.ExitStack() as stack:
        accounting = None if acct.unavailable() else \
            stack.enter_context(acct.Accounting(head / "pacct"))
        with hosts.cluster() as cluster:
            args = ["build", "-q", "--scheduler", cluster.address, "--report", str(report),
                    *opts, str(p.source_dir()), "--", *extra, "-o", str(binary), p.target]
            host_pids = {f"host{h.index}": set(hostsmod.netns_pids(h.netns))
                         for h in hosts.hosts}
            scheduler = cluster.scheduler.pid
            already = acct.self_cpu([scheduler, *set().union(*host_pids.values())])
            cpu0 = cluster.cpu()
            run = timed([str(labmod.FGO), *args], env, p.source_dir())
            cpu: dict[str, Any] = {k: round(v - cpu0[k], 3) for k, v in cluster.cpu().items()}
    if accounting is not None:
        cpu["by_role"] = acct.breakdown(accounting.records(), os.getpid(), host_pids, scheduler,
                                        already)
    lab.drop(head)
    shown = " ".join(a if not a.startswith("tcp://") else "tcp://BRIDGE:PORT" for a in args)
    return run, binary, "taskset -c 0 fgo " + shown, cpu


def report_row(report: Path) -> dict[str, Any]:
    rep = json.loads(report.read_text())
    t = rep["totals"]
    split = [a for a in rep["actions"] if a["mode"] == "split"]
    return {"remote": t["remote"], "local": t["local"], "split": t["split"], "cached": t["cached"],
            "fallbacks": t["fallbacks"], "fallback_reasons": t["fallback_reasons"],
            "bytes_sent": t["bytes_sent"], "bytes_received": t["bytes_received"],
            "dispatch_median_ms": round(1e3 * t["dispatch_median_s"], 2) if t["dispatch_median_s"] else None,
            "verify_s": rep.get("verification", {}).get("seconds"),
            "head_peak_rss_mb": (rep.get("head") or {}).get("peak_rss_mb"),
            "workers_peak_rss_mb": rep.get("workers_peak_rss_mb"),
            "speculation": {k: v for k, v in (rep.get("speculation") or {}).items()
                            if k in ("started", "hits", "misses", "wasted_s", "head_start_s")},
            "split_actions": [{"package": a["package"], "duration_s": a["duration_s"],
                               "leader_on": ((a.get("split") or {}).get("leader") or {}).get("on"),
                               "leader": (a.get("split") or {}).get("leader"),
                               "shards": (a.get("split") or {}).get("shards")} for a in split]}


def rel(path: Path) -> str:
    return str(path.relative_to(labmod.REPO)) if path.is_relative_to(labmod.REPO) else str(path)


def measure(lab, hosts, name: str, p: Project, pairs: int, extra: list[str], opts: list[str],
            prepare_cache) -> list[dict[str, Any]]:
    """PAIRS alternating pairs (go first in even pairs); a row per run, saved after each pair
    (an interrupted run keeps its finished pairs). The identity of each pair's outputs is
    asserted after all rows are kept."""
    store = lab.results / RESULTS
    store.mkdir(parents=True, exist_ok=True)
    tag = name.replace("/", "_").replace(" --", "+")   # aws --pipeline: aws+pipeline
    rows, mismatched = [], []
    for i in range(pairs):
        outputs = {}
        for side in (("go", "fgo") if i % 2 == 0 else ("fgo", "go")):
            cache = prepare_cache()
            row: dict[str, Any] = {"project": name, "pair": i, "side": side}
            if side == "go":
                graph = store / f"{tag}-pair{i}-go.actiongraph.json"
                run, binary, cmd = go_side(lab, p, cache, extra, graph)
                row.update(actiongraph=rel(graph))
            else:
                report = store / f"{tag}-pair{i}-fgo.report.json"
                run, binary, cmd, cpu = fgo_side(lab, hosts, p, cache, extra, opts, report)
                row.update(scheduler_cpu_s=cpu.pop("scheduler"),
                           cpu_by_role=cpu.pop("by_role", None), hosts_cpu_s=cpu,
                           report=rel(report), **report_row(report))
                # fail at once: a run on the head alone measures nothing about the hosts
                # (a split is required where one is forced; bare --split-large lets the model
                # choose, and the row says what it chose)
                why = hostsmod.measured_nothing(
                    row, split_wanted=any(o.startswith("--split-large=") for o in opts))
                assert not why, f"{name} pair {i}: {'; '.join(why)} ({rel(report)})"
            lab.drop(cache)
            outputs[side] = toolchain.file_sha256(binary)
            lab.drop(binary.parent)
            row.update(wall_s=run.wall_s, cpu_s=run.cpu_s, load1_before=run.load1, command=cmd,
                       date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            rows.append(row)
        if outputs["go"] != outputs["fgo"]:
            mismatched.append(i)
        save(lab, hosts, name, [{**r, "identical": r["pair"] not in mismatched} for r in rows])
    for r in rows:
        r["identical"] = r["pair"] not in mismatched
    return rows


def summary(name: str, rows: list[dict[str, Any]], what: str) -> dict[str, Any]:
    pairs: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault(r["pair"], {})[r["side"]] = r
    speedups = [round(p["go"]["wall_s"] / p["fgo"]["wall_s"], 3) for p in pairs.values()]
    median = statistics.median(speedups)
    target = TARGETS.get(name.split(" ")[0])  # aws --pipeline: aws's
    return {"project": name, "side": "summary", "what": what, "pairs": len(speedups),
            "speedups": speedups, "speedup_median": round(median, 3),
            "efficiency": round(median / CORES, 3),
            "go_wall_median_s": round(statistics.median(p["go"]["wall_s"] for p in pairs.values()), 3),
            "fgo_wall_median_s": round(statistics.median(p["fgo"]["wall_s"] for p in pairs.values()), 3),
            "go_cpu_median_s": round(statistics.median(p["go"]["cpu_s"] for p in pairs.values()), 3),
            "fgo_head_cpu_median_s": round(statistics.median(p["fgo"]["cpu_s"] for p in pairs.values()), 3),
            "load1_max": max((r["load1_before"] or 0) for r in rows),
            "target": target, "met": None if target is None else median >= target,
            "identical": all(r["identical"] for r in rows)}


def save(lab, hosts, name: str, rows: list[dict[str, Any]]) -> None:
    """results/scaleout.json: this project's rows replaced, the others' kept (each row names
    its own date, command and the pytest session that made it)."""
    path = lab.results / f"{RESULTS}.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    kept = [r for r in old if r.get("project") != name]
    rows = [{**r, "session": f"FGO_SCALEOUT_PAIRS={PAIRS} {lab.command}"} for r in rows]
    lab.save(RESULTS, kept + rows, what="measured: fgo build with two cores (whole builds: the "
             "head's slot and one emulated single-core host; splits: the leader on the head's "
             "slot, its shard on the host; netns, 1 Gb/s "
             "tbf links, no shared filesystem) vs go build -p 1 on one core",
             hosts={"whole": list(WHOLE_HOSTS), "split": list(SPLIT_HOSTS), "head_core": HEAD_CORE,
                    "rate": hostsmod.RATE,
                    "link_probe": hosts.link_probe}, pairs=PAIRS)


def pairs_for(lab, name: str) -> int:
    return QUICK.get(name, 0) if lab.quick else PAIRS


@pytest.mark.parametrize("hosts", [WHOLE_HOSTS], indirect=True, ids=["head+1host"])
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.quick] if n in QUICK else [])
                                  for n in ("gin", "etcd", "cmd/compile")])
def test_scaleout(benchmark, lab, hosts, name: str) -> None:
    lab.require(name)
    p = CORPUS[name]
    rows = benchmark.pedantic(measure, args=(lab, hosts, name, p, pairs_for(lab, name), ["-a"],
                                             WHOLE_OPTS,
                                             lambda: lab.tmpdir("gocache")),
                              rounds=1, iterations=1)
    s = summary(name, rows, "cold -a, empty GOCACHE and worker stores; the head's slot on "
                "core 0 + 1 host on core 1")
    save(lab, hosts, name, [*rows, s])
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, list)})
    assert s["identical"], [r for r in rows if not r["identical"]]
    fgo_runs = [r for r in rows if r["side"] == "fgo"]
    assert all(r["remote"] > 0 for r in fgo_runs), "nothing ran on the emulated hosts"


def aws_subset(lab) -> Project:
    """The aws-sdk-go quick subset as one main package (experiments/aws.subset_program), in
    a GOPATH entry of this session's: both sides of every pair build the same source paths."""
    lab.require("aws-sdk-go", aws.PROJECT)
    root = aws.subset_program(lab.tmpdir("aws-overlay"))
    return Project("aws", aws.SUBSET_MAIN, gopath=True, binary=True, overlay=root,
                   note="aws-sdk-go's five largest services and their dependencies")


@pytest.mark.parametrize("hosts", [WHOLE_HOSTS], indirect=True, ids=["head+1host"])
@pytest.mark.parametrize("variant", list(AWS_VARIANTS))
def test_scaleout_aws(benchmark, lab, hosts, variant: str) -> None:
    if lab.quick:
        pytest.skip("not part of --quick: about 100 s a build on one core")
    p = aws_subset(lab)
    opts = [*WHOLE_OPTS, *AWS_VARIANTS[variant]]
    rows = benchmark.pedantic(measure, args=(lab, hosts, variant, p, PAIRS, ["-a"], opts,
                                             lambda: lab.tmpdir("gocache")),
                              rounds=1, iterations=1)
    s = summary(variant, rows, "cold -a, empty GOCACHE and worker stores; the head's slot on "
                "core 0 + 1 host on core 1; " + (" ".join(AWS_VARIANTS[variant]) or "plain"))
    save(lab, hosts, variant, [*rows, s])
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, list)})
    assert s["identical"], [r for r in rows if not r["identical"]]
    fgo_runs = [r for r in rows if r["side"] == "fgo"]
    assert all(r["remote"] > 0 for r in fgo_runs), "nothing ran on the emulated hosts"
    if "--pipeline" in opts:
        assert all(r["speculation"].get("started") for r in fgo_runs), "nothing was pipelined"


def copy_of(lab, template: Path) -> Path:
    """A fresh GOCACHE holding TEMPLATE's entries (a giant's dependencies)."""
    copy = lab.tmpdir("gocache")
    shutil.rmtree(copy)
    shutil.copytree(template, copy, symlinks=True)
    return copy


def dependencies(lab, p: Project) -> Path:
    """A GOCACHE holding P's dependencies (not P): the template each run copies."""
    cache = lab.tmpdir(f"{p.name}-deps")
    env = p.env(GOCACHE=str(cache))
    deps = subprocess.run([str(toolchain.go_binary()), "list", "-deps", p.target], env=env,
                          cwd=p.source_dir(), capture_output=True, text=True,
                          check=True).stdout.split()
    built = subprocess.run([str(toolchain.go_binary()), "build",
                            *[d for d in deps if d != p.target]],
                           env=env, cwd=p.source_dir(), capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    return cache


@pytest.mark.parametrize("hosts", [SPLIT_HOSTS], indirect=True, ids=["head+1host"])
@pytest.mark.parametrize("name", list(GIANTS))
def test_giant_split(benchmark, lab, hosts, name: str) -> None:
    if lab.quick:
        pytest.skip("not part of --quick")
    ok, why = labmod.fgo_available("build", ["--split-large", "--verify-splits"])
    if not ok:
        pytest.skip(why)
    p = GIANTS[name]
    lab.require(name, p.source_dir())
    template = dependencies(lab, p)
    try:
        rows = benchmark.pedantic(measure, args=(lab, hosts, name, p, PAIRS, [],
                                                 SPLIT_OPTS, lambda: copy_of(lab, template)),
                                  rounds=1, iterations=1)
    finally:
        lab.drop(template)
    s = summary(name, rows, f"{p.target} alone, split K=2: leader on the head's slot (core 0), "
                "shard on 1 host (core 1) vs stock -c=1")
    save(lab, hosts, name, [*rows, s])
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, list)})
    assert s["identical"], [r for r in rows if not r["identical"]]
    splits = [a for r in rows if r["side"] == "fgo" for a in r["split_actions"]]
    assert len(splits) == PAIRS and all(a["package"] == p.target for a in splits), splits
    assert all(a["leader_on"] == "head" for a in splits), splits  # what this row measures


def interference_pairs(lab, p: Project, prepare_cache, extra: list[str], beside
                       ) -> list[dict[str, Any]]:
    """PAIRS alternating pairs of P's `go build -p 1` on core 0: alone, and inside BESIDE()
    (a context yielding what runs on core 1); each in the GOCACHE PREPARE_CACHE() gives."""
    rows = []
    for i in range(PAIRS):
        for side in (("alone", "beside") if i % 2 == 0 else ("beside", "alone")):
            cache = prepare_cache()
            graph = lab.tmpdir("graph") / "go.actiongraph.json"
            with beside() if side == "beside" else contextlib.nullcontext("nothing") as how:
                go, binary, cmd = go_side(lab, p, cache, extra, graph)
            for d in (cache, graph.parent, binary.parent):
                lab.drop(d)
            rows.append({"project": p.name, "pair": i, "side": side, "wall_s": go.wall_s,
                         "cpu_s": go.cpu_s, "load1_before": go.load1, "command": cmd,
                         "core_1": how, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return rows


def save_interference(benchmark, lab, name: str, rows: list[dict[str, Any]]) -> None:
    """results/interference.json: NAME's rows and summary replaced, the others' kept."""
    s = interference.summary(name, rows)
    path = lab.results / f"{interference.RESULTS}.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    lab.save(interference.RESULTS, [r for r in old if r.get("project") != name] + rows + [s],
             what="measured: go build -a -p 1 on core 0 alone, and with another copy of it on "
             "core 1 (ec2: go build -p 1 of the package alone, its dependencies cached, and its "
             "stock compile in a loop on core 1); the ceiling of two cores over one is "
             "2 / slowdown", pairs=PAIRS)
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, list)})
    assert s["pairs"] == PAIRS and all(r["wall_s"] > 0 for r in rows)


@pytest.mark.parametrize("name", ["gin", "etcd"])
def test_core_interference(benchmark, lab, name: str) -> None:
    """The ceiling of the measurements above (experiments/interference.py): `go build -a -p
    1` on the head's core alone, against the same with another copy of it on core 1."""
    if lab.quick:
        pytest.skip("not part of --quick")
    lab.require(name)
    p = CORPUS[name]
    rows = benchmark.pedantic(interference_pairs, args=(
        lab, p, lambda: lab.tmpdir("gocache"), ["-a"],
        lambda: interference.beside(1, p.target, p.binary, p.env(), p.source_dir())),
        rounds=1, iterations=1)
    save_interference(benchmark, lab, name, rows)


@pytest.mark.parametrize("name", ["ec2"])
def test_giant_interference(benchmark, lab, name: str) -> None:
    """The ceiling of the giant split above: its two processes are two giant compiles at
    once. `go build -p 1` of the package alone (its dependencies cached, as in its split
    pairs) on core 0, alone and with the package's own stock compile in a loop on core 1."""
    if lab.quick:
        pytest.skip("not part of --quick")
    from fgo.compiler import harness
    p = GIANTS[name]
    lab.require(name, p.source_dir())
    template = dependencies(lab, p)
    work = lab.tmpdir(f"{name}-compile")
    with mock.patch.dict(os.environ, p.env(GOCACHE=str(template)), clear=True):
        argv, cwd = harness.compile_command(p.source_dir(), p.target, work)  # go's own env
    argv = [argv[0], "-c=1", *argv[1:]]
    try:
        rows = benchmark.pedantic(interference_pairs, args=(
            lab, p, lambda: copy_of(lab, template), [],
            lambda: interference.compile_beside(1, argv, cwd, p.env(GOCACHE=str(template)))),
            rounds=1, iterations=1)
    finally:
        lab.drop(template)
        lab.drop(work)
    save_interference(benchmark, lab, name, rows)


@pytest.mark.quick
def test_where_the_speedup_goes(lab) -> None:
    """Each whole-build pair of results/scaleout.json read again (experiments/gap.py): its
    speedup against what go's own graph allows on two slots, and how much longer the same
    compiles took on the head's slot and on the host than in go's run."""
    path = lab.results / f"{RESULTS}.json"
    srows = json.loads(path.read_text())["rows"] if path.exists() else []
    go_runs = {(r["project"], r["pair"]): r for r in srows if r.get("side") == "go"}
    rows = []
    for r in srows:
        go = go_runs.get((r["project"], r.get("pair")))
        if r.get("side") != "fgo" or r.get("split") or not r.get("report") or go is None \
                or not go.get("actiongraph"):
            continue
        graph = actiongraph.load(labmod.REPO / go["actiongraph"])
        report = json.loads((labmod.REPO / r["report"]).read_text())
        rows.append(gap.gap_row(r["project"], r["pair"], graph, report, go["wall_s"],
                                r["wall_s"], r.get("cpu_by_role")))
    if not rows:
        pytest.skip("no whole-build pair in results/scaleout.json")
    lab.save(gap.RESULTS, rows, what="read from experiment 8's pairs: the measured speedup, "
             "what go's own graph allows on two slots, and the compiles' inflation by place")
    assert all(r["graph_ceiling"] >= 1.0 and r["slot_compiles"] + r["host_compiles"] > 0
               for r in rows)
