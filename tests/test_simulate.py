"""fgo.analysis.simulate: scheduling policies on small DAGs (no processes)."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgo.analysis import bench, graph
from fgo.analysis import simulate as sim
def dag(edges: list[tuple[str, str]], dur: dict[str, float], **attrs: dict[str, object]) -> nx.DiGraph:
    g = nx.DiGraph()
    for n, d in dur.items():
        g.add_node(n, duration=d, mode="build", package=n, priority=0)
    g.add_edges_from(edges)
    for n, a in attrs.items():
        g.nodes[n].update(a)
    return g


def test_chain_is_sequential_for_every_k() -> None:
    g = dag([("a", "b"), ("b", "c")], {"a": 1, "b": 2, "c": 3})
    for k in (1, 2, 8):
        assert sim.list_schedule(g, k).makespan == 6
        assert sim.level_schedule(g, k).makespan == 6
        assert sim.lower_bound(g, k) == 6


def test_independent_tasks() -> None:
    g = dag([], {"a": 3, "b": 3, "c": 2, "d": 2, "e": 2})
    assert sim.list_schedule(g, 1).makespan == 12
    assert sim.list_schedule(g, 2).makespan == 7  # 3+2+2 / 3+2 with longest first
    assert sim.level_schedule(g, 2).makespan == 7
    assert sim.lower_bound(g, 2) == 6
    assert sim.list_schedule(g, 10).makespan == 3


def test_local_slots_are_taken_first_and_pay_no_remote_cost() -> None:
    g = dag([("a", "b")], {"a": 1, "b": 1})
    remote = {"a": 1.5, "b": 1.5}                     # the same compiles plus dispatch
    assert sim.list_schedule(g, 2, remote, local=1, local_dur={"a": 1, "b": 1}).makespan == 2
    assert sim.list_schedule(g, 2, remote).makespan == 3   # no head slot: every one remote
    wide = dag([], {"a": 1, "b": 1, "c": 1})
    # two at once: one on the head (1 s), one remote (1.5 s); the third on the head again
    assert sim.list_schedule(wide, 2, {n: 1.5 for n in "abc"}, local=1,
                             local_dur={n: 1.0 for n in "abc"}).makespan == 2


def test_barrier_costs_what_list_scheduling_overlaps() -> None:
    # a(10) and b(1) have no deps; c(9) needs b. Levels: {a, b} then {c}.
    g = dag([("b", "c")], {"a": 10, "b": 1, "c": 9})
    assert sim.list_schedule(g, 2).makespan == 10
    assert sim.level_schedule(g, 2).makespan == 19
    s = sim.level_schedule(g, 2)
    assert s.start["c"] == 10  # waits for the whole level


def test_critical_path_priority_beats_a_bad_order() -> None:
    # Two workers; x(1) -> y(10) is the long chain; p, q, r are 2 s fillers.
    g = dag([("x", "y")], {"p": 2, "q": 2, "x": 1, "y": 10, "r": 2},
            p={"priority": 0}, q={"priority": 1}, r={"priority": 2}, x={"priority": 3}, y={"priority": 4})
    cp = sim.list_schedule(g, 2).makespan
    go = sim.list_schedule(g, 2, priority=sim.go_priorities(g)).makespan
    assert cp == 11
    assert go > cp
    assert graph.bottom_levels(g)["x"] == 11


def test_schedule_respects_dependencies_and_worker_count() -> None:
    g = nx.gnp_random_graph(60, 0.08, seed=1, directed=True)
    g = nx.DiGraph([(u, v) for u, v in g.edges if u < v])
    g.add_nodes_from(range(60))
    d = {n: 1 + (n * 7) % 5 for n in g}
    s = sim.list_schedule(g, 3, d)
    for u, v in g.edges:
        assert s.start[v] >= s.finish[u] - 1e-9
    events = sorted([(s.start[n], 1) for n in g] + [(s.finish[n], -1) for n in g], key=lambda e: (e[0], e[1]))
    running = 0
    for _, x in events:
        running += x
        assert running <= 3
    assert s.utilization(3) <= 1.0 + 1e-9


@st.composite
def random_dags(draw: st.DrawFn) -> tuple[nx.DiGraph, dict[int, float]]:
    n = draw(st.integers(1, 25))
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for v in range(1, n):
        for u in draw(st.lists(st.integers(0, v - 1), max_size=3)):
            g.add_edge(u, v)
    d = {i: draw(st.floats(0.0, 10.0, allow_nan=False)) for i in range(n)}
    return g, d


@settings(max_examples=60, deadline=None)
@given(random_dags(), st.integers(1, 6))
def test_bounds_hold_on_random_dags(gd: tuple[nx.DiGraph, dict[int, float]], k: int) -> None:
    g, d = gd
    lb = sim.lower_bound(g, k, d)
    w, s = graph.work(g, d), graph.span(g, d)
    for pol in (sim.list_schedule(g, k, d), sim.list_schedule(g, k, d, {n: -n for n in g}),
                sim.level_schedule(g, k, d)):
        assert pol.makespan >= lb - 1e-9
        assert pol.makespan <= w + 1e-9
    # Graham: any greedy list schedule is within work/k + span.
    assert sim.list_schedule(g, k, d).makespan <= w / k + s + 1e-9


def test_split_graph_shards_and_merge() -> None:
    g = dag([("dep", "big"), ("big", "user")], {"dep": 1, "big": 10, "user": 1})
    spec = sim.SplitSpec(frontend_s=1, backend_s=8, merge_s=1)
    h, d = sim.split_graph(g, {"big": spec}, 4)
    shards = [n for n in h if isinstance(n, tuple)]
    assert len(shards) == 4 and all(d[s] == pytest.approx(3.0) for s in shards)
    assert d["big"] == pytest.approx(1.0) and h.nodes["big"]["mode"] == "split merge"
    assert all(h.has_edge("dep", s) and h.has_edge(s, "big") for s in shards)
    assert h.has_edge("big", "user") and not h.has_edge("dep", "big")
    assert graph.span(h, d) == pytest.approx(1 + 3 + 1 + 1)
    assert graph.work(h, d) == pytest.approx(1 + 12 + 1 + 1)
    assert sim.list_schedule(h, 4, d).makespan == pytest.approx(6)
    # K = 1 leaves the graph as it was
    h1, d1 = sim.split_graph(g, {"big": spec}, 1)
    assert set(h1) == set(g) and d1["big"] == 10


def test_split_scales_to_the_action_and_uses_measured_shards() -> None:
    g = dag([], {"big": 20})
    spec = sim.SplitSpec(1, 8, 1)  # 10 s in its own run, 20 s in the graph: x2
    _, d = sim.split_graph(g, {"big": spec}, 2)
    assert d[("big", "shard", 0)] == pytest.approx(2 * (1 + 4)) and d["big"] == pytest.approx(2)
    measured = sim.SplitSpec(1, 8, 1, shard_s={2: [4.0, 6.0]}, scale_to_action=False)
    _, d = sim.split_graph(g, {"big": measured}, 2)
    assert [d[("big", "shard", i)] for i in range(2)] == [4.0, 6.0]
    assert measured.split_span(2) == 7.0
    assert sim.SplitSpec(1, 8, 1).split_span(4) == 4.0


def test_sweep_rows() -> None:
    g = dag([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], {"a": 1, "b": 6, "c": 2, "d": 1})
    rows = sim.sweep(g, [1, 2, 4], specs={"b": sim.SplitSpec(1, 4, 1)}, shards_for_k=lambda k: k)
    assert [r["k"] for r in rows] == [1, 2, 4]
    assert rows[0]["cp_list"] == rows[0]["work"] == 10
    assert rows[0]["split_cp_list"] == 10 and rows[0]["shards"] == 1
    r2 = rows[1]
    assert r2["span"] == 8 and r2["span_split"] == pytest.approx(1 + (1 + 2) * 6 / 6 + 1 + 1)
    assert r2["split_cp_list"] <= r2["cp_list"]
    for r in rows:
        assert r["levels"] >= r["lower_bound"] and r["split_cp_list"] >= r["lower_bound_split"] - 1e-9


def select_large(g: nx.DiGraph, dur: dict[str, float] | None = None, n: int = 5,
                 min_s: float = 0.0, on_critical_path: bool = True,
                 mode: str = "build") -> list[str]:
    """Packages worth splitting: the N longest `mode` actions, optionally only those on
    the critical path, each at least MIN_S seconds long."""
    d = dur if dur is not None else graph.node_weights(g)
    cand = [x for x in g if g.nodes[x].get("mode") == mode and d[x] >= min_s]
    if on_critical_path:
        on = set(graph.critical_path(g, d)[1])
        cand = [x for x in cand if x in on]
    cand.sort(key=lambda x: -d[x])
    return [str(g.nodes[x].get("package")) for x in cand[:n]]


def test_select_large_on_the_critical_path() -> None:
    g = dag([("a", "b")], {"a": 5, "b": 4, "c": 6})
    assert select_large(g, n=5) == ["a", "b"]  # a -> b (9 s) is the longest path
    assert select_large(dag([("a", "b")], {"a": 5, "b": 4, "c": 10}), n=5) == ["c"]
    assert select_large(g, n=5, on_critical_path=False) == ["c", "a", "b"]
    assert select_large(g, n=5, on_critical_path=False, min_s=4.5) == ["c", "a"]


BENCH = """\
BenchmarkCompile:example.com/p:fe:init              1        1000000 ns/op   1.00 %
BenchmarkCompile:example.com/p:fe:loadsys           1        2000000 ns/op   2.00 %
BenchmarkCompile:example.com/p:fe:subtotal          1        3000000 ns/op   3.00 %
BenchmarkCompile:example.com/p:be:compilefuncs      1       80000000 ns/op  80.00 %    1200 funcs    15000 funcs/s
BenchmarkCompile:example.com/p:be:dumpobj           1       10000000 ns/op  10.00 %
BenchmarkCompile:example.com/p:unaccounted          1        7000000 ns/op   7.00 %
BenchmarkCompile:example.com/p:total                1      100000000 ns/op 100.00 %
"""


def test_parse_compile_bench_and_spec() -> None:
    ph = bench.summaries("noise\n" + BENCH + BENCH.replace("80000000", "90000000"))
    p = ph["example.com/p"]
    assert p["frontend"] == pytest.approx(0.003)
    assert p["backend"] == pytest.approx(0.09)  # the later run wins
    assert p["dumpobj"] == pytest.approx(0.01) and p["total"] == pytest.approx(0.1)
    spec = sim.spec_from_phases(p)
    assert spec.frontend_s == pytest.approx(0.010)  # unaccounted start-up is paid by every shard
    assert spec.backend_s == pytest.approx(0.09) and spec.merge_s == pytest.approx(0.01)


def test_bad_k() -> None:
    g = dag([], {"a": 1})
    for f in (sim.list_schedule, sim.level_schedule, sim.lower_bound):
        with pytest.raises(ValueError):
            f(g, 0)


# ---------------------------------------------------------------- pipelining

def test_pipelined_dependent_compile_starts_after_the_frontend() -> None:
    # a (F 1, B 3) -> b (F 2, B 2) -> link l (1): b starts at 1, not 4; the link waits
    # for b's backend and for a's (a finishes at 4, b at 5).
    g = dag([("a", "b"), ("b", "l"), ("a", "l")], {"a": 4, "b": 4, "l": 1}, l={"mode": "link"})
    specs = {"a": sim.SplitSpec(1, 3, 0), "b": sim.SplitSpec(2, 1, 1)}
    p = sim.pipelined_graph(g, specs)
    s = p.schedule(2)
    assert s.start[("b", "export")] == 1
    assert s.finish["a"] == 4 and s.finish["b"] == 5
    assert s.start["l"] == 5 and s.makespan == 6
    assert graph.span(p.graph, p.dur) == 6 < graph.span(g) == 9
    assert graph.work(p.graph, p.dur) == graph.work(g)  # pipelining adds no work
    assert sim.list_schedule(g, 2).makespan == 9


def test_pipelined_backend_runs_on_its_frontends_worker_at_once() -> None:
    # One worker: a's backend must not be overtaken by b, which became ready at 1 and has
    # the longer path; the process a runs to its end.
    g = dag([("a", "b"), ("b", "c")], {"a": 2, "b": 5, "c": 5})
    p = sim.pipelined_graph(g, {"a": sim.SplitSpec(1, 1, 0)})
    s = p.schedule(1)
    assert s.start["a"] == 1 and s.worker["a"] == s.worker[("a", "export")]
    assert s.start["b"] == 2
    # without the chain the backend of a would wait behind b and c (bottom level 1)
    free = sim.list_schedule(p.graph, 1, p.dur)
    assert free.start["a"] == 11


def test_pipelined_scales_to_the_action_and_skips_unknown_and_other_modes() -> None:
    g = dag([("a", "b"), ("c", "b")], {"a": 10, "b": 2, "c": 3}, c={"mode": "cgo run"})
    p = sim.pipelined_graph(g, {"a": sim.SplitSpec(2, 2, 1), "c": sim.SplitSpec(1, 1, 1)})
    assert p.dur[("a", "export")] == pytest.approx(4) and p.dur["a"] == pytest.approx(6)
    assert ("c", "export") not in p.graph and ("b", "export") not in p.graph
    assert set(p.graph.predecessors("b")) == {("a", "export"), "c"}


def test_pipelined_and_split() -> None:
    # a: F 2, B 4, D 1 split 2 ways: leader frontend 2 then B/2; shard 1 F + B/2 = 4;
    # merge 1. The dependent compile b starts at 2 (the leader's frontend); link l at 5.
    g = dag([("a", "b"), ("a", "l"), ("b", "l")], {"a": 7, "b": 1, "l": 1}, l={"mode": "link"})
    p = sim.pipelined_graph(g, {"a": sim.SplitSpec(2, 4, 1)}, shards={"a": 2})
    assert p.dur[("a", "export")] == 2 and p.dur[("a", "shard", 0)] == 2
    assert p.dur[("a", "shard", 1)] == 4 and p.dur["a"] == 1
    assert p.chain == {("a", "export"): ("a", "shard", 0)}
    s = p.schedule(3)
    assert s.start["b"] == 2 and s.finish["a"] == 5 and s.makespan == 6
    assert graph.work(p.graph, p.dur) == pytest.approx(graph.work(g) + 2)  # one more frontend


def test_chain_must_be_the_only_dep() -> None:
    g = dag([("a", "b"), ("c", "b")], {"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="alone"):
        sim.list_schedule(g, 2, chain={"a": "b"})


# ---------------------------------------------------------------- go build with -c

def test_token_pool_is_gc_go() -> None:
    # -p 1: no pool, every compile gets GOMAXPROCS
    one = sim.TokenPool(16, p=1)
    assert [one.acquire() for _ in range(3)] == [16, 16, 16]
    # GOMAXPROCS 16, -p 16: minTokens 4, tokens 2*16 + 4*16 = 96
    pool = sim.TokenPool(16)
    assert (pool.min_tokens, pool.tokens, pool.p) == (4, 96, 16)
    got = [pool.acquire() for _ in range(16)]
    # 1st: (96 - 15*4)/2 = 18 -> 16; 2nd: (80 - 56)/2 = 12; 3rd: (68 - 52)/2 = 8; ...
    assert got[:4] == [16, 12, 8, 6]
    assert all(c >= 4 for c in got) and pool.tokens >= 0
    for c in got:
        pool.release(c)
    assert pool.tokens == pool.total and pool.concurrent == 0
    # a 2-core machine: every compile of go build gets -c=2
    two = sim.TokenPool(2)
    assert [two.acquire(), two.acquire()] == [2, 2]
    assert sim._go_div(-3, 2) == -1 and sim._go_div(3, 2) == 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 96), st.integers(1, 64), st.lists(st.booleans(), max_size=200))
def test_token_pool_never_runs_out(procs: int, p: int, ops: list[bool]) -> None:
    pool = sim.TokenPool(procs, p)
    held: list[int] = []
    for acquire in ops:
        if acquire and len(held) < p:
            c = pool.acquire()
            assert 1 <= c <= procs
            held.append(c)
        elif held:
            pool.release(held.pop(0))
        if p > 1:
            assert pool.tokens >= 0 and sum(held) + pool.tokens == pool.total


def test_amdahl_and_parallel_fraction() -> None:
    assert sim.amdahl(1, 0.7) == 1.0
    assert sim.amdahl(4, 1.0) == pytest.approx(4.0)
    assert sim.amdahl(1e9, 0.75) == pytest.approx(4.0)
    for f in (0.0, 0.3, 0.9, 1.0):
        assert sim.parallel_fraction(sim.amdahl(2, f), 2) == pytest.approx(f)
        assert sim.parallel_fraction(sim.amdahl(8, f), 8) == pytest.approx(f)
    assert sim.parallel_fraction(0.9) == 0.0 and sim.parallel_fraction(2.5) == 1.0
    s = sim.CompileShape(1, 8, 1, 0.5)
    assert s.wall(1) == 10 and s.wall(2) == pytest.approx(1 + 8 / (1 / 0.75) + 1)


@settings(max_examples=40, deadline=None)
@given(random_dags(), st.integers(1, 6))
def test_go_build_at_c1_is_go_order_list_scheduling(gd: tuple[nx.DiGraph, dict[int, float]],
                                                     k: int) -> None:
    g, d = gd
    d = {n: float(int(v)) for n, v in d.items()}  # whole seconds: ties are exact in both
    for n in g:
        g.nodes[n].update(mode="build", priority=(n * 7) % 5)
    shapes = sim.compile_shapes(g, d, default_parallel=0.8)
    s = sim.gobuild_schedule(g, sim.GoBuild(k, fixed_c=1), d, shapes)
    ref = sim.list_schedule(g, k, d, sim.go_priorities(g))
    assert s.makespan == pytest.approx(ref.makespan, abs=1e-6)
    # more backend threads never hurt without contention, and never beat the span
    fast = sim.gobuild_schedule(g, sim.GoBuild(k, contention=False), d, shapes)
    assert fast.makespan <= s.makespan + 1e-6
    floor = graph.span(g, {n: shapes[n].wall(max(k, 1) * 1000) for n in g})
    assert fast.makespan >= floor - 1e-6


def test_lone_compile_gets_the_node() -> None:
    g = dag([], {"big": 10})
    shapes = {"big": sim.CompileShape(1, 8, 1, 1.0)}
    s = sim.gobuild_schedule(g, sim.GoBuild(16), shapes=shapes)
    assert s.c["big"] == 16 and s.makespan == pytest.approx(1 + 8 / 16 + 1)
    # Amdahl: f = 0.5 on 16 goroutines
    half = {"big": sim.CompileShape(1, 8, 1, 0.5)}
    assert sim.gobuild_schedule(g, sim.GoBuild(16), shapes=half).makespan == pytest.approx(
        1 + 4 + 4 / 16 + 1)
    # -p 1: c = GOMAXPROCS too
    assert sim.gobuild_schedule(g, sim.GoBuild(8, p=1), shapes=shapes).c["big"] == 8


def test_threads_share_the_cores() -> None:
    g = dag([], {"a": 2, "b": 2})
    shapes = {n: sim.CompileShape(0, 2, 0, 1.0) for n in "ab"}
    # two compiles, 2 cores, -c=2 each: 4 threads on 2 cores, 4 CPU-s of work
    assert sim.gobuild_schedule(g, sim.GoBuild(2), shapes=shapes).makespan == pytest.approx(2)
    assert sim.gobuild_schedule(g, sim.GoBuild(2, contention=False),
                                shapes=shapes).makespan == pytest.approx(1)
    # one core, -p 2: the two single-threaded compiles share it
    one = {n: sim.CompileShape(2, 0, 0, 0.0) for n in "ab"}
    s = sim.gobuild_schedule(g, sim.GoBuild(1, p=2), shapes=one)
    assert s.makespan == pytest.approx(4) and s.finish["a"] == pytest.approx(4)


def test_compile_shapes_scale_to_the_graph() -> None:
    g = dag([("a", "l")], {"a": 20, "l": 1}, l={"mode": "link"})
    sh = sim.compile_shapes(g, phases={"a": sim.CompileShape(1, 8, 1, 0.6)})
    assert set(sh) == {"a"} and sh["a"].total == pytest.approx(20) and sh["a"].B == pytest.approx(16)
    sh = sim.compile_shapes(g, default_parallel=lambda b: 0.1 * b)
    assert sh["a"].F == pytest.approx(20 * sim.DEFAULT_SHARES[0])
    assert sh["a"].parallel == pytest.approx(0.1 * 20 * sim.DEFAULT_SHARES[1])


def test_sweep_with_the_go_build_baseline() -> None:
    g = dag([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], {"a": 1, "b": 6, "c": 2, "d": 1})
    shapes = sim.compile_shapes(g, default_parallel=0.9)
    rows = sim.sweep(g, [1, 2, 4], shapes=shapes)
    assert rows[0]["go_build_c1"] == pytest.approx(rows[0]["go_list"])
    for r in rows:
        assert r["go_build_c"] <= r["go_build_c1"] + 1e-9
    assert rows[2]["go_build_c"] < rows[2]["go_list"]
    assert "go_build_c" not in sim.sweep(g, [2])[0]


def test_nodes_share_only_their_own_cores_and_delays_hold_a_slot() -> None:
    g = dag([], {"a": 2, "b": 2})
    one = {n: sim.CompileShape(2, 0, 0, 0.0) for n in "ab"}
    # two nodes of one core: slot 0 on node 0, slot 1 on node 1, no sharing between them
    s = sim.gobuild_schedule(g, sim.GoBuild(1, nodes=2), shapes=one)
    assert s.makespan == pytest.approx(2) and {s.worker["a"] % 2, s.worker["b"] % 2} == {0, 1}
    # a waits 1 s for its inputs (no core used) while b runs alone; then they share the core
    d = sim.gobuild_schedule(g, sim.GoBuild(1, p=2), shapes=one, delays={"a": 1.0})
    assert d.finish["b"] == pytest.approx(1 + 2) and d.finish["a"] == pytest.approx(3 + 1)
    # with one node and no delays it is the model it was
    assert sim.gobuild_schedule(g, sim.GoBuild(1, p=2, nodes=1), shapes=one).makespan == \
        pytest.approx(4)


def _ordered(g: nx.DiGraph, order: list[str]) -> nx.DiGraph:
    for i, n in enumerate(order):
        g.nodes[n]["priority"] = i   # go's post-order index: lowest first
    return g


def test_fgo_pipelining_speculates_a_dependent_on_an_idle_remote_slot() -> None:
    # a -> b: b's imports have export data a quarter into a, and slot 1 is idle
    g = _ordered(dag([("a", "b")], {"a": 4.0, "b": 4.0}), ["a", "b"])
    frac = lambda n: 0.25  # noqa: E731
    s = sim.speculative_schedule(g, 2, export_frac=frac)
    assert (s.start["b"], s.makespan) == (1.0, 5.0)
    # the head's own compile sends no export data early: b waits for a whole
    assert sim.speculative_schedule(g, 2, export_frac=frac, local=1).makespan == 8.0
    # one slot: nothing idle to speculate on
    assert sim.speculative_schedule(g, 1, export_frac=frac).makespan == 8.0


def test_a_speculation_yields_to_go_builds_work_and_shares_its_slot_once_asked_for() -> None:
    """a -> b, c -> e: b is speculated on slot 1 when c frees it (t=2), paused while e
    (go-ready) runs there, and once go build asks for b (a done, t=4) it shares slot 1
    with e, slot 0 idle meanwhile: 9 s, where go's own order takes 8. The model can say
    that pipelining loses."""
    g = _ordered(dag([("a", "b"), ("c", "e")], {"a": 4.0, "b": 4.0, "c": 2.0, "e": 3.0}),
                 ["a", "c", "e", "b"])
    s = sim.speculative_schedule(g, 2, export_frac=lambda n: 0.25)
    assert (s.start["b"], s.worker["b"], s.finish["e"], s.finish["b"]) == (2.0, 1, 6.0, 9.0)
    assert sim.list_schedule(g, 2, priority=sim.go_priorities(g)).makespan == 8.0


def test_a_head_that_exported_early_would_let_its_dependents_be_speculated() -> None:
    g = _ordered(dag([("a", "b")], {"a": 4.0, "b": 4.0}), ["a", "b"])
    s = sim.speculative_schedule(g, 2, export_frac=lambda n: 0.25, local=1, head_exports=True)
    assert (s.worker["a"], s.start["b"], s.makespan) == (0, 1.0, 5.0)
