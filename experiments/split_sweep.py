"""The simulation experiment's steps: which packages to split, and the sweep of makespans over k.

Experiment 2 (test_2_simulation.py) simulates schedules of a real build's
action graph on k workers (fgo.analysis.simulate). This module holds its steps:
the duration source of the graph (`durations`), the choice of the packages to
split (`choose_splits`: critical-path compiles, F/B/D measured), the sweep with
the best shard count K per k (`best_k_sweep`), real shard times for policy (c)
measured (`measure_shards`, `measured_specs`, `add_measured`), and the tables
and metadata stored with the results (`spec_rows`, `simulation_meta`, and back:
`specs_from_rows`, `shards_from_rows`). Shared by test_2_simulation.py (which
measures F/B/D) and resim.py (which re-runs the simulations from stored
results, e.g. with real shard times).

Two duration sources per graph, each its own results file:
  "wall": the recorded action durations (TimeDone - TimeStart), what go saw;
  "cpu":  user + sys time of the action's commands plus go's own time around
          them (`Action.cpu_s`): on a machine loaded by other work the wall
          durations stretch with that load, the CPU time of a -c=1 compile
          hardly does.

Two versions of policy (c):
  modelled: every shard of a split package takes F + B/K (F/B/D from -bench);
  measured: the shards take the CPU time of the patched compiler's real shard
            processes (lab.shard_times; single-threaded, so their time alone):
            shard 0 is the leader's less its dumpobj D, which stays with the
            merge node. Only the K that were
            measured are chosen from, and a package whose split could not be
            measured stays whole: the two are never mixed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import networkx as nx

from fgo.analysis import graph
from fgo.analysis import simulate as sim

# Splitting candidates: critical-path compiles of at least MIN_SPLIT_S seconds,
# two per round (measured at once), found again after each round (the path moves), at most MAX_SPLIT.
MIN_SPLIT_S = 0.5
MAX_SPLIT = 12
QUICK_MAX_SPLIT = 4
SHARD_CHOICES = (1, 2, 4, 8, 16)
SOURCES = {"wall": "duration", "cpu": "cpu"}
# Real shard runs for (c) measured: per project, the shard counts K (each K costs
# about K*F + B per package); the projects not listed get only the modelled (c).
MEASURED_SHARDS = {"etcd": (2, 8)}
QUICK_MEASURED_SHARDS = {"gin": (2,)}


def durations(g: nx.DiGraph, source: str) -> dict[Any, float]:
    return graph.node_weights(g, SOURCES[source])


def choose_splits(g: nx.DiGraph, phases_of: Callable[[list[str]], Mapping[str, Mapping[str, float]]],
                  dur: Mapping[Any, float], min_s: float = MIN_SPLIT_S, max_n: int = MAX_SPLIT,
                  k_big: int = 16, per_round: int = 2) -> dict[str, sim.SplitSpec]:
    """F/B/D for the compiles that make up the critical path: each round takes the PER_ROUND
    longest of the current path (measured at once, one per core), then the path moves."""
    specs: dict[str, sim.SplitSpec] = {}
    while len(specs) < max_n:
        h, hd = sim.split_graph(g, specs, k_big, dur)
        path = graph.critical_path(h, hd)[1]
        cand = sorted((n for n in path if h.nodes[n].get("mode") == "build" and hd[n] >= min_s
                       and h.nodes[n]["package"] not in specs), key=lambda n: -hd[n])
        if not cand:
            break
        pkgs = [h.nodes[n]["package"] for n in cand[:min(per_round, max_n - len(specs))]]
        phases = phases_of(pkgs)
        for pkg in pkgs:
            specs[pkg] = sim.spec_from_phases(phases[pkg])
    return specs


def _const(kk: int) -> Callable[[int], int]:
    return lambda _k: kk


def best_k_sweep(g: nx.DiGraph, ks: Sequence[int], specs: Mapping[str, sim.SplitSpec],
                 dur: Mapping[Any, float], choices: Sequence[int] = SHARD_CHOICES) -> list[dict[str, Any]]:
    """sim.sweep with (c) taken as the best K in CHOICES (K <= k) for each k."""
    rows = []
    for k in ks:
        best = None
        for kk in [x for x in choices if x <= k]:
            r = sim.sweep(g, [k], dur, specs=specs, shards_for_k=_const(kk))[0]
            if best is None or r["split_cp_list"] < best["split_cp_list"]:
                best = r
        assert best is not None
        rows.append({key: (round(v, 3) if isinstance(v, float) else v) for key, v in best.items()})
    return rows


def measure_shards(specs: Mapping[str, sim.SplitSpec], ks: Sequence[int],
                   run_split: Callable[[str, int], Mapping[str, Any]]) -> dict[str, dict[int, list[float]] | str]:
    """Real shard times {package: {K: [shard 0 .. K-1 seconds]}}, or the reason a package
    could not be split. RUN_SPLIT(package, K) is lab.shard_times."""
    out: dict[str, dict[int, list[float]] | str] = {}
    for pkg, spec in specs.items():
        try:
            runs = {k: run_split(pkg, k) for k in ks}
        except RuntimeError as exc:  # e.g. the patched compiler refuses this package
            out[pkg] = str(exc).splitlines()[0][:200]
            continue
        out[pkg] = {k: [round(max(r["leader_s"] - spec.merge_s, 0.0), 3), *r["shards_s"]]
                    for k, r in runs.items()}
    return out


def measured_specs(specs: Mapping[str, sim.SplitSpec],
                   shards: Mapping[str, Mapping[int, Sequence[float]] | str]) -> dict[str, sim.SplitSpec]:
    """The packages whose shards were measured, their shard times in place of F + B/K."""
    return {pkg: dataclasses.replace(spec, shard_s=shards[pkg]) for pkg, spec in specs.items()
            if isinstance(shards.get(pkg), Mapping)}


def add_measured(rows: list[dict[str, Any]], g: nx.DiGraph, ks: Sequence[int],
                 specs: Mapping[str, sim.SplitSpec], dur: Mapping[Any, float],
                 shard_ks: Sequence[int]) -> None:
    """Add (c) measured to the sweep's ROWS: measured_cp_list, measured_shards (K),
    measured_span_split, measured_lower_bound_split."""
    for r, m in zip(rows, best_k_sweep(g, ks, specs, dur, choices=(1, *shard_ks)), strict=True):
        r.update(measured_cp_list=m["split_cp_list"], measured_shards=m["shards"],
                 measured_span_split=m["span_split"], measured_lower_bound_split=m["lower_bound_split"])


def spec_rows(g: nx.DiGraph, specs: Mapping[str, sim.SplitSpec], dur: Mapping[Any, float],
              walls: Mapping[str, float],
              shards: Mapping[str, Mapping[int, Sequence[float]] | str] | None = None) -> list[dict[str, Any]]:
    """The split table: one row per package (measured phases, the action's duration, and
    the measured shard times or why there are none)."""
    from fgo.analysis import actiongraph as ag
    rows = []
    for pkg, spec in specs.items():
        n = ag.find_action(g, pkg)
        row = {"package": pkg, "action_s": round(dur[n], 3),
               "compile_c1_wall_s": round(walls.get(pkg, 0.0), 3),
               "frontend_s": round(spec.frontend_s, 3), "backend_s": round(spec.backend_s, 3),
               "merge_s": round(spec.merge_s, 3),
               "backend_frac": round(spec.backend_s / spec.total_s, 3) if spec.total_s else 0}
        got = (shards or {}).get(pkg)
        if isinstance(got, Mapping):
            row["measured_shard_s"] = {str(k): list(v) for k, v in got.items()}
        elif got is not None:
            row["measured_error"] = got
        rows.append(row)
    return rows


def specs_from_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, sim.SplitSpec]:
    """The modelled SplitSpecs back from a stored split table."""
    return {r["package"]: sim.SplitSpec(r["frontend_s"], r["backend_s"], r["merge_s"]) for r in rows}


def shards_from_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, list[float]] | str]:
    """The measured shard times (or the reasons) back from a stored split table."""
    out: dict[str, dict[int, list[float]] | str] = {}
    for r in rows:
        if r.get("measured_shard_s"):
            out[r["package"]] = {int(k): list(v) for k, v in r["measured_shard_s"].items()}
        elif r.get("measured_error"):
            out[r["package"]] = r["measured_error"]
    return out


def from_shard_cost(rows: Sequence[Mapping[str, Any]], series: str = "after"
                    ) -> tuple[dict[str, sim.SplitSpec], dict[str, dict[int, list[float]]]]:
    """Item 10's results (results/shard_cost.json rows) as SplitSpecs and measured shard
    times of SERIES: F/B/D brought to CPU time (the stock process's CPU time over its
    -bench total) like the shard times, which are CPU times."""
    specs: dict[str, sim.SplitSpec] = {}
    shards: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if r["series"] != series:
            continue
        c = r["cpu_over_bench"]
        specs[r["package"]] = sim.SplitSpec(r["F_s"] * c, r["B_s"] * c, r["D_s"] * c)
        shards.setdefault(r["package"], {})[int(r["k"])] = list(r["process_s"])
    return specs, shards


def simulation_meta(name: str, source: str, g: nx.DiGraph, dur: Mapping[Any, float],
                    input_build: Mapping[str, Any], split_rows: list[dict[str, Any]],
                    measured_ks: Sequence[int] = ()) -> dict[str, Any]:
    span, path = graph.critical_path(g, dur)
    return {"what": f"simulated makespans on measured action durations ({source})", "project": name,
            "durations": source, "input_build": dict(input_build), "split_packages": split_rows,
            "shard_choices": list(SHARD_CHOICES), "measured_shard_choices": [1, *measured_ks] if measured_ks else [],
            "actions": g.number_of_nodes(),
            "span_s": span, "work_s": graph.work(g, dur),
            "critical_path": [f"{g.nodes[x].get('mode')} {g.nodes[x].get('package')}" for x in path]}
