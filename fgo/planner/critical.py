"""The build's critical path from `go list` (`fgo plan`): the import graph and each
package's upward rank over predicted compile times.

Apart from the split decisions (fgo.planner.decide) because it needs networkx, whose
import would cost every split build's head CPU before go build starts; a split is decided
without it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

import networkx as nx  # type: ignore[import-untyped]

from fgo.analysis import graph as shape

N = TypeVar("N", bound=Hashable)


def graph_from_go_list(packages: Iterable[Mapping[str, Any]]) -> nx.DiGraph:
    """The import graph from `go list -deps -json` objects: a node per ImportPath (with its
    JSON as attribute "info"), an edge importer -> imported for each entry of Imports that is
    in the list ("C" and unlisted paths are skipped)."""
    pkgs = list(packages)
    g = nx.DiGraph()
    for p in pkgs:
        g.add_node(p["ImportPath"], info=p)
    for p in pkgs:
        for imp in p.get("Imports") or ():
            if imp in g and imp != p["ImportPath"]:
                g.add_edge(p["ImportPath"], imp)
    return g


def critical_path_priority(graph: nx.DiGraph, cost: Mapping[N, float] | None = None,
                           attr: str = "cost") -> dict[N, float]:
    """Priority of every package: the longest chain of predicted compile time from the start of
    the package to the end of the build (the package's own cost plus the costliest path
    through the packages that import it; HEFT's "upward rank").

    Edges go from importer to imported (a -> b: a imports b, so b compiles first), as
    `go list -deps -json` Imports give them. Costs come from COST or node attribute ATTR
    (default 0). Highest priority first is the critical-path-first order.
    This is `fgo.analysis.graph.bottom_levels` of the graph in build order (reversed).
    """
    return shape.bottom_levels(graph.reverse(copy=False), _costs(graph, cost, attr))


def critical_path(graph: nx.DiGraph, cost: Mapping[N, float] | None = None,
                  attr: str = "cost") -> list[N]:
    """The critical path, in build order (first package to compile first); edges and costs
    as for `critical_path_priority` (`fgo.analysis.graph.critical_path`)."""
    return shape.critical_path(graph.reverse(copy=False), _costs(graph, cost, attr))[1]


def _costs(graph: nx.DiGraph, cost: Mapping[N, float] | None, attr: str) -> dict[N, float]:
    if cost is not None:
        return {n: float(cost.get(n, 0.0)) for n in graph}
    return shape.node_weights(graph, attr)
