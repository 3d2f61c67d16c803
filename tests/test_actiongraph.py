"""fgo.analysis.actiongraph: parsing go's -debug-actiongraph output and the graph's shape."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from fgo.analysis import actiongraph as ag
from fgo.analysis import graph
from fgo import toolchain
T0 = "2026-11-24T10:00:00"


def ts(sec: float) -> str:
    """A Go RFC 3339 time SEC seconds after T0, with nanoseconds."""
    whole = int(sec)
    ns = round((sec - whole) * 1e9)
    return f"{T0[:-2]}{whole:02d}.{ns:09d}Z"


def rec(i: int, mode: str, pkg: str, deps: list[int], start: float | None, done: float | None,
        cmd: list[str] | None = None, prio: int = 0) -> dict:
    r = {"ID": i, "Mode": mode, "Package": pkg, "Deps": deps, "Priority": prio,
         "TimeReady": ts(start) if start is not None else "0001-01-01T00:00:00Z",
         "TimeStart": ts(start) if start is not None else "0001-01-01T00:00:00Z",
         "TimeDone": ts(done) if done is not None else "0001-01-01T00:00:00Z",
         "Cmd": cmd}
    if not deps:
        del r["Deps"]  # omitempty, as go writes it
    return r


COMPILE = "/goroot/pkg/tool/linux_amd64/compile -o /tmp/go-build1/b002/_pkg_.a -p x"

# link(0) <- build main(1) <- {build a(2), build b(3)}; a <- build c(4); check-cache(5) between c and b.
RECORDS = [
    rec(0, "link", "main", [1], 10.0, 12.0, ["/goroot/pkg/tool/linux_amd64/link -o a.out"], prio=5),
    rec(1, "build", "main", [2, 3], 9.0, 10.0, [COMPILE], prio=4),
    rec(2, "build", "a", [4], 3.0, 9.0, [COMPILE], prio=2),
    rec(3, "build", "b", [5], 1.5, 4.5, [COMPILE], prio=3),
    rec(4, "build", "c", [], 0.0, 3.0, [COMPILE], prio=0),
    rec(5, "build check cache", "b", [4], 1.0, 1.5, None, prio=1),
]


def test_parse_go_time_keeps_nanoseconds_and_zones() -> None:
    a = ag.parse_go_time("2026-11-24T13:45:43.636457514Z")
    b = ag.parse_go_time("2026-11-24T14:45:43.636457515+01:00")
    assert a is not None and b is not None and b - a == 1
    assert ag.parse_go_time("2026-11-24T13:45:43Z") == a - 636457514
    assert ag.parse_go_time("0001-01-01T00:00:00Z") is None
    assert ag.parse_go_time(None) is None
    with pytest.raises(ValueError):
        ag.parse_go_time("yesterday")


def test_parse_graph_nodes_edges_and_attributes() -> None:
    g = ag.parse(json.dumps(RECORDS))
    assert g.number_of_nodes() == 6
    assert set(g.predecessors(1)) == {2, 3} and set(g.successors(4)) == {2, 5}
    a = g.nodes[2]["action"]
    assert (a.mode, a.package, a.tool, a.cached) == ("build", "a", "compile", False)
    assert g.nodes[2]["duration"] == pytest.approx(6.0)
    assert g.nodes[4]["start"] == 0.0  # times are relative to the first start
    assert g.nodes[0]["tool"] == "link"
    assert not g.nodes[5]["cached"]  # bookkeeping mode: never "cached"


def test_cached_is_a_tool_action_without_a_command() -> None:
    recs = [rec(0, "build", "x", [], 0.0, 0.01, None), rec(1, "link", "x", [0], 0.01, 0.02, None)]
    g = ag.parse_records(recs)
    assert ag.num_cached(g) == 2 and ag.num_commands(g) == 0


def test_work_span_critical_path() -> None:
    g = ag.parse_records(RECORDS)
    assert graph.work(g) == pytest.approx(2 + 1 + 6 + 3 + 3 + 0.5)
    span, path = graph.critical_path(g)
    assert span == pytest.approx(3 + 6 + 1 + 2)
    assert path == [4, 2, 1, 0]


def test_levels_and_work_graph_contracts_bookkeeping() -> None:
    g = ag.parse_records(RECORDS)
    assert graph.levels(g)[3] == 2  # c -> check cache -> b
    wg = ag.work_graph(g)
    assert 5 not in wg and wg.has_edge(4, 3)  # b keeps its dependency on c
    lv = graph.levels(wg)
    assert lv == {4: 0, 2: 1, 3: 1, 1: 2, 0: 3}
    assert [sorted(x) for x in graph.level_groups(wg)] == [[4], [2, 3], [1], [0]]


def test_contract_preserves_reachability() -> None:
    g = nx.gnp_random_graph(40, 0.15, seed=3, directed=True)
    g = nx.DiGraph([(u, v) for u, v in g.edges if u < v])
    keep = {n for n in g if n % 3}
    h = ag.contract(g, lambda n: n in keep)
    for u in keep:
        for v in keep:
            if u != v and u in h and v in h:
                assert nx.has_path(g, u, v) == nx.has_path(h, u, v)


def test_width_profile_and_stats() -> None:
    iv = [(0.0, 4.0), (1.0, 2.0), (1.5, 3.0), (5.0, 6.0)]
    prof = ag.width_profile(iv)
    assert max(w for _, w in prof) == 3
    assert prof[-1] == (6.0, 0)
    st = ag.width_stats(iv)
    assert st["peak_width"] == 3 and st["elapsed_s"] == 6.0
    assert st["avg_width"] == pytest.approx((4 + 1 + 1.5 + 1) / 6)
    assert ag.width_stats([])["peak_width"] == 0.0


def test_binned_width_averages_busy_time() -> None:
    bins = ag.binned_width([(0.0, 2.0), (0.0, 1.0)], 2)
    assert bins == [(0.0, 2.0), (1.0, 1.0)]


def test_asap_width_is_unbounded_parallelism() -> None:
    g = ag.work_graph(ag.parse_records(RECORDS))
    iv = ag.asap_intervals(g)
    assert max(e for _, e in iv) == pytest.approx(graph.critical_path(g)[0])


def test_summarize_keys() -> None:
    s = ag.summarize(ag.parse_records(RECORDS))
    assert s["actions"] == 6 and s["work_actions"] == 5 and s["compiles"] == 4
    assert s["span_s"] == pytest.approx(12.0)
    assert s["critical_path"][0] == "build c" and s["levels"] == 4
    assert s["peak_width_recorded"] == 2


def test_cycle_and_unknown_dep_are_errors() -> None:
    with pytest.raises(ValueError):
        ag.parse_records([rec(0, "build", "x", [1], 0, 1), rec(1, "build", "y", [0], 0, 1)])
    with pytest.raises(ValueError):
        ag.parse_records([rec(0, "build", "x", [7], 0, 1)])


@pytest.fixture
def tiny_module(tmp_path: Path) -> Path:
    """Two library packages without imports: compiles in well under a second, no std needed."""
    root = tmp_path / "m"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "go.mod").write_text("module example.com/m\n\ngo 1.22\n")
    (root / "b" / "b.go").write_text("package b\n\nfunc B() int { return 2 }\n")
    (root / "a" / "a.go").write_text('package a\n\nimport "example.com/m/b"\n\nfunc A() int { return b.B() + 1 }\n')
    return root


def test_real_actiongraph_cold_then_warm(tiny_module: Path, tmp_path: Path) -> None:
    env = toolchain.go_env(GOCACHE=str(tmp_path / "cache"), GOFLAGS="-buildvcs=false", GOMAXPROCS="2")
    cold = ag.run_build(["./a"], tmp_path / "cold.json", tmp_path / "cold.trace", cwd=tiny_module, env=env)
    g = cold.graph()
    a, b = ag.find_action(g, "example.com/m/a"), ag.find_action(g, "example.com/m/b")
    assert nx.has_path(g, b, a)
    assert g.nodes[a]["tool"] == "compile" and not g.nodes[a]["cached"]
    assert g.nodes[a]["start"] >= g.nodes[b]["done"]
    s = ag.summarize(g)
    assert s["compiles"] == 2 and s["cached"] == 0 and s["span_s"] > 0
    assert json.loads((tmp_path / "cold.trace").read_text())  # Chrome trace JSON for Perfetto
    warm = ag.run_build(["./a"], tmp_path / "warm.json", None, cwd=tiny_module, env=env)
    gw = warm.graph()
    assert ag.summarize(gw)["compiles"] == 0
    assert gw.nodes[ag.find_action(gw, "example.com/m/a")]["cached"]


def test_cpu_duration_counts_command_cpu_plus_go_overhead() -> None:
    r = rec(0, "build", "x", [], 0.0, 5.0, [COMPILE])
    r.update(CmdReal=4_500_000_000, CmdUser=1_500_000_000, CmdSys=500_000_000)
    g = ag.parse_records([r, rec(1, "nop", "", [0], 5.0, 5.25)])
    assert g.nodes[0]["cpu"] == pytest.approx(1.5 + 0.5 + 0.5)  # CPU + (5.0 - 4.5) of go around it
    assert g.nodes[1]["cpu"] == pytest.approx(0.25)  # no command: its duration
