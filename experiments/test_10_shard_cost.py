"""Item 10 (issue 14, part 4): what a real shard costs, against the model F + B/K.

The packages are those item 2 split for etcd (results/simulate_etcd.json, the input of
(c) measured), each compiled from its real command line (`fgo.compiler.harness.compile_command`,
dependencies from the build cache). ROUNDS rounds; in each, in an order reversed every
other round: the stock compile with -bench (F, B, D and its CPU time), then for K in KS
the package split K ways by the patched compiler of each series in SERIES ("before": the
series up to BASELINE_PATCHES, "after": the whole series). Every process is
single-threaded (-c=1, GOMAXPROCS=1) and runs alone, so its CPU time is its time on a
machine of its own.

- model(K) = (F + B/K) * cpu / total: the -bench phases brought to the stock process's CPU
  time (F with the unaccounted time, as in item 2);
- a split's process times: shards 1..K-1 their CPU time, shard 0 the leader's less D (the
  merge node keeps D), as item 2's (c) measured;
- per package, K and series, the median over the rounds of each process, then
  max/model and mean/model;
- where the time goes, from each process's -fgostats: frontend (up to the compile loop),
  walk (the loop up to the backend: walk, runtime types, globals), backend (own share),
  export (shard) or inject (leader: merge after its own backend), later (leader: later
  rounds, DWARF), rest (process start and exit, the leader's dumpobj), the result size.

Asserted: every leader's archive equals the stock compile's. Results: results/shard_cost.json;
`python -m experiments.resim --shard-cost experiments/results/shard_cost.json` re-runs
item 2's simulations with the "after" shard times and the F/B/D of this run.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from experiments import lab as labmod
from experiments.lab import CORPUS
from fgo import toolchain
from fgo.analysis import bench as bench_phases
from fgo.analysis import simulate as sim
from fgo.compiler import harness
from fgo.compiler import patched as compiler_patch

PROJECT = "etcd"
KS = (2, 8)
ROUNDS = 3
BASELINE_PATCHES = 13  # the series before shards walked only their own functions (issue 14)
SERIES = ("before", "after")
FALLBACK = ["runtime", "net/http", "go.etcd.io/etcd/etcdserver/etcdserverpb"]


def split_packages(results: Path) -> list[str]:
    """The packages item 2 split for the project (its (c) measured), else FALLBACK."""
    f = results / f"simulate_{PROJECT}.json"
    if f.exists():
        rows = json.loads(f.read_text())["meta"].get("split_packages", [])
        if rows:
            return [r["package"] for r in rows]
    return list(FALLBACK)


def compilers(tmp: Path) -> dict[str, Path]:
    """The patched compiler of each series (the baseline built from a prefix of patches/)."""
    pdir = tmp / "baseline-patches"
    pdir.mkdir()
    for p in compiler_patch.patch_files()[:BASELINE_PATCHES]:
        shutil.copy(p, pdir / p.name)
    return {"before": compiler_patch.ensure_compiler(pdir).path, "after": compiler_patch.ensure_compiler().path}


def stock_run(argv: list[str], cwd: Path, tmp: Path) -> dict[str, Any]:
    """The stock compile (-c=1, -bench) alone: its CPU time, phases and archive."""
    out, benchf = tmp / "stock.a", tmp / "stock.bench"
    benchf.unlink(missing_ok=True)
    a = harness._set_output([argv[0], "-c=1", f"-bench={benchf}", *argv[1:]], out)
    cpu = labmod.cpu_times([a], cwd, toolchain.go_env(GOMAXPROCS="1"), 1)[0]
    ph = bench_phases.summary(bench_phases.last_run(benchf.read_text()))
    spec = sim.spec_from_phases(ph)
    return {"cpu_s": cpu, "total_s": ph["total"], "F": spec.frontend_s, "B": spec.backend_s,
            "D": spec.merge_s, "sha256": toolchain.file_sha256(out)}


def split_run(argv: list[str], cwd: Path, tmp: Path, k: int, compiler: Path) -> dict[str, Any]:
    r = labmod.split_cpu(argv, cwd, tmp, k, 1, compiler=compiler)
    r["sha256"] = toolchain.file_sha256(r.pop("archive"))
    return r


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def breakdown(stats: dict[str, Any], cpu: float, leader: bool, dumpobj: float) -> dict[str, float]:
    """Where one process's CPU time went: its -fgostats (wall times) scaled to CPU time by
    cpu / (total_s + the leader's DUMPOBJ wall, which follows the stats); rest = the
    remainder (process start and exit, the leader's dumpobj)."""
    walk = float(stats.get("walk_s") or 0.0)
    parts = {"frontend": float(stats.get("frontend_s") or 0.0) - walk, "walk": walk,
             "backend": float(stats.get("backend_s") or 0.0),
             ("inject" if leader else "export"): float(stats.get("inject_s" if leader else "export_s") or 0.0)}
    if leader:
        parts["later"] = float(stats.get("later_s") or 0.0)
    wall = float(stats.get("total_s") or 0.0) + (dumpobj if leader else 0.0)
    scale = min(1.0, cpu / wall) if wall > 0 else 1.0
    parts = {key: v * scale for key, v in parts.items()}
    parts["rest"] = cpu - sum(parts.values())
    return parts


def summarize(pkg: str, stock: list[dict[str, Any]], splits: dict[tuple[str, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (series, K) of PKG: medians over the rounds."""
    f, b, d = (_med([s[x] for s in stock]) for x in ("F", "B", "D"))
    scale = statistics.median(s["cpu_s"] / s["total_s"] for s in stock)
    rows = []
    for (series, k), runs in sorted(splits.items()):
        model = (f + b / k) * scale
        # process i's time in each round: 0 = the leader less D, i = shard i
        procs = [[max(r["leader_s"] - d * scale, 0.0), *r["shards_s"]] for r in runs]
        med = [_med([p[i] for p in procs]) for i in range(k)]
        parts = {}
        for who, idx in (("leader", [0]), ("shard", list(range(1, k)))):
            keys = breakdown(runs[0]["stats"][idx[0]], 0.0, who == "leader", 0.0).keys()
            per = [breakdown(r["stats"][i], r["leader_s"] if i == 0 else r["shards_s"][i - 1], i == 0, d)
                   for r in runs for i in idx]
            parts[who] = {key: _med([p[key] for p in per]) for key in keys}
        rows.append({"package": pkg, "series": series, "k": k, "rounds": len(runs),
                     "F_s": f, "B_s": b, "D_s": d, "cpu_over_bench": round(scale, 3),
                     "stock_cpu_s": _med([s["cpu_s"] for s in stock]), "model_s": round(model, 3),
                     "process_s": med, "max_s": max(med), "mean_s": round(statistics.fmean(med), 3),
                     "max_over_model": round(max(med) / model, 3),
                     "mean_over_model": round(statistics.fmean(med) / model, 3),
                     "leader_s": _med([r["leader_s"] for r in runs]),
                     "result_mb": round(statistics.median(sum(r["result_bytes"]) for r in runs) / 1e6, 2),
                     "leader_parts_s": parts["leader"], "shard_parts_s": parts["shard"]})
    return rows


def test_shard_cost(benchmark, lab, monkeypatch):
    if lab.quick:
        pytest.skip("not part of --quick (each K costs K frontends per package)")
    lab.require(PROJECT)
    p = CORPUS[PROJECT]
    for key, val in p.env().items():
        if key.startswith("GO"):
            monkeypatch.setenv(key, val)
    pkgs = split_packages(lab.results)
    tmp = lab.tmpdir("shardcost")
    comp = compilers(tmp)
    harness._go(["build", *pkgs], p.source_dir())
    cmds = {pkg: harness.compile_command(p.source_dir(), pkg, tmp / f"w{i}") for i, pkg in enumerate(pkgs)}
    steps: list[tuple[str, int]] = [("stock", 0)] + [(s, k) for k in KS for s in SERIES]
    stock: dict[str, list[dict[str, Any]]] = {pkg: [] for pkg in pkgs}
    splits: dict[str, dict[tuple[str, int], list[dict[str, Any]]]] = {pkg: {} for pkg in pkgs}
    loads = [labmod.loadavg()]
    t0 = time.perf_counter()

    def one_round(rnd: int) -> None:
        for i, pkg in enumerate(pkgs):
            argv, cwd = cmds[pkg]
            d = tmp / f"p{i}"
            d.mkdir(exist_ok=True)
            done = {}
            for series, k in (steps if (rnd + i) % 2 == 0 else steps[::-1]):
                done[series, k] = (stock_run(argv, cwd, d) if series == "stock"
                                   else split_run(argv, cwd, d, k, comp[series]))
            stock[pkg].append(done.pop(("stock", 0)))
            for (series, k), r in done.items():
                assert r["sha256"] == stock[pkg][-1]["sha256"], f"{pkg} {series} K={k}: archive differs from stock"
                splits[pkg].setdefault((series, k), []).append(r)
        loads.append(labmod.loadavg())

    benchmark.pedantic(one_round, args=(0,), rounds=1, iterations=1)
    for rnd in range(1, ROUNDS):
        one_round(rnd)
    rows = [r for pkg in pkgs for r in summarize(pkg, stock[pkg], splits[pkg])]
    lab.save("shard_cost", rows, what="measured: CPU time of stock and split compiles (-c=1, GOMAXPROCS=1, "
             "one process at a time) against the model F + B/K", project=PROJECT, ks=list(KS), rounds=ROUNDS,
             series={"before": f"patches 0001-{BASELINE_PATCHES:04d}", "after": "the whole series"},
             patches=[f.name for f in compiler_patch.patch_files()], loadavg_during=loads,
             seconds=round(time.perf_counter() - t0, 1), cpu_count=os.cpu_count())
    benchmark.extra_info.update(packages=len(pkgs), rows=len(rows))
    assert all(r["model_s"] > 0 and len(r["process_s"]) == r["k"] for r in rows)
