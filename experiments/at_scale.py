"""DAS-5 at scale, simulated from committed results (no build runs here).

The inputs are files under experiments/results/, so the simulation reruns in seconds
(experiments/test_11_aws.py, also in --quick):
- aws-sdk-go `service/...`: the action graph and each compile's -bench F, B, D and bytes of
  `python -m experiments.aws graph --scope all` (results/aws_graph_all.json, aws_all/*.gz;
  or the quick subset's, when that is what the graph run produced);
- etcd: the go build of experiment 8's first pair (results/scaleout/etcd-pair0-go
  .actiongraph.json) and the bytes its fgo build moved (etcd-pair0-fgo.report.json);
- fgo's costs over TCP (dispatch, the fixed part of a build) as experiment 9 measured them
  (its TCP row in results/overhead.json; results/das5.json's meta before it had them), the backend's parallel fraction under -c (results/aws_check.json),
  the measured shard times (aws_split.json, shard_cost.json) and export-data times
  (pipeline_measured.json).

Durations are the graphs' CPU times (builds at -p 2 with -c=1 on a shared machine: a compile's
CPU time is its uncontended -c=1 duration, `fgo.analysis.actiongraph.Action.cpu_s`).
Baseline: `go build` on ONE DAS-5 node of 16 cores with its defaults (-p 16, -c from go's
token pool, Amdahl backend speedup, processor sharing: `simulate.gobuild_schedule`).
fgo: 16 slots per node, every compile one slot at -c=1 (fgo's compiles on a worker slot do not
get the node's other cores: conservative for fgo), dispatch + bytes at 1 Gb/s per remote
process, the measured fixed part once (`fgo.analysis.makespan`). The head's node is one of the
nodes: plain and split builds compile on its 16 slots first, without the remote path
(--local-slots); the pipelined ones count every compile as remote. `fgo_with_c` extends the
go build model to fgo's compiles with go's -c on their node (not validated against fgo's runs).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from fgo.analysis import actiongraph as ag
from fgo.analysis import graph
from fgo.analysis import makespan
from fgo.analysis import simulate as sim

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent

NODES = (1, 2, 4, 8)
CORES = 16                    # a DAS-5 node
GBIT_BYTES_PER_S = 125e6      # DAS-5's 1 Gb/s Ethernet
MAX_SHARDS = 8                # fgo's default (fgo.planner.decide.Overheads.max_shards)
MIN_SPLIT_S = 1.0             # a split candidate: a compile of >= 1 s on the critical path
MAX_SPLIT = 24


# ---------------------------------------------------------------- inputs

def read_json(path: Path) -> Any:
    """PATH's JSON (gzip if it ends in .gz), or PATH.gz's."""
    if path.exists() and path.suffix != ".gz":
        return json.loads(path.read_text())
    with gzip.open(path if path.suffix == ".gz" else str(path) + ".gz", "rt") as f:
        return json.load(f)


def aws_graph_doc(results: Path = RESULTS) -> dict[str, Any] | None:
    """The `aws.py graph` run to simulate: scope all if it was run, else quick."""
    for scope in ("all", "quick"):
        p = results / f"aws_graph_{scope}.json"
        if p.exists():
            return json.loads(p.read_text())
    return None


def load_work_graph(path: Path) -> nx.DiGraph:
    return ag.work_graph(ag.parse_records(read_json(path)))


def cpu_durations(g: nx.DiGraph) -> dict[Any, float]:
    return graph.node_weights(g, "cpu")


def das5_costs(results: Path = RESULTS) -> tuple[makespan.Costs, str]:
    """fgo's costs over TCP as experiment 9 measured them (its TCP row's model costs, else
    das5.json's meta, from an earlier TCP run), at 1 Gb/s; the head's CPU is no compile's
    loss (it has a node's cores). With where they came from."""
    doc = json.loads((results / "overhead.json").read_text())
    tcp = next((r for r in doc["rows"] if r.get("pair") == "tcp" and "model_fixed_s" in r), None)
    if tcp is not None:
        return (makespan.Costs(dispatch_s=tcp["model_dispatch_s"], fixed_s=tcp["model_fixed_s"],
                               bytes_per_s=GBIT_BYTES_PER_S),
                f"overhead.json's TCP row (experiment 9, {doc['meta'].get('date', '?')})")
    m = json.loads((results / "das5.json").read_text())["meta"]
    return (makespan.Costs(dispatch_s=m["dispatch_s"], fixed_s=m["fixed_s"],
                           bytes_per_s=GBIT_BYTES_PER_S),
            f"das5.json meta (an earlier TCP run, {m.get('date', '?')})")


def parallel_fractions(results: Path = RESULTS) -> tuple[dict[str, float], float]:
    """({package: measured parallel fraction}, the default): aws_check's quiet -c=1/-c=2
    pairs and their B-weighted value for go's own packages (0.66)."""
    b = json.loads((results / "aws_check.json").read_text())["backend_parallel_fraction"]
    return ({p: v["parallel"] for p, v in b["measured_quiet"].items()},
            b["std_cmd_default_B_weighted"])


def export_fracs(results: Path = RESULTS) -> tuple[dict[str, float], float]:
    """When each compile's export data came, as a share of its time: the median over
    experiment 7's pipelined builds (pipeline_measured.json), and the median of all."""
    seen: dict[str, list[float]] = {}
    for r in json.loads((results / "pipeline_measured.json").read_text())["rows"]:
        rep = REPO / str(r.get("report"))
        if r.get("side") == "pipeline" and rep.exists():
            for pkg, x in (json.loads(rep.read_text()).get("speculation") or {}).get(
                    "export_fracs", {}).items():
                seen.setdefault(pkg, []).append(x)
    fracs = {p: statistics.median(xs) for p, xs in seen.items()}
    return fracs, (statistics.median(fracs.values()) if fracs else 0.42)


# ---------------------------------------------------------------- shapes and splits

def shapes(g: nx.DiGraph, dur: Mapping[Any, float], fbd: Mapping[str, Mapping[str, float]],
           fractions: Mapping[str, float], default: float) -> dict[Any, sim.CompileShape]:
    """Each compile's F, B, D (FBD: {package: {F, B, D}}, else simulate.DEFAULT_SHARES) and
    backend parallel fraction (FRACTIONS, else DEFAULT), scaled to its duration in DUR."""
    phases = {}
    for n in g:
        pkg = g.nodes[n].get("package")
        x = fbd.get(pkg) if g.nodes[n].get("mode") == "build" else None
        if x and x.get("F", 0) + x.get("B", 0) + x.get("D", 0) > 0:
            phases[n] = sim.CompileShape(x["F"], x["B"], x["D"], fractions.get(pkg, default))
    return sim.compile_shapes(g, dur, phases, lambda _b: default)


def split_specs(g: nx.DiGraph, dur: Mapping[Any, float], shp: Mapping[Any, sim.CompileShape],
                measured: Mapping[str, sim.SplitSpec], k: int = MAX_SHARDS,
                min_s: float = MIN_SPLIT_S, max_n: int = MAX_SPLIT) -> dict[str, sim.SplitSpec]:
    """What --split-large splits: the compiles of >= MIN_S on the critical path, found again
    as the path moves (the longest first), at most MAX_N. A package with measured shard
    times (MEASURED) keeps them; the others F + B/K from their shape."""
    specs: dict[str, sim.SplitSpec] = {}
    by_pkg = {g.nodes[n]["package"]: n for n in shp}
    while len(specs) < max_n:
        h, hd = sim.split_graph(g, specs, shards_for(specs, k), dur)
        path = graph.critical_path(h, hd)[1]
        cand = [n for n in path if h.nodes[n].get("mode") == "build" and n in shp
                and hd[n] >= min_s and h.nodes[n]["package"] not in specs]
        if not cand:
            break
        pkg = g.nodes[max(cand, key=lambda n: hd[n])]["package"]
        s = shp[by_pkg[pkg]]
        specs[pkg] = measured.get(pkg) or sim.SplitSpec(s.F, s.B, s.D)
    return specs


def best_k(spec: sim.SplitSpec, k: int = MAX_SHARDS) -> int:
    """The shard count: with measured shard times the measured K <= k of the shortest
    split span, else k (F + B/K only shrinks with K)."""
    if spec.shard_s:
        ks = [kk for kk in spec.shard_s if kk <= k]
        if ks:
            return min(ks, key=lambda kk: (spec.split_span(kk), kk))
    return k


def shards_for(specs: Mapping[str, sim.SplitSpec], k: int = MAX_SHARDS) -> Any:
    """split_graph's SHARDS: package -> its K."""
    ks = {p: best_k(s, k) for p, s in specs.items()}
    return lambda pkg: ks.get(pkg, 1)


# ---------------------------------------------------------------- the table

POLICIES = ("plain", "split", "pipelined", "pipelined_split", "pipelined_fgo")


def split_shapes(h: nx.DiGraph, hd: Mapping[Any, float], shp: Mapping[Any, sim.CompileShape],
                 specs: Mapping[str, sim.SplitSpec]) -> dict[Any, sim.CompileShape]:
    """Shapes for `split_graph`'s H: whole compiles keep theirs; a modelled shard (F + B/K)
    is a compile of F then B/K with its package's parallel fraction, so -c helps it as it
    helps the whole; measured shards and merges run on one thread."""
    out = {}
    for n in h:
        mode = h.nodes[n].get("mode")
        if mode == "build" and n in shp:
            out[n] = shp[n]
        elif mode == "split shard" and not specs[h.nodes[n]["package"]].shard_s:
            whole = shp[n[0]]
            f = min(whole.F, hd[n])
            out[n] = sim.CompileShape(f, hd[n] - f, 0.0, whole.parallel)
    return out


def fgo_with_c(g: nx.DiGraph, dur: Mapping[Any, float], shp: Mapping[Any, sim.CompileShape],
               costs: makespan.Costs, nbytes: Mapping[Any, float], nodes: int, cores: int,
               remote: Any = makespan.is_compile) -> float:
    """fgo on NODES nodes, its compiles with go's -c (an extension of the go build model, not
    validated against fgo's runs): the head's go build hands each compile its -c from its
    token pool (-p = all slots) and fgo passes it on; a compile's threads share its node's
    cores; dispatch and transfer hold the slot first; fgo's fixed part once."""
    delays = {n: costs.per_compile(nbytes.get(n[0] if isinstance(n, tuple) else n, 0.0))
              for n in g if remote(g, n)}
    return costs.fixed_s + sim.gobuild_schedule(g, sim.GoBuild(cores, nodes=nodes), dur, shp,
                                                delays=delays).makespan


def go_fixed(wall_s: float, raw: nx.DiGraph) -> float:
    """go build's time outside its actions: its measured WALL_S less the span of the actions
    its graph RAW recorded (loading packages, planning, exit)."""
    return max(0.0, wall_s - ag.width_stats(ag.recorded_intervals(raw))["elapsed_s"])


def split_floor_span(g: nx.DiGraph, dur: Mapping[Any, float],
                     shp: Mapping[Any, sim.CompileShape]) -> float:
    """The span of G with every compile split into as many shards as nodes could run, at
    no cost: what remains of each compile is its frontend F, which every shard repeats,
    and its object D, which the leader writes once (SHP: each compile's F, B, D, scaled to
    its duration). No number of nodes or shards gives a split build of fgo's design a
    shorter critical path."""
    d = dict(dur)
    for n, s in shp.items():
        d[n] = s.F + s.D
    return graph.span(g, d)


def split_remote(g: nx.DiGraph, n: Any) -> bool:
    """Remote processes of a split graph: whole compiles and shards (the merge continues
    the leader's process)."""
    return g.nodes[n].get("tool") == "compile" and g.nodes[n].get("mode") in ("build", "split shard")


def das5_rows(project: str, g: nx.DiGraph, dur: Mapping[Any, float],
              shp: Mapping[Any, sim.CompileShape], specs: Mapping[str, sim.SplitSpec],
              costs: makespan.Costs, nbytes: Mapping[Any, float],
              fracs: Mapping[str, float], default_frac: float, go_fixed_s: float = 0.0,
              nodes: Sequence[int] = NODES, cores: int = CORES) -> list[dict[str, Any]]:
    """One row per cluster size: go build on one node of CORES with -c (the baseline),
    DistGo-style levels, fgo plain, --split-large, pipelined, pipelined + split, each
    with fgo's costs; the ratios over go build on one node and over levels. GO_FIXED_S:
    go build's own time outside its actions (loading packages; measured), added to the
    baseline (fgo's measured fixed part includes the go build it runs). fgo splits
    only with another node to split onto (fgo.planner.decide: on one host -c already uses
    the cores)."""
    gob = go_fixed_s + sim.gobuild_schedule(g, sim.GoBuild(cores), dur, shp).makespan
    # fgo runs the same go build, which loads the same packages: it pays go's part too
    costs = dataclasses.replace(costs, fixed_s=costs.fixed_s + go_fixed_s)
    # pipelining: dependents' compiles wait for the export data (its measured share of the
    # compile); split packages: their frontend F, then B/K per shard, D after
    piped_specs: dict[Any, sim.SplitSpec] = {}
    for n in g:
        if makespan.is_compile(g, n):
            pkg = g.nodes[n].get("package", "")
            s = specs.get(pkg)
            if s is not None and not s.shard_s:
                piped_specs[n] = s
            else:
                f = fracs.get(pkg, default_frac)
                piped_specs[n] = sim.SplitSpec(f, 1.0 - f, 0.0)
    shards = shards_for(specs)
    work = graph.work(g, dur)
    floor_span = split_floor_span(g, dur, shp)
    rows = []
    for nn in nodes:
        k = nn * cores
        use = specs if nn > 1 else {}
        h, hd = sim.split_graph(g, use, shards, dur)
        hbytes = {n: nbytes.get(n[0] if isinstance(n, tuple) else n, 0.0) for n in h}
        # the head's node is one of the NN: its cores compile first, without the remote path
        plain = makespan.predict(g, k, dur, costs, nbytes, local_slots=cores)
        split = makespan.predict(h, k, hd, costs, hbytes, remote=split_remote, local_slots=cores)
        levels = costs.fixed_s + sim.level_schedule(g, k, makespan.with_costs(g, dur, costs, nbytes)).makespan
        piped = makespan.predict_processes(g, k, dur, costs, piped_specs, None, nbytes)
        pshards = {n: shards(g.nodes[n]["package"]) for n in g
                   if nn > 1 and makespan.is_compile(g, n) and g.nodes[n]["package"] in specs}
        piped_split = makespan.predict_processes(g, k, dur, costs, piped_specs, pshards, nbytes)
        # pipelining as fgo runs it (the model validated on its pipelined builds): go build
        # drives, speculations fill the remote slots it leaves idle
        piped_fgo = makespan.predict_pipelined(g, k, dur, costs, fracs, default_frac, nbytes,
                                               local_slots=cores)
        # a design, not built: the head's own compiles (the critical path's, on its slots
        # first) would send their export data early too
        piped_head = makespan.predict_pipelined(g, k, dur, costs, fracs, default_frac, nbytes,
                                                local_slots=cores, head_exports=True)
        plain_c = fgo_with_c(g, dur, shp, costs, nbytes, nn, cores)
        split_c = fgo_with_c(h, hd, split_shapes(h, hd, shp, use), costs, hbytes, nn, cores,
                             split_remote)
        row: dict[str, Any] = {"project": project, "nodes": nn, "slots": k,
                               "plain_c_s": round(plain_c, 2), "split_c_s": round(split_c, 2),
                               "plain_c_over_go_build": round(gob / plain_c, 3),
                               "split_c_over_go_build": round(gob / split_c, 3),
                               "go_build_1_node_s": round(gob, 2), "levels_s": round(levels, 2),
                               "plain_s": round(plain, 2), "split_s": round(split, 2),
                               "pipelined_s": round(piped, 2),
                               "pipelined_split_s": round(piped_split, 2),
                               "pipelined_fgo_s": round(piped_fgo, 2),
                               "pipelined_head_exports_s": round(piped_head, 2),
                               "split_packages": len(use)}
        for key in POLICIES:
            row[f"{key}_over_go_build"] = round(gob / row[f"{key}_s"], 3)
            row[f"{key}_over_levels"] = round(levels / row[f"{key}_s"], 3)
        row["pipelined_head_exports_over_go_build"] = round(gob / piped_head, 3)
        # what no split of fgo's design can beat (its serial parts, no overhead at all)
        row["split_floor_s"] = round(costs.fixed_s + max(work / k, floor_span), 2)
        row["split_floor_over_go_build"] = round(gob / row["split_floor_s"], 3)
        best = min(POLICIES, key=lambda key: row[f"{key}_s"])
        # the schedules alone: both sides without their fixed parts
        row.update(best=best, best_over_go_build=row[f"{best}_over_go_build"],
                   best_actions_over_go_build=round(
                       (gob - go_fixed_s) / max(1e-9, row[f"{best}_s"] - costs.fixed_s), 3))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- where fgo cannot help

def parallelism_row(corpus: str, work: float, span: float, span_split: float | None,
                    source: str, cores: int = CORES) -> dict[str, Any]:
    """Work, span, parallelism = work/span and what it bounds: no schedule beats
    max(work/slots, span), so a build on n nodes of CORES is at most
    min(n*CORES, P) / min(CORES, P) times faster than on one (P = the parallelism; go's -c
    on one node is ignored here, which only lowers the bound). With P <= CORES one node
    already holds all the parallelism: more nodes gain nothing unless a split shortens
    the span."""
    p = work / span if span > 0 else 0.0
    row = {"corpus": corpus, "work_s": round(work, 2), "span_s": round(span, 2),
           "parallelism": round(p, 2), "nodes_that_help": max(1, math.ceil(p / cores)),
           "bound_8_nodes_over_1": round(speedup_bound(p, 8, cores), 2), "source": source}
    if span_split:
        row.update(span_split_s=round(span_split, 2), parallelism_split=round(work / span_split, 2))
    return row


def speedup_bound(p: float, nodes: int, cores: int = CORES) -> float:
    """The work/span bound on n nodes over one node, for parallelism P."""
    return min(nodes * cores, p) / min(cores, p) if p > 0 else 1.0
