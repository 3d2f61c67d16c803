"""Item 9: what fgo costs on one machine (measured, not simulated).

What a user would run instead is go build with its defaults; fgo is held to it with its own
defaults (local slots = the head's cores, the embedded cluster only for what needs it). For
each project and load, PAIRS pairs, the two sides alternating (go first in even pairs):
`go build -a` into an empty GOCACHE against `fgo build -a` with an empty GOCACHE and store;
the ratio fgo/go per pair, and the median. Then no-op rebuilds, each side on its own warm
cache, alternating: fgo's extra seconds. Loads: quiet (nothing else started), and loaded:
another build beside it (lab.competing_load: `go build -a -p 1 std` in a loop pinned to one
core), as on a shared build machine. From each fgo report: the head's CPU and peak memory.
Finally one cold fgo build on a cluster of `dask scheduler` + 2 `dask worker` processes over
TCP on 127.0.0.1 (--local-slots 0: every compile remote): its median dispatch; then, on that
cluster, the rebuilds a developer runs all day against go's own: no-ops, and a file added to
a copy of the package (fgo with its default local slots), alternating pairs; and the same on
a second head, whose first build fetched the first head's entries from the cluster tier
(workers made them: go may be given one at once only while the head knows the cluster's
revocations, which the scheduler's beacon tells it, fgo.cluster.beacon).

And one cold build on the embedded cluster's workers, every compile sent to them (--workers 2
--local-slots 0): its median dispatch.

Targets (issue 24): fgo/go <= 1.03, quiet and loaded; no-op within go's + 0.3 s; dispatch
<= 10 ms over TCP, <= 5 ms to an embedded worker. They are recorded as met or not, not asserted: this machine is shared.
Asserted: every fgo build's outputs are go's (the binary's sha256, or every package's
content ID, against the go side of the same pair, a plain go build into its own empty
GOCACHE). Results: results/overhead.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from experiments import acct, kernel_time
from experiments import lab as labmod
from fgo import toolchain, wire
from fgo.analysis import actiongraph, makespan
from fgo.cache.store import share_beside
from fgo.compilecall import CompileCall
from experiments.lab import CORPUS

# project -> pairs: gin's cold build is 16-18 s on a quiet machine here, and pairs of the
# same two builds move by 5% (3 pairs of 7d7f5b8: 1.050, 1.051, 0.977)
PROJECTS = {"gin": 5, "etcd": 5}
LOADS = ("quiet", "loaded")
QUICK = {("gin", "quiet"): 1}   # --quick (CI): one pair proves the harness (the model fits
                                # builds with remote compiles: experiment 8 and the TCP row)
BIN = Path(sys.executable).parent


def go_side(lab, name: str, cache: Path, out: Path, cold: bool, tag: str = "go",
            project: labmod.Project | None = None) -> dict:
    p = project or CORPUS[name]
    graph = lab.raw / f"overhead-{name.replace('/', '_')}-{tag}.actiongraph.json"
    cmd = [str(toolchain.go_binary()), "build", f"-debug-actiongraph={graph}",
           *(["-a"] if cold else []), *p.build_args(out / "go")]
    (out / "go").mkdir(exist_ok=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=p.env(GOCACHE=str(cache)), cwd=out, capture_output=True,
                          text=True, timeout=1800)
    wall = time.perf_counter() - t
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr[-2000:]}"
    ids = {n["Package"]: n["BuildID"].split("/")[-1] for n in json.loads(graph.read_text())
           if n.get("Mode") == "build" and n.get("BuildID") and n.get("Package")}
    return {"wall_s": round(wall, 3), "ids": ids, "binary": _binary(out / "go", name),
            "graph": str(graph), "command": " ".join(cmd)}


def fgo_side(lab, name: str, cache: Path, store: Path, out: Path, cold: bool,
             scheduler: str | None = None, tag: str = "fgo",
             project: labmod.Project | None = None, remote_only: bool = True,
             flags: tuple[str, ...] = (), fgo_cache: Path | None = None,
             extra_env: dict[str, str] | None = None) -> dict:
    """fgo build of NAME (or PROJECT) with FLAGS; with SCHEDULER, every compile remote unless
    not REMOTE_ONLY (then fgo's default local slots); FGO_CACHE: fgo's own cache (a new
    install's: empty), else the machine's; EXTRA_ENV on top of the project's."""
    p = project or CORPUS[name]
    report = lab.raw / f"overhead-{name.replace('/', '_')}-{tag}.report.json"
    where = ["--scheduler", scheduler] if scheduler else []
    if scheduler and remote_only:
        where += ["--local-slots", "0"]
    args = ["build", *where, *flags, "--report", str(report), str(p.source_dir()), "--",
            *(["-a"] if cold else []), *p.build_args(out / "fgo")]
    (out / "fgo").mkdir(exist_ok=True)
    env = p.env(GOCACHE=str(cache), FGO_STORE=str(store), FGO_LEDGER=str(out / "ledger.json"))
    env.pop("FGO_LOCAL_SLOTS", None)  # fgo's defaults, whatever the test session set
    if fgo_cache is not None:
        env["FGO_CACHE_DIR"] = str(fgo_cache)
    env.update(extra_env or {})
    wall, proc = labmod.run_fgo(args, env, cwd=out)
    assert proc.returncode == 0, f"fgo {' '.join(args)}: {proc.stderr[-2000:]}"
    rep = json.loads(report.read_text())
    ids = {a["package"]: a["build_id"].split("/")[-1] for a in rep["actions"]
           if a.get("tool") == "compile" and a.get("build_id")}
    return {"wall_s": round(wall, 3), "ids": ids, "binary": _binary(out / "fgo", name),
            "remote": rep["totals"]["remote"], "local": rep["totals"]["local"],
            "channels": len(rep.get("cluster", {}).get("channels") or []),
            "bytes_sent": rep["totals"].get("bytes_sent"),
            "bytes_from_workers_goroot": rep["totals"].get("bytes_from_workers_goroot", 0),
            "slot": rep["totals"].get("slot", 0), "by_go": rep["totals"].get("by_go", 0),
            "dispatch_median_ms": _ms(rep["totals"].get("dispatch_median_s")),
            "head": rep.get("head"), "workers_peak_rss_mb": rep.get("workers_peak_rss_mb"),
            "report": str(report), "command": "fgo " + " ".join(args)}


def _binary(out: Path, name: str) -> str | None:
    path = out / name.replace("/", "_")
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 2)


def same_outputs(go: dict, fgo: dict) -> None:
    """FGO built what GO (a plain go build, its own empty GOCACHE) built."""
    if go["binary"] or fgo["binary"]:
        assert go["binary"] == fgo["binary"], "fgo's binary differs from go build's"
    common = set(go["ids"]) & set(fgo["ids"])
    differ = sorted(p for p in common if go["ids"][p] != fgo["ids"][p])
    assert len(common) > 0.9 * len(go["ids"]) and not differ, (len(common), differ[:5])


def measure(lab, name: str, pairs: int, load: str) -> list[dict]:
    with labmod.competing_load() if load == "loaded" else contextlib.nullcontext("") as how:
        return _pairs(lab, name, pairs, load, how)


def _pairs(lab, name: str, pairs: int, load: str, how: str,
           project: labmod.Project | None = None, flags: tuple[str, ...] = (),
           new_install: bool = False) -> list[dict]:
    """PAIRS alternating pairs of NAME (or PROJECT), go build against fgo build with FLAGS;
    NEW_INSTALL: each pair's fgo with an empty cache of its own (no patched compiler)."""
    rows = []
    for i in range(pairs):
        caches = {side: lab.tmpdir(f"gocache-{side}") for side in ("go", "fgo")}
        store, out = lab.tmpdir("store"), lab.tmpdir("out")
        fgo_cache = lab.tmpdir("fgo-cache") if new_install else None
        try:
            cold: dict[str, dict] = {}
            noop: dict[str, dict] = {}
            for phase, results in (("cold", cold), ("noop", noop)):
                for side in (("go", "fgo") if i % 2 == 0 else ("fgo", "go")):
                    tag = f"{side}-{phase}-pair{i}"
                    if side == "go":
                        results[side] = go_side(lab, name, caches["go"], out, phase == "cold",
                                                tag, project=project)
                    else:
                        results[side] = fgo_side(lab, name, caches["fgo"], store, out,
                                                 phase == "cold", tag=tag, project=project,
                                                 flags=flags, fgo_cache=fgo_cache)
            same_outputs(cold["go"], cold["fgo"])
            same_outputs(noop["go"], noop["fgo"])
            f = cold["fgo"]
            rows.append({
                "project": name, "load": load, "load_how": how, "pair": i,
                "first": "go" if i % 2 == 0 else "fgo",
                "go_cold_s": cold["go"]["wall_s"], "fgo_cold_s": f["wall_s"],
                "ratio": round(f["wall_s"] / cold["go"]["wall_s"], 3),
                "go_noop_s": noop["go"]["wall_s"], "fgo_noop_s": noop["fgo"]["wall_s"],
                "noop_extra_s": round(noop["fgo"]["wall_s"] - noop["go"]["wall_s"], 3),
                "remote": f["remote"], "local": f["local"], "slot": f["slot"], "by_go": f["by_go"],
                "dispatch_median_ms": f["dispatch_median_ms"],
                "head_cpu_s": f["head"]["cpu_s"], "head_build_cpu_s": f["head"]["build_cpu_s"],
                "head_cpu_per_remote_ms": f["head"]["cpu_per_remote_ms"],
                "head_build_cpu_per_remote_ms": f["head"]["build_cpu_per_remote_ms"],
                "head_peak_rss_mb": f["head"].get("peak_rss_mb"),
                "load1": labmod.loadavg()[0],
                "go_graph": cold["go"]["graph"], "fgo_report": f["report"],
                "go_command": cold["go"]["command"], "fgo_command": f["command"],
                **({"patched_compiler_built": (fgo_cache / "toolchain").exists()}
                   if fgo_cache else {})})
        finally:
            for d in (*caches.values(), store, out, *([fgo_cache] if fgo_cache else [])):
                lab.drop(d)
    return rows


def summary(name: str, load: str, rows: list[dict]) -> dict:
    def med(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None
    s = {"project": name, "load": load, "pair": "median", "pairs": len(rows),
         "ratio": med("ratio"), "noop_extra_s": med("noop_extra_s"),
         "fgo_cpu_s": med("head_cpu_s"), "head_peak_rss_mb": med("head_peak_rss_mb")}
    s["targets"] = {"ratio <= 1.03": s["ratio"] <= 1.03,
                    "no-op <= go + 0.3 s": s["noop_extra_s"] <= 0.3}
    return s


@pytest.mark.parametrize("name,load", [
    pytest.param(n, load, marks=[pytest.mark.quick] if (n, load) in QUICK else [])
    for n in PROJECTS for load in LOADS])
def test_overhead_on_one_machine(benchmark, lab, name: str, load: str) -> None:
    lab.require(name)
    pairs = QUICK[(name, load)] if lab.quick else PROJECTS[name]
    runs = benchmark.pedantic(measure, args=(lab, name, pairs, load), rounds=1, iterations=1)
    s = summary(name, load, runs)
    rows = overhead_table(lab)
    # keep the other tests' rows and other (project, load)s; rows without a load were measured
    # before fgo's defaults compiled on the head (the embedded workers): dropped
    rows[:] = [r for r in rows if r.get("pair") in ("tcp", "rpc", "embedded", "channel") or (
        r.get("load") and (r["project"], r["load"]) != (name, load))] + [*runs, s]
    lab.save("overhead", rows, what="measured: fgo build against go build, each with its "
                                    "defaults, cold and no-op, alternating pairs, quiet and loaded")
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, dict)})


