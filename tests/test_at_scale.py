"""experiments/at_scale.py: the DAS-5 simulation's decisions on small graphs (no processes)."""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments import at_scale as sc  # noqa: E402
from fgo.analysis import makespan as ms  # noqa: E402
from fgo.analysis import simulate as sim  # noqa: E402


def chain() -> tuple[nx.DiGraph, dict[str, float]]:
    """a (8 s) -> c (1 s), b (1 s) -> c; c links."""
    g = nx.DiGraph()
    for i, (n, tool) in enumerate({"a": "compile", "b": "compile", "c": "link"}.items()):
        g.add_node(n, mode="link" if tool == "link" else "build", tool=tool, package=n, priority=i)
    g.add_edges_from([("a", "c"), ("b", "c")])
    return g, {"a": 8.0, "b": 1.0, "c": 1.0}


def test_split_candidates_are_long_compiles_on_the_critical_path() -> None:
    g, dur = chain()
    shp = sc.shapes(g, dur, {"a": {"F": 1.0, "B": 6.0, "D": 1.0}}, {}, 0.66)
    specs = sc.split_specs(g, dur, shp, {})
    assert list(specs) == ["a"] and specs["a"].total_s == pytest.approx(8.0)
    measured = {"a": sim.SplitSpec(0.0, 0.9, 0.1, shard_s={2: [0.5, 0.5], 4: [0.6] * 4})}
    assert sc.split_specs(g, dur, shp, measured)["a"] is measured["a"]
    assert sc.best_k(measured["a"]) == 2   # the measured K with the shortest span
    assert sc.best_k(specs["a"]) == sc.MAX_SHARDS


def test_no_split_on_one_node_and_ratios_against_go_build() -> None:
    g, dur = chain()
    shp = sc.shapes(g, dur, {"a": {"F": 1.0, "B": 6.0, "D": 1.0}}, {}, 0.66)
    specs = sc.split_specs(g, dur, shp, {})
    rows = sc.das5_rows("p", g, dur, shp, specs, ms.Costs(), {}, {}, 0.5, go_fixed_s=0.0,
                        nodes=(1, 4), cores=4)
    one, two = rows
    assert one["split_packages"] == 0 and one["split_s"] == one["plain_s"] == 9.0
    # on 16 slots: a in 8 shards of F + B/8 = 1.75 s at once, then D 1 s, then the link
    assert two["split_packages"] == 1 and two["split_s"] == pytest.approx(1.75 + 1 + 1)
    assert two["split_over_go_build"] == pytest.approx(two["go_build_1_node_s"] / two["split_s"], abs=2e-3)
    assert one["best_actions_over_go_build"] == one["best_over_go_build"]   # no fixed parts


def test_parallelism_bounds_what_more_nodes_give() -> None:
    r = sc.parallelism_row("x", work=120.0, span=10.0, span_split=5.0, source="s", cores=16)
    assert r["parallelism"] == 12.0 and r["nodes_that_help"] == 1
    assert r["bound_8_nodes_over_1"] == 1.0 and r["parallelism_split"] == 24.0
    assert sc.speedup_bound(64.0, 8) == 4.0 and sc.speedup_bound(64.0, 2) == 2.0
