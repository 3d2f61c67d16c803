"""The shape of a task DAG: work, span, critical path, bottom levels, levels.

The one implementation of these for fgo (action graphs of `go build`, the package graph
of `fgo plan`, the simulations). Pure functions of a networkx DiGraph; no processes.

Conventions, for every function here:

- an edge u -> v means "v depends on u": u must finish before v starts
  (dep -> dependent, the direction of go build's action graph). A graph with the other
  direction (e.g. `go list` importer -> imported) is passed as `g.reverse(copy=False)`;
- the weight of a node is its duration in seconds, from DUR (a mapping node -> seconds)
  or, when DUR is None, from the node attribute "duration" (missing or None: 0);
  edges carry no weight (no communication cost);
- where several answers are equally good (ties in length), the one returned is fixed by
  the order of g's nodes and adjacency (insertion order), so results are deterministic.

networkx's `dag_longest_path` weighs edges, not nodes, so the longest paths below are the
usual dynamic programme over `nx.topological_sort`; the levels are
`nx.topological_generations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

Durations = Mapping[Any, float]


def node_weights(g: nx.DiGraph, attr: str = "duration") -> dict[Any, float]:
    """{node: float(attribute ATTR)} for every node of g (missing or None: 0.0)."""
    return {n: float(g.nodes[n].get(attr, 0.0) or 0.0) for n in g}


def _weights(g: nx.DiGraph, dur: Durations | None) -> Durations:
    return dur if dur is not None else node_weights(g)


def work(g: nx.DiGraph, dur: Durations | None = None) -> float:
    """Total work: the sum of the node durations (the makespan on one worker)."""
    d = _weights(g, dur)
    return float(sum(d[n] for n in g))


def earliest_finish(g: nx.DiGraph, dur: Durations | None = None) -> dict[Any, float]:
    """When each node finishes if it starts as soon as its deps are done (unbounded workers):
    its own duration plus the longest path of durations into it (its "top level" + itself).
    Keys in topological order."""
    d = _weights(g, dur)
    fin: dict[Any, float] = {}
    for n in nx.topological_sort(g):
        fin[n] = d[n] + max((fin[p] for p in g.predecessors(n)), default=0.0)
    return fin


def bottom_levels(g: nx.DiGraph, dur: Durations | None = None) -> dict[Any, float]:
    """Each node's duration plus the longest path of durations from it to any sink.

    The time from the node's start to the end of the build with unbounded workers: the
    critical-path-first priority of list scheduling (HLFET; HEFT's "upward rank").
    """
    d = _weights(g, dur)
    bl: dict[Any, float] = {}
    for n in reversed(list(nx.topological_sort(g))):
        bl[n] = d[n] + max((bl[s] for s in g.successors(n)), default=0.0)
    return bl


def critical_path(g: nx.DiGraph, dur: Durations | None = None) -> tuple[float, list[Any]]:
    """The longest path by node durations: (its length in seconds, [node, ...] first to last).

    The length is the span (the makespan with unbounded workers). Ties: the path ends at
    the first node of g (in node order) with the latest earliest finish, and each step back
    takes the first predecessor (in adjacency order) that finishes last. Empty graph: (0, []).
    """
    fin = earliest_finish(g, dur)
    if not fin:
        return 0.0, []
    end = max(g, key=fin.__getitem__)
    path = [end]
    while True:
        preds = list(g.predecessors(path[-1]))
        if not preds:
            break
        path.append(max(preds, key=fin.__getitem__))
    return fin[end], path[::-1]


def span(g: nx.DiGraph, dur: Durations | None = None) -> float:
    """The critical path's length (seconds): no schedule, on any number of workers, is shorter."""
    return max(earliest_finish(g, dur).values(), default=0.0)


def level_groups(g: nx.DiGraph) -> list[list[Any]]:
    """Nodes grouped by longest-path depth (DistGo-style levels): group 0 has no deps, a node
    of group i depends on some node of group i-1 and only on earlier groups. Nodes of a group
    in g's node order. The number of groups is the graph's depth (the most nodes on a path)."""
    order = {n: i for i, n in enumerate(g)}
    return [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(g)]


def levels(g: nx.DiGraph) -> dict[Any, int]:
    """{node: its level}: 0 for nodes without deps, else 1 + the deepest dep's level."""
    return {n: i for i, group in enumerate(level_groups(g)) for n in group}


__all__ = ["Durations", "bottom_levels", "critical_path", "earliest_finish",
           "level_groups", "levels", "node_weights", "span", "work"]