# The design card's command on aws-sdk-go's largest package (its dependencies cold too), as a
# new user first runs it: the first such build once built the patched compiler before go
# build started, on one machine where no split pays.
NEW_INSTALL = labmod.Project("aws ec2", "github.com/aws/aws-sdk-go/service/ec2", gopath=True,
                             binary=True, note="aws-sdk-go's largest package; -o its archive")
NEW_INSTALL_LOAD = "new install"


def test_design_card_command_on_a_new_install(benchmark, lab) -> None:
    """`fgo build --split-large PROJECT` with an empty fgo cache (no patched compiler) against
    go build, each into its own empty GOCACHE, alternating pairs (full run only)."""
    p = NEW_INSTALL
    lab.require(p.name, p.source_dir())
    pairs = 1 if lab.quick else 3
    runs = benchmark.pedantic(_pairs, args=(lab, p.name, pairs, NEW_INSTALL_LOAD, ""),
                              kwargs={"project": p, "flags": ("--split-large",),
                                      "new_install": True}, rounds=1, iterations=1)
    s = summary(p.name, NEW_INSTALL_LOAD, runs)
    rows = overhead_table(lab)
    rows[:] = [r for r in rows if r.get("load") != NEW_INSTALL_LOAD] + [*runs, s]
    lab.save("overhead", rows, what="measured: fgo build against go build, each with its "
                                    "defaults, cold and no-op, alternating pairs, quiet and loaded")
    benchmark.extra_info.update({k: v for k, v in s.items() if not isinstance(v, dict)})
    # nothing splits on one machine: neither the patched compiler nor a cluster is made
    assert all(r["remote"] == 0 and not r["patched_compiler_built"] for r in runs)


