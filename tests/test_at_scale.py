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


def test_the_floor_of_a_split_keeps_each_compiles_frontend_and_object() -> None:
    g, dur = chain()
    shp = sc.shapes(g, dur, {"a": {"F": 1.0, "B": 6.0, "D": 1.0}}, {}, 0.66)
    # a: F + D = 2 s; b: the default shares of its 1 s (B 0.64 of it gone); then the link
    assert sc.split_floor_span(g, dur, shp) == pytest.approx(2.0 + 1.0)
    specs = sc.split_specs(g, dur, shp, {})
    rows = sc.das5_rows("p", g, dur, shp, specs, ms.Costs(fixed_s=0.5), {}, {}, 0.5,
                        go_fixed_s=0.0, nodes=(1, 4), cores=4)
    for r in rows:   # nothing the model splits beats it
        assert r["split_floor_s"] <= min(r["split_s"], r["plain_s"])
    assert rows[1]["split_floor_s"] == pytest.approx(0.5 + 3.0)
    assert rows[0]["split_floor_s"] == pytest.approx(0.5 + 3.0)   # work 10 s / 4 slots: 2.5 s


def test_parallelism_bounds_what_more_nodes_give() -> None:
    r = sc.parallelism_row("x", work=120.0, span=10.0, span_split=5.0, source="s", cores=16)
    assert r["parallelism"] == 12.0 and r["nodes_that_help"] == 1
    assert r["bound_8_nodes_over_1"] == 1.0 and r["parallelism_split"] == 24.0
    assert sc.speedup_bound(64.0, 8) == 4.0 and sc.speedup_bound(64.0, 2) == 2.0


def test_the_ceiling_of_two_cores_is_two_over_the_slowdown_beside_another_build() -> None:
    from experiments import interference as itf
    assert itf.slowdown([10.0, 20.0, 10.0], [12.0, 26.0, 11.0]) == pytest.approx(1.2)
    assert itf.ceiling(1.25) == pytest.approx(1.6) and itf.ceiling(1.0, cores=4) == 4.0
    with pytest.raises(ValueError):
        itf.slowdown([1.0], [])
    rows = [{"pair": i, "side": side, "wall_s": w, "cpu_s": c}
            for i, (a, b) in enumerate([((10.0, 9.0), (13.0, 11.0)), ((10.0, 9.0), (12.0, 10.0))])
            for side, (w, c) in (("alone", a), ("beside", b))]
    s = itf.summary("x", rows)
    assert (s["pairs"], s["slowdown"], s["ceiling_2_cores"]) == (2, 1.25, 1.6)
    assert s["cpu_slowdown"] == pytest.approx(1.167, abs=1e-3)


def test_where_a_two_core_builds_speedup_goes() -> None:
    """experiments/gap.py: each place's compiles against go's own durations (a host's by its
    tool time, without the dispatch), and the ceiling go's graph allows on two slots."""
    from experiments import gap
    g = nx.DiGraph()
    for i, (n, secs) in enumerate({"a": 4.0, "b": 2.0, "c": 2.0, "m": 1.0}.items()):
        g.add_node(n, mode="build" if n != "m" else "link", package=n, duration=secs, priority=i)
    g.add_edges_from([("a", "m"), ("b", "m"), ("c", "m")])
    assert gap.go_compile_seconds(g) == {"a": 4.0, "b": 2.0, "c": 2.0}
    assert gap.graph_ceiling(g) == pytest.approx(9.0 / 5.0)  # a | b, c; then the link
    actions = [
        {"tool": "compile", "package": "a", "mode": "local", "slot": 0, "duration_s": 5.0},
        {"tool": "compile", "package": "b", "mode": "remote", "duration_s": 2.5, "dispatch_s": 0.5,
         "speculation": {"outcome": "none"}},
        {"tool": "compile", "package": "c", "mode": "local", "slot": None, "duration_s": 9.0,
         "race": {"winner": "head"}},                       # raced: not one compile's time
        {"tool": "compile", "package": "c", "mode": "remote", "duration_s": 1.0,
         "speculation": {"outcome": "hit"}},                # speculated: neither
    ]
    inf = gap.inflation(actions, gap.go_compile_seconds(g))
    assert inf == {"slot": {"compiles": 1, "fgo_s": 5.0, "go_s": 4.0, "ratio": 1.25},
                   "host": {"compiles": 1, "fgo_s": 2.0, "go_s": 2.0, "ratio": 1.0}}
    row = gap.gap_row("p", 0, g, {"actions": actions}, 9.0, 6.0,
                      {"host0 compiles": 3.0, "host0 python (worker, nanny)": 1.0,
                       "fgo cacheprog": 2.0, "head compiles (verification, local)": 5.0})
    assert (row["speedup"], row["slot_inflation"], row["host_inflation"]) == (1.5, 1.25, 1.0)
    assert (row["head_other_cpu_s"], row["host_other_cpu_s"]) == (2.0, 1.0)
