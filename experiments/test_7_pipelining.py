"""Item 7 (issue 15): pipelined compilation — early export data, and its simulated effect.

1. Early export data is final (measured, not simulated): `go build -a -toolexec` with
   fgo.compiler.early_export as the wrapper over the whole corpus (std and cmd; etcd; gin):
   every compile runs the patched compiler with `-fgoexport` (patch 0013), and for std+cmd
   also the stock compiler on the same command line; per compile, whether the early file
   equals the final archive up to the end of `__.PKGDEF`, whether the patched archive equals
   the stock one (the flag must not change the object), and when the early file appeared,
   as a fraction of the compile's wall time. Results: results/early_export.json (one row per corpus;
   the packages whose early export data differs must not be pipelined).
2. Pipelining simulated (fgo.analysis.simulate.pipelined_graph): the cold `go build -a`
   of each project with `-gcflags=all=-bench=FILE`, GOMAXPROCS=2, its action graph with
   CPU durations (`Action.cpu_s`) and every compile's F/B/D from its own -bench run; list
   scheduling without and with pipelining, alone and with the large critical-path
   packages split (F + B/K + D, K the best of 1..16 <= k), DistGo-style levels for
   reference, k = 1..64; where part 1 ran first, also pipelined at the moment the patched
   compiler actually wrote the export data (after walk, later than the -bench frontend).
   Results: results/pipeline_<project>.json.
3. Pipelining measured (`test_pipelining_measured`): in item 8's arrangement for whole
   builds (the head's own slot on core 0, one emulated single-core host on core 1 in a
   network namespace behind a 1 Gb/s link; experiments/hosts.py), cold `-a`
   builds with `fgo build --no-pipeline` and `--pipeline`, alternating, PIPELINE_PAIRS
   pairs: wall times, the speculations (started, taken, missed and why, how much earlier
   the taken ones started than go build asked, time wasted), every binary against one plain `go build -a` into an empty GOCACHE of its own.
   Beside each pipelined wall, the simulator's prediction for it (fgo.analysis.makespan
   .predict_pipelined, the head's slot first and sending no export data early): the
   unpipelined build of the same pair replayed with its compiles' own tool times (fgo's
   report) and its fixed cost, each compile's dependents released when its
   export data came in the *other* pairs' pipelined builds (leave one out).
   Results: results/pipeline_measured.json;
   `.venv/bin/pytest experiments/test_7_pipelining.py --benchmark -k "measured and etcd"`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from experiments.gap import tool_seconds
from experiments.lab import CORPUS, GOCODE, QUICK_CORPUS, SIM_KS
from experiments.test_8_scaleout import (  # noqa: F401  (hosts: a fixture)
    WHOLE_HOSTS,
    WHOLE_OPTS,
    fgo_side,
    hosts,
    rel,
)
from fgo.compiler import early_export

# corpus name -> (targets, GOPATH mode, also compile with the stock compiler). The stock
# comparison doubles the compiles; it runs on std+cmd (the most packages), while etcd and
# gin (whose std part std+cmd covers) check the early export data only.
EXPORT_CORPORA = {
    "std+cmd": (["std", "cmd"], False, True),
    "etcd": ([CORPUS["etcd"].target], True, False),
    "gin": ([CORPUS["gin"].target], True, False),
}


# the part-1 log whose compiles are the simulated project's
EXPORT_LOG = {"etcd": "etcd", "gin": "gin", "cmd/go": "std_cmd", "cmd/compile": "std_cmd"}


def _quick(name: str) -> list:
    return [pytest.mark.quick] if name in QUICK_CORPUS else []


@pytest.mark.parametrize("corpus", [pytest.param(c, marks=_quick(c)) for c in EXPORT_CORPORA])
def test_early_export_identity(benchmark, lab, corpus: str) -> None:
    targets, gopath, stock = EXPORT_CORPORA[corpus]
    if gopath:
        lab.require(corpus)
    env = CORPUS["gin"].env() if gopath else CORPUS["cmd/go"].env()
    log = lab.raw / f"early_export_{corpus.replace('+', '_')}.jsonl"
    cache = lab.tmpdir("gocache")
    recs = benchmark.pedantic(early_export.check_build, args=(targets, log, cache),
                              kwargs={"env": env, "cwd": GOCODE if gopath else None, "stock": stock},
                              rounds=1, iterations=1)
    lab.drop(cache)
    compiled = [r for r in recs if r.get("rc") == 0]
    differ = sorted({r["pkg"] for r in compiled if not r.get("identical")})
    not_stock = sorted({r["pkg"] for r in compiled if stock and not r.get("stock_identical")})
    fracs = [r["export_ready_frac"] for r in compiled if r.get("export_ready_frac") is not None]
    big = [r["export_ready_frac"] for r in compiled
           if r.get("export_ready_frac") is not None and r["wall_s"] >= 1.0]
    row = {"corpus": corpus, "targets": " ".join(targets), "compiles": len(compiled),
           "failed": len(recs) - len(compiled),
           "identical": sum(1 for r in compiled if r.get("identical")), "not_identical": len(differ),
           "stock_checked": stock, "stock_identical": sum(1 for r in compiled if r.get("stock_identical")) if stock else None,
           "not_stock_identical": len(not_stock) if stock else None,
           "ready_frac_median": round(statistics.median(fracs), 3) if fracs else None,
           "ready_frac_median_1s": round(statistics.median(big), 3) if big else None,
           "compiles_1s": len(big),
           "differ": differ, "differ_why": {r["pkg"]: r.get("why") for r in compiled if not r.get("identical")},
           "not_stock": not_stock, "log": str(log.relative_to(lab.results.parent.parent))
           if log.is_relative_to(lab.results.parent.parent) else str(log)}
    row.update(command=lab.command, date=lab.meta()["date"])
    # one row per corpus; rows of the other corpora from earlier sessions are kept (each
    # row says which command and when)
    table = lab.table("early_export")
    if not table and (lab.results / "early_export.json").exists():
        prev = json.loads((lab.results / "early_export.json").read_text())
        table[:] = [{"command": prev["meta"].get("command"), "date": prev["meta"].get("date"), **r}
                    for r in prev["rows"]]
    table[:] = sorted([r for r in table if r["corpus"] != corpus] + [row],
                      key=lambda r: list(EXPORT_CORPORA).index(r["corpus"]))
    lab.save("early_export", table,
             what="early export data (-fgoexport, patch 0013) against the final archive, and the "
                  "patched archive against stock, every compile of the corpus (measured)")
    benchmark.extra_info.update({k: v for k, v in row.items() if not isinstance(v, (list, dict))})
    assert compiled and not row["failed"], f"{row['failed']} compiles failed"
    assert not not_stock, f"-fgoexport changed the archive of {not_stock}"
    assert all(0.0 <= f <= 1.0 for f in fracs)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_quick(n)) for n in CORPUS])
def test_pipelining_simulation(benchmark, lab, name: str) -> None:
    from experiments import pipeline_sweep as ps
    from fgo.analysis import actiongraph as ag
    from fgo.analysis import graph

    if name not in lab.projects():
        pytest.skip("not in this run's corpus")
    build, bench_text = lab.bench_build(name)
    g = ag.work_graph(build.graph())
    dur = graph.node_weights(g, "cpu")
    specs = ps.node_specs(g, bench_text)
    splits = ps.choose_splits(g, specs, dur, max_n=4 if lab.quick else 12)
    # when the patched compiler wrote the export data, from part 1's log of the same sources
    log = lab.raw / f"early_export_{EXPORT_LOG[name]}.jsonl"
    ready_frac = {r["pkg"]: r["export_ready_frac"] for r in early_export.read_log(log)
                  if r.get("identical") and r.get("export_ready_frac") is not None}
    ready = ps.ready_specs(g, specs, ready_frac) if ready_frac else None
    rows = benchmark.pedantic(ps.sweep, args=(g, SIM_KS, specs, dur, splits),
                              kwargs={"ready": ready}, rounds=1, iterations=1)
    compiles = sum(1 for n in g if g.nodes[n].get("mode") == "build")
    span, path = graph.critical_path(g, dur)
    lab.save(f"pipeline_{name.replace('/', '_')}", rows,
             what="simulated makespans with pipelined compilation (CPU durations, -bench F/B/D)",
             project=name, durations="cpu", input_build=build.row(), compiles=compiles,
             compiles_with_phases=len(specs), frontend_share=round(ps.frontend_share(g, specs, dur), 3),
             split_packages=[g.nodes[n]["package"] for n in splits], shard_choices=list(ps.SHARD_CHOICES),
             export_ready_from=str(log.relative_to(lab.results)) if ready else None,
             compiles_with_export_ready=sum(1 for n in specs if ready and ready[n] is not specs[n]),
             longest_compiles=ps.phase_table(g, specs, dur),
             critical_path=[f"{g.nodes[x].get('mode')} {g.nodes[x].get('package')}" for x in path])
    assert len(specs) >= 0.95 * compiles, f"only {len(specs)} of {compiles} compiles have -bench phases"
    one = rows[0]
    assert one["k"] == 1 and abs(one["pipelined"] - one["work"]) < 1e-3 * max(1.0, one["work"])
    for r in rows:
        assert r["pipelined"] >= r["lower_bound_pipelined"] - 1e-3
        assert r["span_pipelined"] <= r["span"] + 1e-3  # waiting for less never lengthens the span
        assert r["split_cp_list"] <= r["cp_list"] + 1e-3 and r["pipelined_split"] <= r["pipelined"] + 1e-3
    benchmark.extra_info.update(project=name, compiles=compiles, splits=len(splits))


PIPELINE_PAIRS = int(os.environ.get("FGO_PIPELINE_PAIRS", "3"))
HIT_RATE_TARGET, PREDICTION_TOLERANCE = 0.95, 0.15


def _oracle(lab, p) -> str:
    """sha256 of a plain `go build -a` of P into an empty GOCACHE of its own."""
    from fgo import toolchain
    cache, out = lab.tmpdir("oracle-cache"), lab.tmpdir("oracle-out")
    binary = out / "oracle.bin"
    proc = subprocess.run([str(toolchain.go_binary()), "build", "-a", "-o", str(binary), p.target],
                          env=p.env(GOCACHE=str(cache)), cwd=p.source_dir(), capture_output=True,
                          text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    digest = toolchain.file_sha256(binary)
    lab.drop(cache)
    lab.drop(out)
    return digest


def _predictions(rows: list[dict]) -> None:
    """Each pipelined run's predicted wall (see the module docstring, part 3), in place."""
    from fgo.analysis import actiongraph as ag
    from fgo.analysis import makespan
    by_pair = {(r["pair"], r["side"]): r for r in rows}
    fracs = {r["pair"]: json.loads(Path(lab_path(r["report"])).read_text())
             .get("speculation", {}).get("export_fracs", {})
             for r in rows if r["side"] == "pipeline"}
    for r in rows:
        base = by_pair.get((r["pair"], "no-pipeline"))
        if r["side"] != "pipeline" or base is None:
            continue
        others = [f for pair, f in fracs.items() if pair != r["pair"]] or list(fracs.values())
        merged: dict[str, list[float]] = {}
        for f in others:
            for pkg, x in f.items():
                merged.setdefault(pkg, []).append(x)
        frac = {pkg: statistics.median(xs) for pkg, xs in merged.items()}
        default = statistics.median(frac.values()) if frac else 1.0
        g = ag.work_graph(ag.load(lab_path(base["actiongraph"])))
        report = json.loads(Path(lab_path(base["report"])).read_text())
        dur = tool_durations(g, report)
        costs = makespan.Costs(fixed_s=makespan.costs_from_run(report, base["wall_s"]).fixed_s)
        # two slots, the head's own first (--local-slots 1): it compiles stock, no early export
        replay = makespan.predict(g, 2, dur, costs, local_slots=1)
        predicted = makespan.predict_pipelined(g, 2, dur, costs, frac, default, local_slots=1)
        r.update(predicted_s=round(predicted, 3), error=round(predicted / r["wall_s"] - 1, 4),
                 replayed_unpipelined_s=round(replay, 3),
                 replay_error=round(replay / base["wall_s"] - 1, 4),
                 export_frac_packages=len(frac), export_frac_default=round(default, 3))