@pytest.mark.quick
def test_dispatch_over_tcp(benchmark, lab) -> None:
    """One cold fgo build of gin on `dask scheduler` + 2 `dask worker` processes (TCP)."""
    name = "gin"
    lab.require(name)
    cache, out, store = lab.tmpdir("gocache"), lab.tmpdir("out"), lab.tmpdir("store")
    go_cache = lab.tmpdir("gocache-go")
    with _dask_cluster(lab) as (address, worker_procs, stores):
        # each `dask worker` is a nanny and its worker process: their own CPU, not their
        # compiles' (the compiles are children, counted apart)
        workers = [w for p in worker_procs for w in acct.python_tree(p.pid)]
        idle_before = _idle_cpu_share(workers)       # as started: the preloaded service's
        before, compiles_before = acct.self_cpu(workers), acct.children_cpu(workers)
        split_before = acct.self_user_sys(workers)
        run = benchmark.pedantic(fgo_side, args=(lab, name, cache, store, out, True,
                                                 address), rounds=1, iterations=1)
        after, compiles_after = acct.self_cpu(workers), acct.children_cpu(workers)
        split = _per_remote_ms(split_before, acct.self_user_sys(workers), run["remote"])
        worker_cpu = sum(after[w] - before[w] for w in workers if w in after and w in before)
        compile_cpu = sum(compiles_after[w] - compiles_before[w] for w in workers
                          if w in compiles_after and w in compiles_before)
        idle_after = _idle_cpu_share(workers)        # as fgo's service left it
        go = go_side(lab, name, go_cache, out, True)
        same_outputs(go, run)
        noop = _noop_pairs(lab, name, go_cache, cache, store, out, address)
        edit = _edit_pairs(lab, name, go_cache, cache, store, out, address)
        second = _second_head(lab, name, go_cache, out, address)
        # (not in --quick: one more cold build, and the row above proves the harness)
        warm = None if lab.quick else _warm_stores(lab, name, out, address, workers, stores)
    for d in (cache, go_cache, store, out):
        lab.drop(d)
    rows = overhead_table(lab)
    rows[:] = [r for r in rows if r.get("pair") != "tcp"]
    row = {"project": name, "pair": "tcp", "fgo_cold_s": run["wall_s"], "remote": run["remote"],
           "dispatch_median_ms": run["dispatch_median_ms"],
           "head_cpu_per_remote_ms": run["head"]["cpu_per_remote_ms"],
           "head_build_cpu_per_remote_ms": run["head"]["build_cpu_per_remote_ms"],
           # ... less the connect beside go build (once a build, Dask's import most of it)
           "head_connect_cpu_s": run["head"].get("connect_cpu_s"),
           "head_build_cpu_per_remote_ms_less_connect":
               run["head"].get("build_cpu_per_remote_ms_less_connect"),
           "worker_cpu_per_remote_ms": round(1000 * worker_cpu / run["remote"], 2)
           if run["remote"] else None,
           "worker_user_sys_per_remote_ms": split,
           # the same cold build again once the workers hold its blobs (a cluster's usual
           # state): what a compile costs a worker beyond receiving its inputs
           "warm_stores": warm,
           # the compilers' own CPU on the same workers: this shared machine moves both
           # figures together (a busier machine, more CPU seconds for the same work), their
           # ratio much less
           "worker_compile_cpu_s": round(compile_cpu, 2),
           "worker_cpu_per_compile_cpu_pct": round(100 * worker_cpu / compile_cpu, 2)
           if compile_cpu else None,
           # the model's costs of this run (what the DAS-5 simulations use: experiments.at_scale)
           **_model_costs(run),
           "head_peak_rss_mb": run["head"].get("peak_rss_mb"),
           "workers_peak_rss_mb": run.get("workers_peak_rss_mb"),
           "worker_processes": len(workers),
           # the share of a core the idle workers (nannies included) take, all together
           # before any head: each worker quieted by its preload, its nanny at Dask's
           # defaults until a head installs fgo's nanny plugin
           "workers_idle_cpu_pct": {"before any head": idle_before,
                                    "after fgo's service": idle_after},
           "noop": noop, "edit": edit, "second_head": second,
           "targets": {"dispatch <= 10 ms": run["dispatch_median_ms"] <= 10,
                       "no-op with --scheduler <= go + 0.3 s": noop["extra_s"] <= 0.3,
                       # another head that fetched workers' entries from the cluster tier
                       "second head's no-op <= go + 0.3 s":
                           second["noop"]["extra_s"] <= 0.3,
                       "head CPU <= 3 ms per remote compile":
                           (run["head"]["build_cpu_per_remote_ms"] or 99) <= 3,
                       "worker CPU <= 8 ms per remote compile":
                           bool(run["remote"]) and 1000 * worker_cpu / run["remote"] <= 8},
           "fgo_report": run["report"],
           "fgo_command": run["command"].replace(address, "tcp://127.0.0.1:PORT")}
    rows.append(row)
    lab.save("overhead", rows, what="measured: fgo build against go build, each with its "
                                    "defaults, cold and no-op, alternating pairs, quiet and loaded")
    benchmark.extra_info.update({k: v for k, v in row.items() if not isinstance(v, dict)})


@contextlib.contextmanager
def _dask_cluster(lab, n: int = 2) -> Any:
    """`dask scheduler` and N `dask worker`s on 127.0.0.1, one thread and one blob store
    each, as the README starts them: (address, the workers' processes, their stores);
    stopped, their stores and shares of the cluster tier removed, when the block ends."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = lab.tmpdir("dask-logs")
    stores = [lab.tmpdir(f"store{i}") for i in range(n)]
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as files:
        try:
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"], stdout=subprocess.DEVNULL,
                stderr=files.enter_context(open(logs / "scheduler", "w"))))
            for i, store in enumerate(stores):
                procs.append(subprocess.Popen(
                    [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--host",
                     "127.0.0.1", "--no-dashboard", "--preload", "fgo.worker.service"],
                    env={**os.environ, "FGO_STORE": str(store)},
                    stdout=subprocess.DEVNULL,
                    stderr=files.enter_context(open(logs / f"worker{i}", "w"))))
            _wait_for_workers(address, n)
            yield address, procs[1:], stores
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
            for d in (*stores, logs):
                lab.drop(d)
            for d in stores:  # each worker's share of the cluster tier, beside its store
                shutil.rmtree(share_beside(d), ignore_errors=True)


AB_PAIRS = 3


def _ab_on_cluster(lab, benchmark, name: str, sides: dict[str, dict[str, str]],
                   cold_stores: bool) -> tuple[list[dict], str]:
    """AB_PAIRS alternating pairs of the same cold build of NAME on `dask scheduler` + 2
    `dask worker`s, every compile remote, each side's with its environment (SIDES: side ->
    env); each build by a new head with an empty GOCACHE and store, the workers' shares of
    the cluster tier emptied before each (or a build would fetch its entries and compile
    nothing), and with COLD_STORES their stores too (else warm from a first build,
    unmeasured, as are the imports). Every build's outputs identical to a plain go
    build's. The builds (each with its "side" and its workers' CPU per remote compile),
    and the first one's command."""
    names = list(sides)
    out, go_cache = lab.tmpdir("out"), lab.tmpdir("gocache-go")
    builds: list[dict] = []
    with _dask_cluster(lab) as (address, worker_procs, stores):
        workers = [w for p in worker_procs for w in acct.python_tree(p.pid)]

        def build(side: str, tag: str) -> dict:
            for store in stores:
                shutil.rmtree(share_beside(store), ignore_errors=True)
                if cold_stores:  # (the worker makes its store again at its next put)
                    shutil.rmtree(store, ignore_errors=True)
            cache, store = lab.tmpdir("gocache-ab"), lab.tmpdir("store-ab")
            try:
                before = acct.self_user_sys(workers)
                run = fgo_side(lab, name, cache, store, out, True, address, tag=tag,
                               extra_env=sides[side])
                split = _per_remote_ms(before, acct.self_user_sys(workers), run["remote"])
            finally:
                lab.drop(cache)
                lab.drop(store)
            return {**run, "side": side,
                    "worker_cpu_per_remote_ms": round(sum(split), 2) if split else None}

        def pairs() -> None:
            for i in range(AB_PAIRS):
                for side in (names if i % 2 == 0 else names[::-1]):
                    builds.append(build(side, f"fgo-{side}-{i}"))

        build(names[-1], f"fgo-{names[-1]}-warmup")
        benchmark.pedantic(pairs, rounds=1, iterations=1)
        go = go_side(lab, name, go_cache, out, True)
        for b in builds:
            same_outputs(go, b)
        command = builds[0]["command"].replace(address, "tcp://127.0.0.1:PORT")
    for d in (out, go_cache):
        lab.drop(d)
    return builds, command


