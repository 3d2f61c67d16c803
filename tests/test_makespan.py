"""fgo.analysis.makespan: fgo's costs on top of a schedule of go's actions (no processes)."""

from __future__ import annotations

import networkx as nx
import pytest

from fgo.analysis import makespan as ms


def graph(tools: dict[str, str], edges: list[tuple[str, str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    for i, (n, tool) in enumerate(tools.items()):
        # go's priority: the post-order index; the lowest runs first
        g.add_node(n, mode="link" if tool == "link" else "build", tool=tool, package=n, priority=i)
    g.add_edges_from(edges)
    return g


def test_no_costs_is_the_plain_schedule_in_gos_order() -> None:
    g = graph({"a": "compile", "b": "compile", "c": "link"}, [("a", "c"), ("b", "c")])
    dur = {"a": 2.0, "b": 3.0, "c": 1.0}
    assert ms.predict(g, 2, dur, ms.Costs()) == 4.0
    assert ms.predict(g, 1, dur, ms.Costs()) == 6.0


def test_dispatch_is_added_to_compiles_only_and_fixed_once() -> None:
    g = graph({"a": "compile", "b": "compile", "c": "link"}, [("a", "c"), ("b", "c")])
    dur = {"a": 2.0, "b": 3.0, "c": 1.0}
    costs = ms.Costs(dispatch_s=0.5, fixed_s=2.0)
    # b: 3.5, then the link (no dispatch: it runs on the head) 1.0, plus the fixed 2.0
    assert ms.predict(g, 2, dur, costs) == pytest.approx(6.5)


def test_head_cpu_on_the_workers_cores_is_work_they_lose() -> None:
    g = graph({"a": "compile", "b": "compile"}, [])
    dur = {"a": 1.0, "b": 1.0}
    # 2 s of head CPU over 2 compiles on 2 slots: each compile loses 1 s
    assert ms.predict(g, 2, dur, ms.Costs(head_cpu_s=1.0)) == pytest.approx(2.0)


def test_bytes_cost_time_over_the_link_only() -> None:
    g = graph({"a": "compile", "b": "compile"}, [("a", "b")])
    dur = {"a": 1.0, "b": 1.0}
    nbytes = {"a": 125e6, "b": 0.0}   # one second at 1 Gbit/s
    assert ms.predict(g, 1, dur, ms.Costs(bytes_per_s=125e6), nbytes) == pytest.approx(3.0)
    assert ms.predict(g, 1, dur, ms.Costs(bytes_per_s=None), nbytes) == pytest.approx(2.0)


def test_costs_from_a_run() -> None:
    report = {"totals": {"wall_s": 9.0}, "actions": [
        {"package": "a", "tool": "compile", "mode": "remote", "dispatch_s": 0.010,
         "start": 100.0, "end": 102.0},
        {"package": "b", "tool": "compile", "mode": "remote", "dispatch_s": 0.030,
         "start": 101.0, "end": 105.0},
        {"package": "c", "tool": "compile", "mode": "local", "dispatch_s": None,
         "start": 103.0, "end": 106.0},
        {"package": "x", "tool": "compile", "mode": "cached", "dispatch_s": None,
         "start": None, "end": None}]}
    report["totals"]["remote"] = 2
    report["head"] = {"cpu_s": 1.0}
    report["verification"] = {"seconds": 2.0}
    c = ms.costs_from_run(report, wall_s=10.0)
    assert c.dispatch_s == pytest.approx(0.020)    # the median of the remote compiles'
    assert c.fixed_s == pytest.approx(4.0)         # 10 s measured - 6 s of actions
    assert c.head_cpu_s == pytest.approx(1.5)      # (1 s own + 2 s verifying) / 2 compiles
    apart = ms.costs_from_run(report, wall_s=10.0, shares_cores=False)
    assert apart.head_cpu_s == 0.0
    assert ms.mean_costs([apart, ms.Costs(0.0, 2.0, 1e6, 0.5)]) == ms.Costs(0.010, 3.0, 1e6, 0.25)


def test_bytes_by_node_maps_report_packages_onto_compiles() -> None:
    g = graph({"a": "compile", "c": "link"}, [("a", "c")])
    report = {"actions": [{"package": "a", "tool": "compile", "bytes_in": 10, "bytes_out": 5}]}
    assert ms.bytes_by_node(g, report) == {"a": 15.0}


def test_pipelining_lets_dependent_compiles_start_at_the_export_data() -> None:
    # a -> b -> link: b may start when a's export data is there (a quarter into a);
    # the link still waits for a whole
    g = graph({"a": "compile", "b": "compile", "c": "link"}, [("a", "b"), ("b", "c"), ("a", "c")])
    dur = {"a": 4.0, "b": 4.0, "c": 1.0}
    assert ms.predict(g, 2, dur, ms.Costs()) == 9.0
    assert ms.predict_pipelined(g, 2, dur, ms.Costs(), {"a": 0.25}, 1.0) == pytest.approx(6.0)
    # one slot: no overlap to gain
    assert ms.predict_pipelined(g, 1, dur, ms.Costs(), {"a": 0.25}, 1.0) == pytest.approx(9.0)
    # a share of 1: the export data comes with the archive, as without pipelining
    assert ms.predict_pipelined(g, 2, dur, ms.Costs(fixed_s=1.0), {}, 1.0) == pytest.approx(10.0)


def test_processes_pay_once_per_process_and_dependents_start_at_the_export() -> None:
    g = graph({"a": "compile", "b": "compile"}, [("a", "b")])
    dur = {"a": 4.0, "b": 2.0}
    half = ms.simulate.SplitSpec(1.0, 1.0, 0.0)   # export data at half of the compile
    specs = {"a": half, "b": half}
    # b starts when a's frontend (2 s) is done: 2 + 2 = 4 s, a ends at 4 s
    assert ms.predict_processes(g, 2, dur, ms.Costs(), specs) == pytest.approx(4.0)
    # one dispatch per process, at its start: a's frontend and b's frontend
    assert ms.predict_processes(g, 2, dur, ms.Costs(dispatch_s=0.5), specs) == pytest.approx(5.0)
    # a split in 2: the other shard is a process too (F + B/2 = 2 + 1 s, plus its dispatch)
    split = ms.predict_processes(g, 3, dur, ms.Costs(dispatch_s=0.5), specs, {"a": 2})
    assert split == pytest.approx(max(0.5 + 2 + 1, 0.5 + 2 + 0.5 + 2))


def test_a_check_runs_on_the_head_before_the_link() -> None:
    """Verification compiles a checked compile again on the head's slot, and the link waits
    for it (its gate): a large checked compile late in the build lands on the critical path."""
    g = graph({"a": "compile", "b": "compile", "c": "link"}, [("a", "c"), ("b", "c")])
    dur = {"a": 2.0, "b": 5.0, "c": 1.0}
    # the head's slot (0) takes a, the worker (1) b; b's check waits for the head's slot
    assert ms.predict(g, 2, dur, ms.Costs(), local_slots=1) == 6.0
    assert ms.predict(g, 2, dur, ms.Costs(), local_slots=1, checked=["b"]) == 11.0
    assert ms.predict(g, 2, dur, ms.Costs(), local_slots=1, checked=["a"]) == 6.0
    # with no head slot there is nowhere to place a check: it is not modelled
    assert ms.predict(g, 2, dur, ms.Costs(), checked=["b"]) == 6.0
    # drawn when b was sent, its check runs on the head beside it (0-5 s), a after it
    assert ms.predict(g, 2, dur, ms.Costs(), local_slots=1, checked=["b"],
                      at_dispatch=["b"]) == 8.0


def test_head_only_nodes_wait_for_a_head_slot() -> None:
    from fgo.analysis import simulate
    g = nx.DiGraph()
    g.add_nodes_from(["x", "y", "z"])
    dur = {"x": 4.0, "y": 1.0, "z": 1.0}
    sched = simulate.list_schedule(g, 2, dur, priority={"x": 3, "y": 2, "z": 1}, local=1,
                                   local_dur=dur, head_only={"y"})
    # x takes the head's slot first; y must wait for it, so z runs on the worker meanwhile
    assert sched.worker["x"] == 0 and sched.worker["y"] == 0 and sched.worker["z"] == 1
    assert sched.start["y"] == 4.0 and sched.makespan == 5.0
