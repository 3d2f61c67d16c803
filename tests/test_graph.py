"""fgo.analysis.graph: work, span, critical path, bottom levels, levels on tiny DAGs (pure)."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from fgo.analysis import graph


def dag(edges: list[tuple[str, str]], dur: dict[str, float]) -> nx.DiGraph:
    g = nx.DiGraph()
    for n, d in dur.items():
        g.add_node(n, duration=d)
    g.add_edges_from(edges)
    return g


# a(1) -> b(2) -> d(4); a -> c(5) -> d; e(1) alone. Longest: a, c, d = 10.
DIAMOND = dag([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
              {"a": 1.0, "b": 2.0, "c": 5.0, "d": 4.0, "e": 1.0})


def test_work_and_span() -> None:
    assert graph.work(DIAMOND) == 13.0
    assert graph.span(DIAMOND) == 10.0
    assert graph.work(nx.DiGraph()) == 0.0 and graph.span(nx.DiGraph()) == 0.0


def test_critical_path_is_the_longest_chain_first_to_last() -> None:
    assert graph.critical_path(DIAMOND) == (10.0, ["a", "c", "d"])
    assert graph.critical_path(nx.DiGraph()) == (0.0, [])
    # explicit durations override the attribute
    assert graph.critical_path(DIAMOND, {"a": 1, "b": 9, "c": 5, "d": 4, "e": 1}) == (14, ["a", "b", "d"])


def test_critical_path_ties_follow_node_order() -> None:
    g = dag([("x", "z"), ("y", "z")], {"x": 1.0, "y": 1.0, "z": 1.0, "w": 2.0})
    assert graph.critical_path(g) == (2.0, ["x", "z"])  # x before y; z before w (same finish)


def test_earliest_finish_and_bottom_levels() -> None:
    assert graph.earliest_finish(DIAMOND) == {"a": 1, "b": 3, "c": 6, "d": 10, "e": 1}
    assert graph.bottom_levels(DIAMOND) == {"a": 10, "b": 6, "c": 9, "d": 4, "e": 1}


def test_levels_and_groups() -> None:
    assert graph.levels(DIAMOND) == {"a": 0, "e": 0, "b": 1, "c": 1, "d": 2}
    assert graph.level_groups(DIAMOND) == [["a", "e"], ["b", "c"], ["d"]]
    assert graph.level_groups(nx.DiGraph()) == []


def test_node_weights_default_to_zero() -> None:
    g = nx.DiGraph()
    g.add_node(1, duration=None)
    g.add_node(2, cpu=3)
    g.add_node(3, duration=2)
    assert graph.node_weights(g) == {1: 0.0, 2: 0.0, 3: 2.0}
    assert graph.node_weights(g, "cpu") == {1: 0.0, 2: 3.0, 3: 0.0}


def test_reversed_graph_gives_build_order() -> None:
    # importer -> imported, as `go list` gives it: reverse to get dep -> dependent
    imports = nx.DiGraph([("main", "lib"), ("lib", "rt")])
    length, path = graph.critical_path(imports.reverse(copy=False), {"main": 1, "lib": 2, "rt": 3})
    assert (length, path) == (6, ["rt", "lib", "main"])


def test_against_brute_force_on_random_dags() -> None:
    for seed in range(5):
        g = nx.gnp_random_graph(9, 0.3, seed=seed, directed=True)
        g = nx.DiGraph([(u, v) for u, v in g.edges if u < v])
        g.add_nodes_from(range(9))
        d = {n: 1.0 + (7 * n + seed) % 5 for n in g}
        paths = [[n] for n in g] + [p for s, t in itertools.permutations(g, 2)
                                    for p in nx.all_simple_paths(g, s, t)]
        best = max(sum(d[n] for n in p) for p in paths)
        length, path = graph.critical_path(g, d)
        assert length == pytest.approx(best) == pytest.approx(sum(d[n] for n in path))
        assert all(g.has_edge(a, b) for a, b in itertools.pairwise(path))
        assert max(graph.bottom_levels(g, d).values()) == pytest.approx(best)
        lv = graph.levels(g)
        longest_edges = {n: max((len(p) - 1 for p in paths if p[-1] == n), default=0) for n in g}
        assert lv == longest_edges