def _ab_row(name: str, pair: str, builds: list[dict], command: str, base: str,
            new: str) -> dict:
    """The A/B row of BUILDS: each side's figures, their medians, NEW's over BASE's."""
    def each(side: str, key: Callable[[dict], Any]) -> list[Any]:
        return [key(b) for b in builds if b["side"] == side]

    figures: dict[str, Callable[[dict], float | None]] = {
        "wall_s": lambda b: b["wall_s"],
        "dispatch_median_ms": lambda b: b["dispatch_median_ms"],
        "head_build_cpu_per_remote_ms": lambda b: b["head"]["build_cpu_per_remote_ms"],
        "worker_cpu_per_remote_ms": lambda b: b["worker_cpu_per_remote_ms"],
        "bytes_sent": lambda b: b["bytes_sent"]}
    sides = {t: {k: each(t, f) for k, f in figures.items()} for t in (base, new)}
    medians = {t: {k: statistics.median(v) for k, v in side.items() if None not in v}
               for t, side in sides.items()}
    return {"project": name, "pair": pair, "pairs": AB_PAIRS,
            "remote": each(new, lambda b: b["remote"]) + each(base, lambda b: b["remote"]),
            "order": [b["side"] for b in builds], base: sides[base], new: sides[new],
            "medians": medians,
            # NEW / BASE, per figure: below 1 is what NEW saves
            "ratios": {k: round(medians[new][k] / medians[base][k], 3)
                       for k in medians[new] if medians[base].get(k)},
            "identical": True,  # same_outputs held for every build (else it raised)
            "fgo_command": command}


def _save_row(lab, row: dict) -> None:
    rows = overhead_table(lab)
    rows[:] = [r for r in rows if r.get("pair") != row["pair"]] + [row]
    lab.save("overhead", rows, what="measured: fgo build against go build, each with its "
                                    "defaults, cold and no-op, alternating pairs, quiet and loaded")


def test_channel_against_dask_comms(benchmark, lab) -> None:
    """What fgo's compile channel (fgo.cluster.channel) saves over Dask's comms: the same
    cold gin build, one side with FGO_CHANNEL=off (compiles over Dask's comms), the other
    with the channel, the workers' stores warm (`_ab_on_cluster`)."""
    lab.require("gin")
    builds, command = _ab_on_cluster(lab, benchmark, "gin", {
        "dask": {"FGO_CHANNEL": "off"}, "channel": {"FGO_CHANNEL": "on"}}, cold_stores=False)
    assert all(b["channels"] == 2 for b in builds if b["side"] == "channel")
    assert all(b["channels"] == 0 for b in builds if b["side"] == "dask")
    row = _ab_row("gin", "channel", builds, command, "dask", "channel")
    _save_row(lab, row)
    benchmark.extra_info.update(row["ratios"])


def test_goroot_sources_against_sending_them(benchmark, lab) -> None:
    """What the workers' taking the standard library's sources from their own GOROOT
    (fgo.worker.goroot) saves over receiving them: the same cold gin build, one side with
    FGO_GOROOT_SOURCES=off, the workers' stores emptied before every build (a cold store is
    where it differs: a warm one holds the sources either way); the hashes a worker made
    of its own GOROOT's files are kept from the first build, as a running worker keeps
    them (`_ab_on_cluster`)."""
    lab.require("gin")
    builds, command = _ab_on_cluster(lab, benchmark, "gin", {
        "sent": {"FGO_GOROOT_SOURCES": "off"}, "own": {"FGO_GOROOT_SOURCES": "on"}},
        cold_stores=True)
    assert all(b["bytes_from_workers_goroot"] > 0 for b in builds if b["side"] == "own")
    assert all(b["bytes_from_workers_goroot"] == 0 for b in builds if b["side"] == "sent")
    row = _ab_row("gin", "goroot", builds, command, "sent", "own")
    row["bytes_from_workers_goroot"] = [b["bytes_from_workers_goroot"] for b in builds
                                        if b["side"] == "own"]
    _save_row(lab, row)
    benchmark.extra_info.update(row["ratios"])


EMBEDDED_BUILDS = 3  # one build's median moves by a millisecond on this shared machine


def test_dispatch_to_embedded_workers(benchmark, lab) -> None:
    """EMBEDDED_BUILDS cold fgo builds of gin on the embedded cluster's two worker processes,
    every compile sent to them (--workers 2 --local-slots 0; the first ones run locally
    while the cluster starts), each with an empty GOCACHE and store: the median of the
    builds' median dispatch to an embedded worker (issue 24's target: 5 ms), each build's
    outputs against a plain go build's into its own empty GOCACHE."""
    name = "gin"
    lab.require(name)
    go_cache, out = lab.tmpdir("gocache-go-embedded"), lab.tmpdir("out-embedded")

    def builds() -> list[dict]:
        runs = []
        for i in range(EMBEDDED_BUILDS):
            cache, store = lab.tmpdir("gocache-embedded"), lab.tmpdir("store-embedded")
            try:
                runs.append(fgo_side(lab, name, cache, store, out, True,
                                     flags=("--workers", "2", "--local-slots", "0"),
                                     tag=f"fgo-embedded-{i}"))
            finally:
                lab.drop(cache)
                lab.drop(store)
        return runs
    try:
        runs = benchmark.pedantic(builds, rounds=1, iterations=1)
        go = go_side(lab, name, go_cache, out, True, tag="go-embedded")
        for run in runs:
            same_outputs(go, run)
    finally:
        lab.drop(go_cache)
        lab.drop(out)
    assert all(run["remote"] > 0 for run in runs), runs  # what it measures happened
    dispatch = statistics.median(run["dispatch_median_ms"] for run in runs)
    row = {"project": name, "pair": "embedded", "builds": len(runs),
           "fgo_cold_s": [run["wall_s"] for run in runs],
           "remote": [run["remote"] for run in runs], "local": [run["local"] for run in runs],
           "dispatch_median_ms": dispatch,
           "dispatch_median_ms_per_build": [run["dispatch_median_ms"] for run in runs],
           "head_build_cpu_per_remote_ms": statistics.median(
               run["head"]["build_cpu_per_remote_ms"] for run in runs),
           "targets": {"dispatch <= 5 ms to an embedded worker": dispatch <= 5},
           "fgo_report": runs[0]["report"],
           "fgo_command": runs[0]["command"].replace("fgo-embedded-0", "fgo-embedded-N")}
    rows = overhead_table(lab)
    rows[:] = [r for r in rows if r.get("pair") != "embedded"] + [row]
    lab.save("overhead", rows, what="measured: fgo build against go build, each with its "
                                    "defaults, cold and no-op, alternating pairs, quiet and loaded")
    benchmark.extra_info.update({k: v for k, v in row.items() if not isinstance(v, dict)})


