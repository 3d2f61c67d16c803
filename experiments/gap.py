"""Where a two-core build's speedup goes (experiment 8), from what its pair recorded.

Against `go build -p 1` on one core, two cores could give what go's own action graph allows
on two slots (its compiles at go's own durations, list-scheduled critical path first: the
graph's ceiling). What fgo measured falls short of it by how much longer each compile took
where fgo ran it than in go's run: on the head's core, which also carries fgo's own
processes (the head, the cacheprog, go build, the scheduler), and on the host (its tool
time: the report's duration less the dispatch, which holds the queueing and transfer), and
by the cores' idle time the model accounts for. Pure functions of one go action graph and
one fgo report; rows in results/gap.json (`pytest experiments/test_8_scaleout.py -k gap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from fgo.analysis import actiongraph
from fgo.analysis import simulate

RESULTS = "gap"


def go_compile_seconds(g: nx.DiGraph) -> dict[str, float]:
    """Each compiled package's duration in go's own run (its build action)."""
    out = {}
    for n in g:
        node = g.nodes[n]
        if node.get("mode") == "build" and node.get("package") and node.get("duration"):
            out[node["package"]] = float(node["duration"])
    return out


def tool_seconds(action: Mapping[str, Any]) -> float:
    """A compile's time in fgo's report less its dispatch: the compiler's own time where it
    ran (a local compile has no dispatch)."""
    return float(action["duration_s"]) - float(action.get("dispatch_s") or 0.0)


def where_compiled(action: Mapping[str, Any]) -> tuple[str, float] | None:
    """('slot', seconds) for a compile on the head's own slot, ('host', tool seconds) for one
    on a host; None for the others (raced, split, speculated, cached: their time is not one
    compile's)."""
    if action.get("tool") != "compile" or action.get("race") or not action.get("duration_s"):
        return None
    if action.get("mode") == "local" and action.get("slot") is not None:
        return "slot", float(action["duration_s"])
    if action.get("mode") == "remote" and (action.get("speculation") or {}).get("outcome") != "hit":
        return "host", tool_seconds(action)
    return None


def inflation(actions: list[Mapping[str, Any]], go_seconds: Mapping[str, float]
              ) -> dict[str, dict[str, float]]:
    """Per place ('slot', 'host'): how many compiles, their seconds in fgo's run and in go's,
    and the ratio (how much longer the same compiles took there)."""
    out: dict[str, dict[str, float]] = {}
    for a in actions:
        placed = where_compiled(a)
        if placed is None or a.get("package") not in go_seconds:
            continue
        place, seconds = placed
        s = out.setdefault(place, {"compiles": 0, "fgo_s": 0.0, "go_s": 0.0})
        s["compiles"] += 1
        s["fgo_s"] += seconds
        s["go_s"] += go_seconds[a["package"]]
    for s in out.values():
        s["ratio"] = round(s["fgo_s"] / s["go_s"], 3) if s["go_s"] else 0.0
        s["fgo_s"], s["go_s"] = round(s["fgo_s"], 2), round(s["go_s"], 2)
    return out


def graph_ceiling(g: nx.DiGraph, k: int = 2) -> float:
    """What K slots give over one on go's own graph and durations (list-scheduled, critical
    path first): go's one-slot time over its K-slot makespan."""
    work = actiongraph.work_graph(g)
    one = simulate.list_schedule(work, 1).makespan
    many = simulate.list_schedule(work, k).makespan
    return one / many if many > 0 else 1.0


def gap_row(project: str, pair: int, g: nx.DiGraph, report: Mapping[str, Any],
            go_wall: float, fgo_wall: float, cpu_by_role: Mapping[str, float] | None
            ) -> dict[str, Any]:
    """One pair's row: measured speedup, the graph's ceiling, each place's inflation, and
    the CPU of fgo's own processes on the head's core and on the host (process accounting)."""
    inf = inflation(report.get("actions") or [], go_compile_seconds(g))
    roles = dict(cpu_by_role or {})
    head_other = sum(v for r, v in roles.items()
                     if not r.startswith("host") and "compiles" not in r)
    host_other = sum(v for r, v in roles.items() if r.startswith("host") and "compiles" not in r)
    row: dict[str, Any] = {"project": project, "pair": pair, "go_s": go_wall, "fgo_s": fgo_wall,
                           "speedup": round(go_wall / fgo_wall, 3),
                           "graph_ceiling": round(graph_ceiling(g), 3)}
    for place in ("slot", "host"):
        s = inf.get(place) or {}
        row[f"{place}_compiles"] = int(s.get("compiles", 0))
        row[f"{place}_inflation"] = s.get("ratio")
    if roles:
        row["head_other_cpu_s"] = round(head_other, 2)
        row["host_other_cpu_s"] = round(host_other, 2)
    return row