def tool_durations(g, report: dict) -> dict:
    """Each action's seconds in G (go's action graph), a compile's from fgo's REPORT: the
    compiler's own time where it ran. go's graph times a compile from its request to its
    answer, and go build keeps one more compile asked for than there are slots (-p 3 for
    two), so its times hold the wait for a slot: replayed, they made a build 45% longer
    than it was."""
    tool = {a["package"]: tool_seconds(a) for a in report.get("actions", [])
            if a.get("tool") == "compile" and a.get("duration_s")}
    return {n: tool[g.nodes[n]["package"]]
            if g.nodes[n].get("mode") == "build" and g.nodes[n].get("package") in tool
            else g.nodes[n].get("duration") or 0.0 for n in g}


def lab_path(path: str) -> Path:
    from experiments import lab as labmod
    return Path(path) if Path(path).is_absolute() else labmod.REPO / path


@pytest.mark.parametrize("hosts", [WHOLE_HOSTS], indirect=True, ids=["head+1host"])
@pytest.mark.parametrize("name", ["etcd", "cmd/compile"])
def test_pipelining_measured(benchmark, lab, hosts, name: str) -> None:  # noqa: F811
    if lab.quick:
        pytest.skip("not part of --quick (an emulated host, several cold builds)")
    lab.require(name)
    p = CORPUS[name]
    store = lab.results / "pipeline_measured"
    store.mkdir(parents=True, exist_ok=True)
    tag = name.replace("/", "_")
    oracle = _oracle(lab, p)
    rows: list[dict] = []

    def pairs() -> None:
        for i in range(PIPELINE_PAIRS):
            for side in (("no-pipeline", "pipeline") if i % 2 == 0 else ("pipeline", "no-pipeline")):
                cache = lab.tmpdir("gocache")
                report = store / f"{tag}-pair{i}-{side}.report.json"
                graph = store / f"{tag}-pair{i}-{side}.actiongraph.json"
                run, binary, cmd, cpu = fgo_side(lab, hosts, p, cache,
                                                 ["-a", f"-debug-actiongraph={graph}"],
                                                 [*WHOLE_OPTS, f"--{side}"], report)
                spec = json.loads(report.read_text()).get("speculation") or {}
                rows.append({"project": name, "pair": i, "side": side, "wall_s": run.wall_s,
                             "head_cpu_s": run.cpu_s, "load1_before": run.load1,
                             "identical": toolchain_sha(binary) == oracle,
                             "report": rel(report), "actiongraph": rel(graph), "command": cmd,
                             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                             **{k: spec.get(k) for k in ("early_exports", "started", "hits",
                                                         "misses", "failed", "unused",
                                                         "hit_rate", "head_start_s", "wasted_s")},
                             "miss_reasons": spec.get("reasons")})
                lab.drop(cache)
                lab.drop(binary.parent)

    benchmark.pedantic(pairs, rounds=1, iterations=1)
    _predictions(rows)
    walls = {(r["pair"], r["side"]): r["wall_s"] for r in rows}
    speedups = [round(walls[(i, "no-pipeline")] / walls[(i, "pipeline")], 3) for i in range(PIPELINE_PAIRS)]
    piped = [r for r in rows if r["side"] == "pipeline"]
    summary = {"project": name, "side": "summary", "pairs": PIPELINE_PAIRS, "speedups": speedups,
               "speedup_median": statistics.median(speedups),
               "hit_rates": [r["hit_rate"] for r in piped],
               "hit_rate_median": statistics.median(r["hit_rate"] or 0.0 for r in piped),
               "prediction_errors": [r["error"] for r in piped],
               "prediction_error_median": statistics.median(r["error"] for r in piped),
               "identical": all(r["identical"] for r in rows),
               "targets": {"hit_rate": HIT_RATE_TARGET, "prediction_tolerance": PREDICTION_TOLERANCE}}
    path = lab.results / "pipeline_measured.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    lab.save("pipeline_measured", [r for r in old if r.get("project") != name] + rows + [summary],
             what="measured: cold -a fgo builds, the head's slot on core 0 and one emulated "
                  "single-core host on core 1 (--local-slots 1), --no-pipeline "
                  "against --pipeline, alternating pairs; the simulator's prediction of each "
                  "pipelined wall (simulated, from the same pair's unpipelined run)",
             pairs=PIPELINE_PAIRS)
    benchmark.extra_info.update({k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    assert summary["identical"], [r for r in rows if not r["identical"]]
    assert all(r["started"] for r in piped), "no speculation ran"


def toolchain_sha(path: Path) -> str:
    from fgo import toolchain
    return toolchain.file_sha256(path)