NOOP_PAIRS = 5
EDIT_PAIRS = 5


def _rebuild_pairs(n: int, go: Callable[[], dict], fgo: Callable[[], dict],
                   before: Callable[[int], None] = lambda i: None
                   ) -> tuple[dict[str, Any], list[dict]]:
    """N rebuilds of each side, alternating (go first in even pairs), BEFORE(i) ahead of
    pair i, each pair's outputs the same: the walls, fgo's extra seconds (median of
    fgo - go per pair) and fgo - go as a ratio; and fgo's reports."""
    pairs, reports = [], []
    for i in range(n):
        before(i)
        walls = {side: (go if side == "go" else fgo)()
                 for side in ("go", "fgo")[:: 1 if i % 2 == 0 else -1]}
        same_outputs(walls["go"], walls["fgo"])
        reports.append(json.loads(Path(walls["fgo"]["report"]).read_text()))
        pairs.append((walls["go"]["wall_s"], walls["fgo"]["wall_s"]))
    return {"pairs": n, "go_s": [g for g, _ in pairs], "fgo_s": [f for _, f in pairs],
            "extra_s": round(statistics.median(f - g for g, f in pairs), 3),
            "ratio": round(statistics.median(f / g for g, f in pairs), 3),
            # go build started while the head connected (the cluster sized as the last
            # build on that scheduler found it)
            "connected_beside_go": [bool(r["cluster"].get("connected_beside_go"))
                                    for r in reports],
            # ... and it ended before anything needed the cluster: never connected
            "not_connected": [bool(r["cluster"].get("not_waited_for")) for r in reports],
            # its puts kept for the next build that connects (an edit's)
            "deferred": [(r.get("shared_cache") or {}).get("deferred", 0) for r in reports]}, \
        reports


def _noop_pairs(lab, name: str, go_cache: Path, cache: Path, store: Path, out: Path,
                address: str) -> dict:
    """The rebuild a developer runs all day, with the cluster given: each side a no-op on
    its own warm cache; and whether fgo's cacheprog needed the cluster tier."""
    row, reports = _rebuild_pairs(
        NOOP_PAIRS, lambda: go_side(lab, name, go_cache, out, False, tag="go-noop"),
        lambda: fgo_side(lab, name, cache, store, out, False, address, tag="fgo-noop"))
    for rep in reports:
        assert rep["totals"]["remote"] == 0 and rep["totals"]["local"] == 0, rep["totals"]
    return {**row, "cluster_tier": [r.get("shared_cache", {}).get("remote") for r in reports],
            # the gets the cacheprog front answered (fgo.cache.front), of all go asked
            "front_gets": [[(r.get("shared_cache") or {}).get(k, 0) for k in ("front", "gets")]
                           for r in reports],
            **_revocation_flags(reports)}


def _revocation_flags(reports: list[dict]) -> dict[str, list]:
    """Per rebuild: whether the revocations its head kept were the cluster's (the beacon's
    token unchanged: workers' entries go to go at once), and how many workers' entries
    were given to go to be checked after instead."""
    caches = [r.get("shared_cache") or {} for r in reports]
    return {"revocations_current": [bool(c.get("revocations_current")) for c in caches],
            "checked_after": [c.get("checked_after", 0) for c in caches]}


def _second_head(lab, name: str, go_cache: Path, out: Path, address: str) -> dict:
    """Another developer's head on the same cluster: its first build fetches what the first
    head published (entries workers made: go may be given one only while its head knows
    the cluster's revocations, fgo.cluster.beacon), then its no-ops and edits against go's,
    as above."""
    cache, store = lab.tmpdir("gocache-second"), lab.tmpdir("store-second")
    try:
        first = fgo_side(lab, name, cache, store, out, False, address, tag="fgo-second",
                         remote_only=False)
        fetched = json.loads(Path(first["report"]).read_text())["shared_cache"]
        assert fetched["remote_hits"] > 100, fetched  # what it measures happened
        noop = _noop_pairs(lab, name, go_cache, cache, store, out, address)
        edit = _edit_pairs(lab, name, go_cache, cache, store, out, address)
    finally:
        for d in (cache, store):
            lab.drop(d)
    return {"fetched": fetched["remote_hits"], "noop": noop, "edit": edit}


def _per_remote_ms(before: tuple[float, float], after: tuple[float, float],
                   remote: int) -> list[float] | None:
    """User and sys milliseconds per remote compile between BEFORE and AFTER."""
    if not remote:
        return None
    return [round(1000 * (a - b) / remote, 2) for a, b in zip(after, before)]


def _warm_stores(lab, name: str, out: Path, address: str, workers: list[int],
                 stores: list[Path]) -> dict:
    """A new head's cold build once more, every compile remote: the workers' blob stores
    hold its inputs by now, their shares of the cluster tier are emptied first (or the
    build would fetch its entries and compile nothing)."""
    for store in stores:
        shutil.rmtree(share_beside(store), ignore_errors=True)
    cache, store = lab.tmpdir("gocache-warm"), lab.tmpdir("store-warm")
    profile = lab.tmpdir("perf")
    try:
        before = acct.self_user_sys(workers)
        with kernel_time.Recorder(profile / "perf.data") as perf:
            run = fgo_side(lab, name, cache, store, out, True, address, tag="fgo-warm")
        split = _per_remote_ms(before, acct.self_user_sys(workers), run["remote"])
        by_kind = perf.counts(workers)
    finally:
        for d in (cache, store, profile):
            lab.drop(d)
    return {"remote": run["remote"], "dispatch_median_ms": run["dispatch_median_ms"],
            "head_build_cpu_per_remote_ms": run["head"]["build_cpu_per_remote_ms"],
            "worker_cpu_per_remote_ms": round(sum(split), 2) if split else None,
            "worker_user_sys_per_remote_ms": split,
            # sampled (perf, every CPU, kernel_time.FREQ_HZ): what the workers' own CPU was
            # doing, by kind, in ms per remote compile; None without perf
            "worker_cpu_by_kind_ms": kernel_time.per_unit_ms(by_kind, run["remote"])
            if by_kind is not None else None,
            "worker_cpu_samples": sum(by_kind.values()) if by_kind is not None else None,
            "fgo_report": run["report"]}


