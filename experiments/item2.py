"""Item 2's recipe on top of fgo.simulate: which packages to split, and the sweep over k.

Shared by test_2_simulation.py (which measures F/B/D) and resim.py (which
re-runs the simulations from stored results, e.g. with real shard times).

Two duration sources per graph, each its own results file:
  "wall": the recorded action durations (TimeDone - TimeStart), what go saw;
  "cpu":  user + sys time of the action's commands plus go's own time around
          them (`Action.cpu_s`): on a machine loaded by other work the wall
          durations stretch with that load, the CPU time of a -c=1 compile
          hardly does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import networkx as nx

from fgo import simulate as sim

# Splitting candidates: critical-path compiles of at least MIN_SPLIT_S seconds,
# found again after each split (the critical path moves), at most MAX_SPLIT.
MIN_SPLIT_S = 0.5
MAX_SPLIT = 12
QUICK_MAX_SPLIT = 4
SHARD_CHOICES = (1, 2, 4, 8, 16)
SOURCES = {"wall": "duration", "cpu": "cpu"}


def durations(g: nx.DiGraph, source: str) -> dict[Any, float]:
    return sim.node_durations(g, SOURCES[source])


def choose_splits(g: nx.DiGraph, phases_of: Callable[[str], Mapping[str, float]],
                  dur: Mapping[Any, float], min_s: float = MIN_SPLIT_S, max_n: int = MAX_SPLIT,
                  k_big: int = 16) -> dict[str, sim.SplitSpec]:
    """F/B/D for the compiles that make up the critical path, one at a time (the path moves)."""
    specs: dict[str, sim.SplitSpec] = {}
    for _ in range(max_n):
        h, hd = sim.split_graph(g, specs, k_big, dur)
        path = sim.critical_path_nodes(h, hd)
        cand = [n for n in path if h.nodes[n].get("mode") == "build" and hd[n] >= min_s
                and h.nodes[n]["package"] not in specs]
        if not cand:
            break
        pkg = h.nodes[max(cand, key=lambda n: hd[n])]["package"]
        specs[pkg] = sim.spec_from_phases(phases_of(pkg))
    return specs


def _const(kk: int) -> Callable[[int], int]:
    return lambda _k: kk


def best_k_sweep(g: nx.DiGraph, ks: Sequence[int], specs: Mapping[str, sim.SplitSpec],
                 dur: Mapping[Any, float]) -> list[dict[str, Any]]:
    """sim.sweep with (c) taken as the best K in SHARD_CHOICES (K <= k) for each k."""
    rows = []
    for k in ks:
        best = None
        for kk in [x for x in SHARD_CHOICES if x <= k]:
            r = sim.sweep(g, [k], dur, specs=specs, shards_for_k=_const(kk))[0]
            if best is None or r["split_cp_list"] < best["split_cp_list"]:
                best = r
        assert best is not None
        rows.append({key: (round(v, 3) if isinstance(v, float) else v) for key, v in best.items()})
    return rows


def spec_rows(g: nx.DiGraph, specs: Mapping[str, sim.SplitSpec], dur: Mapping[Any, float],
              walls: Mapping[str, float]) -> list[dict[str, Any]]:
    """The split table: one row per package (measured phases, the action's duration)."""
    from fgo import actiongraph as ag

    rows = []
    for pkg, spec in specs.items():
        n = ag.find_action(g, pkg)
        rows.append({"package": pkg, "action_s": round(dur[n], 3),
                     "compile_c1_wall_s": round(walls.get(pkg, 0.0), 3),
                     "frontend_s": round(spec.frontend_s, 3), "backend_s": round(spec.backend_s, 3),
                     "merge_s": round(spec.merge_s, 3),
                     "backend_frac": round(spec.backend_s / spec.total_s, 3) if spec.total_s else 0,
                     **({"shard_s": {str(k): list(v) for k, v in spec.shard_s.items()}} if spec.shard_s else {})})
    return rows


def specs_from_rows(rows: Sequence[Mapping[str, Any]],
                    shards: Mapping[str, Mapping[int, Sequence[float]]] | None = None) -> dict[str, sim.SplitSpec]:
    """SplitSpecs back from a stored split table, optionally with measured shard times per package."""
    out = {}
    for r in rows:
        sh = (shards or {}).get(r["package"])
        if sh is None and r.get("shard_s"):
            sh = {int(k): v for k, v in r["shard_s"].items()}
        out[r["package"]] = sim.SplitSpec(r["frontend_s"], r["backend_s"], r["merge_s"], shard_s=sh)
    return out


def simulation_meta(name: str, source: str, g: nx.DiGraph, dur: Mapping[Any, float],
                    input_build: Mapping[str, Any], split_rows: list[dict[str, Any]]) -> dict[str, Any]:
    path = sim.critical_path_nodes(g, dur)
    return {"what": f"simulated makespans on measured action durations ({source})", "project": name,
            "durations": source, "input_build": dict(input_build), "split_packages": split_rows,
            "shard_choices": list(SHARD_CHOICES), "actions": g.number_of_nodes(),
            "span_s": sim.span(g, dur), "work_s": sim.work(g, dur),
            "critical_path": [f"{g.nodes[x].get('mode')} {g.nodes[x].get('package')}" for x in path]}