def _edit_pairs(lab, name: str, go_cache: Path, cache: Path, store: Path, out: Path,
                address: str) -> dict:
    """The loop a developer runs all day, with the cluster given: a copy of NAME's package
    (a GOPATH entry in front of Debian's) gets one more file, another each pair, and each
    side rebuilds on its own warm cache; fgo with its defaults (the head's slots compile
    first)."""
    base = CORPUS[name]
    overlay = lab.tmpdir("edit-overlay")
    p = dataclasses.replace(base, overlay=overlay)
    shutil.copytree(base.source_dir(), p.source_dir(), symlinks=True)
    package = next(line.split()[1] for f in sorted(p.source_dir().glob("*.go"))
                   for line in f.read_text().splitlines() if line.startswith("package "))

    def go() -> dict:
        return go_side(lab, name, go_cache, out, False, tag="go-edit", project=p)

    def fgo() -> dict:
        return fgo_side(lab, name, cache, store, out, False, address, tag="fgo-edit",
                        project=p, remote_only=False)

    def edit(i: int) -> None:
        (p.source_dir() / "fgo_edit.go").write_text(
            f"package {package}\n\n// FgoEdit{i} is experiment 9's edit {i}.\n"
            f"func FgoEdit{i}() int {{ return {i} }}\n")
    try:
        # the copy's packages once on each side first (their paths are new): then each
        # pair rebuilds the edited package alone
        go()
        fgo()
        row, reports = _rebuild_pairs(EDIT_PAIRS, go, fgo, edit)
    finally:
        lab.drop(overlay)
    compiled = [r["totals"]["remote"] + r["totals"]["local"] for r in reports]
    assert all(n >= 1 for n in compiled), compiled  # the edit was compiled, by fgo
    caches = [r.get("shared_cache") or {} for r in reports]
    return {**row, "fgo_compiles": compiled, **_revocation_flags(reports),
            # the cacheprog front served the whole edit: its miss and go's puts, no helper
            # started (fgo.cache.front)
            "front_alone": [c.get("front_puts", 0) == c.get("puts") > 0 and not c.get("inline")
                            and c.get("front_misses", 0) == c.get("misses") for c in caches]}


IDLE_WINDOW_S = 5.0


def _idle_cpu_share(pids: list[int]) -> float:
    """The % of one core PIDS spend together over IDLE_WINDOW_S while nothing is built."""
    before = acct.self_cpu(pids)
    time.sleep(IDLE_WINDOW_S)
    after = acct.self_cpu(pids)
    return round(100 * sum(after[p] - before[p] for p in pids if p in before and p in after)
                 / IDLE_WINDOW_S, 2)


def _model_costs(run: dict) -> dict:
    costs = makespan.costs_from_run(json.loads(Path(run["report"]).read_text()), run["wall_s"])
    return {"model_dispatch_s": round(costs.dispatch_s, 4), "model_fixed_s": round(costs.fixed_s, 3)}


def overhead_table(lab) -> list[dict]:
    """The overhead rows: on first use in a session, those saved by earlier sessions, so that
    each test replaces only its own rows (a session that ran one test once dropped all the
    others' rows)."""
    rows = lab.table("overhead")
    path = lab.results / "overhead.json"
    if not getattr(lab, "overhead_loaded", False):
        lab.overhead_loaded = True
        if not rows and path.exists():
            rows[:] = json.loads(path.read_text())["rows"]
    return rows


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_workers(address: str, n: int) -> None:
    from distributed import Client
    with Client(address, timeout=60) as client:
        client.wait_for_workers(n, timeout=120)


def non_compile_cpu(run: dict) -> float:
    """CPU seconds of an emulated-hosts fgo RUN that the compiles lose, besides the head
    process's and the verification's own (the report has those): every role that process
    accounting charged (the scheduler, the cacheprog, go build, the link, each host's
    Python) but the compiles: every one of them ran on the two cores the compiles had.
    Without accounting: the scheduler's CPU (the model then falls short by more)."""
    roles = run.get("cpu_by_role")
    if not roles:
        return run.get("scheduler_cpu_s", 0.0)
    return sum(v for k, v in roles.items() if not k.endswith("compiles")
               and k not in (acct.HEAD, acct.HEAD_COMPILES))


def _leave_one_out(runs: list[dict], fit) -> list[tuple[dict, makespan.Costs]]:
    """Each run with the mean of the costs FIT on every *other* run."""
    fits = [fit(r) for r in runs]
    return [(r, makespan.mean_costs([c for j, c in enumerate(fits) if j != i]))
            for i, r in enumerate(runs)] if len(runs) > 1 else []


def _leave_one_out_by_project(runs: list[dict], fit) -> list[tuple[dict, makespan.Costs]]:
    """Each run with the mean of the costs FIT on the other runs of its project (what fgo
    adds depends on the project: its compiles' sizes, how many run remotely), or, for a
    project measured once, on every other run."""
    fits = [fit(r) for r in runs]
    out = []
    for i, r in enumerate(runs):
        same = [c for j, c in enumerate(fits) if j != i and runs[j]["project"] == r["project"]]
        others = same or [c for j, c in enumerate(fits) if j != i]
        if others:
            out.append((r, makespan.mean_costs(others)))
    return out


def head_checks(g, report: dict | None) -> tuple[list, list]:
    """The compiles of G that REPORT's verification compiled again on the head, and of
    those the ones drawn when they were sent (which ones is the build's secret draw: the
    prediction takes them as the build made them)."""
    checks = [c for c in ((report or {}).get("verification") or {}).get("checks", [])
              if c.get("where") == "head" and c.get("kind") in ("remote", "speculative")]
    packages = {c["package"] for c in checks}
    early = {c["package"] for c in checks if c.get("at_dispatch")}
    nodes = [n for n in g if makespan.is_compile(g, n) and g.nodes[n].get("package") in packages]
    return nodes, [n for n in nodes if g.nodes[n].get("package") in early]


def _predicted_row(r: dict, costs: makespan.Costs, kind: str, graph_path: Path, measured: float,
                   report: dict | None = None,
                   pipelined: tuple[dict[str, float], float] | None = None,
                   checks_apart: bool = False) -> dict:
    """R's wall as the model predicts it; PIPELINED (export fractions by package, and the
    default): a build with --pipeline, each compile's dependents starting from its export;
    CHECKS_APART: the compiles its verification checked are compiled again on the head's
    slot, before the link (the costs were fitted without them)."""
    g = actiongraph.work_graph(actiongraph.load(graph_path))
    dur = {n: g.nodes[n].get("duration") or 0.0 for n in g}
    nbytes = makespan.bytes_by_node(g, report) if report and costs.bytes_per_s else None
    # the head's own slots (experiment 8 since issue 24: one, beside one host) pay no dispatch
    local = min(2, int(((report or {}).get("cluster") or {}).get("local_slots") or 0))
    checked, early = head_checks(g, report) if checks_apart else ([], [])
    if pipelined is not None:
        predicted = makespan.predict_pipelined(g, 2, dur, costs, *pipelined, nbytes,
                                               local_slots=local, checked=checked,
                                               at_dispatch=early)
        kind += ", pipelined"
    else:
        predicted = makespan.predict(g, 2, dur, costs, nbytes, local_slots=local,
                                     checked=checked, at_dispatch=early)
    if checked:
        kind += ", its checks on the head"
    return {"project": r["project"], "pair": r["pair"], "kind": kind, "measured_s": measured,
            "predicted_s": round(predicted, 3), "error": round(predicted / measured - 1, 4),
            "dispatch_s": round(costs.dispatch_s, 4), "fixed_s": round(costs.fixed_s, 3),
            "head_cpu_ms": round(1000 * costs.head_cpu_s, 2)}


@pytest.mark.quick
def test_model_predicts_the_measured_walls(lab) -> None:
    """fgo.analysis.makespan against measured builds, fitted on the *other* builds of the
    same setup (leave one out), never on the build it predicts:
    - this session's cold pairs that compiled remotely (fgo's defaults on one machine let go
      build compile alone since issue 24: nothing of fgo's to fit there), each fgo build
      predicted from the go side of its pair on 2 slots;
    - item 8's emulated hosts (results/scaleout.json, whole builds): each fgo build from its
      pair's `go build -p 1` on one core, 2 slots (the head's own one and one host since
      issue 24: it pays no dispatch; before, 2 single-core hosts), each compile's bytes at
      1 Gb/s, and all of fgo's CPU that is not a compile (`non_compile_cpu`) as work the
      compiles lose; costs fitted on the other builds of the same project (aws-sdk-go's
      plain, --split-large and --pipeline runs are projects of their own), a build with
      pipelining predicted as fgo pipelines (`makespan.predict_pipelined`: speculations
      only on remote slots go build leaves idle, paused for its work, nothing exported
      early by the head's own compiles; each package's export fraction from experiment
      7's measured runs); the compiles its verification checked
      on the head compiled again there before the link (`makespan.with_checks`), not spread
      over every compile as a cost."""
    rows = []
    # builds with remote compiles only: where go build compiled alone there is no fgo cost
    # to fit, and the model (k slots, each compile one) does not hold go's own -c concurrency
    pairs = [r for r in overhead_table(lab) if isinstance(r.get("pair"), int) and r.get("remote")]
    reports = {id(r): json.loads(Path(r["fgo_report"]).read_text()) for r in pairs}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in pairs:   # fitted within one project and load: a quiet fit says nothing of a loaded run
        groups.setdefault((r["project"], r.get("load", "quiet")), []).append(r)
    for (_, load), runs in groups.items():
        for r, costs in _leave_one_out(runs, lambda r: makespan.costs_from_run(
                reports[id(r)], r["fgo_cold_s"])):
            rows.append(_predicted_row(r, costs, f"one machine, defaults ({load})",
                                       Path(r["go_graph"]), r["fgo_cold_s"]))
    scale = lab.results / "scaleout.json"
    srows = json.loads(scale.read_text())["rows"] if scale.exists() else []
    go_runs = {(r["project"], r["pair"]): r for r in srows if r.get("side") == "go"}
    go_what = {r["project"]: r.get("what") or "" for r in srows if r.get("side") == "summary"}
    hosts = [r for r in srows if r.get("side") == "fgo" and not r.get("split")
             and r.get("report") and (r["project"], r["pair"]) in go_runs]
    sreports = {id(r): json.loads((labmod.REPO / r["report"]).read_text()) for r in hosts}
    fracs = None  # read only when a build pipelined (--quick has no std+cmd export row)
    for r, costs in _leave_one_out_by_project(hosts, lambda r: makespan.costs_from_run(
            sreports[id(r)], r["wall_s"], GBIT_BYTES_PER_S,
            other_head_cpu_s=non_compile_cpu(r), checks_apart=True)):
        go = go_runs[(r["project"], r["pair"])]
        spec = (sreports[id(r)].get("speculation") or {}).get("started")
        if spec and fracs is None:
            fracs = export_fracs(lab)[:2]
        rows.append(_predicted_row(r, costs, "two cores: " + ("the head's slot + 1 host"
                                   if "slot" in (r.get("what") or go_what.get(r["project"], ""))
                                   else "2 emulated hosts") + ", 1 Gb/s",
                                   labmod.REPO / go["actiongraph"], r["wall_s"], sreports[id(r)],
                                   pipelined=fracs if spec else None, checks_apart=True))
    if not rows:
        pytest.skip("needs two or more measured builds of one setup (items 8 and 9)")
    worst = max(abs(r["error"]) for r in rows)
    lab.save("model_validation", rows, what="simulated (fgo.analysis.makespan) vs measured: "
             "each fgo build's wall predicted from its pair's go build and the other builds' costs",
             worst_error=worst)


DAS5_NODES = (1, 2, 4, 8, 16)
DAS5_CORES = 16
GBIT_BYTES_PER_S = 125e6   # DAS-5's 1 Gb/s Ethernet


def split_remote(g, n) -> bool:
    """Remote actions of a split graph: compiles, and their shards and merges."""
    return g.nodes[n].get("tool") == "compile" and g.nodes[n].get("mode") in (
        "build", "split shard", "split merge")


@pytest.mark.parametrize("name", ["etcd", "cmd/compile"])
def test_das5_extrapolation(lab, name: str) -> None:
    """Simulated, with the model of test_model_predicts_the_measured_walls: DAS-5 sizes
    (1-16 nodes x 16 cores, 1 Gb/s), durations of this session's `go build -a -p 1`,
    dispatch measured over TCP (test_dispatch_over_tcp), each compile's bytes from this
    session's fgo build of the project (item 3) over the link; plain and --split-large,
    against DistGo-style levels and against go build on ONE node of 16 cores with its -c
    (simulate.gobuild_schedule, the baseline a user would run instead)."""
    from experiments import split_sweep
    from fgo.analysis import simulate
    lab.require(name)
    tcp = next((r for r in overhead_table(lab) if r.get("pair") == "tcp"), None)
    if tcp is None:
        pytest.skip("needs test_dispatch_over_tcp's run in this session")
    costs = makespan.costs_from_run(json.loads(Path(tcp["fgo_report"]).read_text()),
                                    tcp["fgo_cold_s"], GBIT_BYTES_PER_S)
    g = actiongraph.work_graph(lab.cold(name, 1).graph())
    dur = split_sweep.durations(g, "wall")
    fgo_report = lab.raw / f"{name.replace('/', '_')}-fgo-cold.report.json"
    nbytes = (makespan.bytes_by_node(g, json.loads(fgo_report.read_text()))
              if fgo_report.exists() else {})
    specs = split_sweep.choose_splits(g, lambda pkgs: lab.phases_many(name, pkgs), dur,
                                      max_n=split_sweep.MAX_SPLIT)
    fracs, default_frac, fracs_from = export_fracs(lab)
    # the baseline a user runs instead: go build on ONE node of 16 cores with its -c
    from experiments import at_scale
    pfr, pdefault = at_scale.parallel_fractions()
    shp = at_scale.shapes(g, dur, {p: {"F": s.frontend_s, "B": s.backend_s, "D": s.merge_s}
                                   for p, s in specs.items()}, pfr, pdefault)
    gob = simulate.gobuild_schedule(g, simulate.GoBuild(DAS5_CORES), dur, shp).makespan
    rows = []
    for nodes in DAS5_NODES:
        k = nodes * DAS5_CORES
        h, hd = simulate.split_graph(g, specs, min(16, k), dur)
        hbytes = {n: nbytes.get(n[0] if isinstance(n, tuple) else n, 0.0) for n in h}
        plain = makespan.predict(g, k, dur, costs, nbytes)
        split = makespan.predict(h, k, hd, costs, hbytes, remote=split_remote)
        levels = costs.fixed_s + simulate.level_schedule(
            g, k, makespan.with_costs(g, dur, costs, nbytes)).makespan
        piped = makespan.predict_pipelined(g, k, dur, costs, fracs, default_frac, nbytes)
        rows.append({"project": name, "nodes": nodes, "slots": k, "plain_s": round(plain, 2),
                     "split_s": round(split, 2), "pipelined_s": round(piped, 2),
                     "levels_s": round(levels, 2),
                     "plain_over_levels": round(levels / plain, 3),
                     "split_over_levels": round(levels / split, 3),
                     "pipelined_over_levels": round(levels / piped, 3),
                     "go_build_1_node_s": round(gob, 2),
                     "plain_over_go_build": round(gob / plain, 3),
                     "split_over_go_build": round(gob / split, 3),
                     "pipelined_over_go_build": round(gob / piped, 3)})
    for r in rows:
        r["plain_speedup_vs_1_node"] = round(rows[0]["plain_s"] / r["plain_s"], 3)
        r["split_speedup_vs_1_node"] = round(rows[0]["plain_s"] / r["split_s"], 3)
    table = lab.table("das5")
    table[:] = [r for r in table if r["project"] != name] + rows
    lab.save("das5", table, what="simulated: DAS-5 sizes with fgo's measured costs "
             "(fgo.analysis.makespan), labelled simulated", dispatch_s=costs.dispatch_s,
             fixed_s=costs.fixed_s, link_bytes_per_s=GBIT_BYTES_PER_S,
             bytes_from={name: str(fgo_report) if nbytes else "none (item 3 did not run)"},
             export_fracs_from=fracs_from, export_frac_default=default_frac)


def export_fracs(lab) -> tuple[dict[str, float], float, str]:
    """When each compile's export data came (a share of its time), the median over the
    pipelined builds of experiment 7 part 3 (results/pipeline_measured.json), and the median
    of all for the rest; else experiment 7 part 1's median over std and cmd."""
    measured = lab.results / "pipeline_measured.json"
    seen: dict[str, list[float]] = {}
    if measured.exists():
        for r in json.loads(measured.read_text())["rows"]:
            if r.get("side") == "pipeline" and (lab.results.parent.parent / r["report"]).exists():
                rep = json.loads((lab.results.parent.parent / r["report"]).read_text())
                for pkg, x in (rep.get("speculation") or {}).get("export_fracs", {}).items():
                    seen.setdefault(pkg, []).append(x)
    if seen:
        fracs = {p: statistics.median(xs) for p, xs in seen.items()}
        return fracs, statistics.median(fracs.values()), str(measured.relative_to(lab.results))
    early = json.loads((lab.results / "early_export.json").read_text())["rows"]
    median = next(r["ready_frac_median"] for r in early if r["corpus"] == "std+cmd")
    return {}, median, "early_export.json (std+cmd median)"


def _refused_task() -> wire.CompileTask:
    """A compile task carrying 50 kB that a worker's executor refuses at once, before it
    stores anything (it names another toolchain): what it costs is the message path alone."""
    return wire.CompileTask(task_id="overhead-rpc", identity=toolchain.Identity("none", "0" * 64),
                            call=CompileCall(args=[], cwd="/", outputs=[], inputs=[]), inputs={},
                            blobs={"0" * 64: b"y" * 50_000}, wait_for=[], env={}, head_goroot="")


def _per_call(fn: Callable[[int], Any], calls: int) -> tuple[float, float]:
    """FN(i) for CALLS values of i, two in flight (as go build -p 2 sends): the head
    process's CPU and the wall, milliseconds per call. Every call must be refused."""
    from concurrent.futures import ThreadPoolExecutor

    c0, t0 = os.times(), time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        assert all(x.status is wire.Status.REFUSED for x in pool.map(fn, range(calls)))
    c1, t1 = os.times(), time.perf_counter()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return 1000 * cpu / calls, 1000 * (t1 - t0) / calls


@pytest.mark.quick
def test_a_task_against_one_rpc(lab) -> None:
    """What the head pays per compile message: ROUNDS x CALLS calls to the 2 worker
    processes of an embedded cluster, each a task fgo's real executor refuses at once
    (`_refused_task`), as a Dask task (client.submit + result) and as one RPC to fgo's
    handler (fgo.worker.service; its plain-data answer decoded as a build does),
    alternating; the head process's CPU and the wall per call, medians over the rounds."""
    from fgo.cluster import rpc
    from fgo.cluster.connect import connect
    from fgo.worker import executor
    from fgo.worker.service import CompileService
    calls, rounds = 300, 3
    message = _refused_task()
    cluster = connect(None, workers=2, threads=1, service=CompileService())
    try:
        client = cluster.client
        workers = sorted(client.nthreads())

        def task(i: int):
            return client.submit(executor.execute, message, workers=[workers[i % 2]],
                                 pure=False, key=f"t-{i}-{time.time_ns()}").result()

        def call(i: int):
            answer = client.sync(rpc.call, client.rpc, workers[i % 2], wire.OP_COMPILE, message)
            return wire.decode(answer, wire.CompileResult)

        _per_call(task, 2)  # each worker's first answer (it hashes its compiler once): not timed
        samples: dict[str, list[tuple[float, float]]] = {"task": [], "rpc": []}
        for r in range(rounds):
            for name, fn in (("task", task), ("rpc", call))[:: 1 if r % 2 == 0 else -1]:
                samples[name].append(_per_call(fn, calls))
    finally:
        cluster.close()
    row = {"project": "-", "pair": "rpc", "calls": calls, "rounds": rounds,
           **{f"{n}_head_cpu_ms": round(statistics.median(c for c, _ in v), 3)
              for n, v in samples.items()},
           **{f"{n}_wall_ms": round(statistics.median(w for _, w in v), 3)
              for n, v in samples.items()}}
    rows = overhead_table(lab)
    rows[:] = [r for r in rows if r.get("pair") != "rpc"] + [row]
    lab.save("overhead", rows, what="measured: fgo build on the embedded cluster against go build "
                                    "at the same -p, cold and no-op, alternating pairs")
    assert row["rpc_head_cpu_ms"] < row["task_head_cpu_ms"]
