"""Predicting an fgo build's wall time: a schedule of go's actions plus fgo's own costs (pure).

`simulate.list_schedule` assumes that communication is free. A real fgo build pays, on
top of each compile's own duration, a dispatch per remote compile (shim -> head
-> worker and back: `dispatch_s` in fgo's report), the compile's bytes over the link when
the worker is on another host, and once per build a fixed part (the Python process and
cluster start, go's own planning before its first action, the wait for verification
and the shutdown). `Costs` holds these; `costs_from_run` measures them from one fgo build
(its report and its measured wall time); `predict` applies them to an action graph with
durations measured elsewhere (normally a plain go build's, in go's own order).

Validate by fitting on one build and predicting another (a different project, or other
hosts): a model checked against the runs it was fitted on proves nothing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from fgo.analysis import simulate
from fgo.analysis.graph import Durations


@dataclass(frozen=True)
class Costs:
    """What fgo adds to a build's actions."""

    dispatch_s: float = 0.0             # per remote compile (median dispatch_s)
    fixed_s: float = 0.0                # per build: wall - (last action end - first start)
    bytes_per_s: float | None = None    # the link's rate; None: on the head's host (no link)
    head_cpu_s: float = 0.0             # per remote compile: head CPU on the workers' cores

    def per_compile(self, nbytes: float) -> float:
        """What one remote compile of NBYTES adds. The head's CPU, where it shares cores
        with workers, is work the compiles lose: H seconds over R compiles add H/R each,
        which adds about H/k to a work-bound schedule on k slots, as stealing H would."""
        link = nbytes / self.bytes_per_s if self.bytes_per_s else 0.0
        return self.dispatch_s + link + self.head_cpu_s


def costs_from_run(report: Mapping[str, Any], wall_s: float,
                   bytes_per_s: float | None = None, shares_cores: bool = True,
                   other_head_cpu_s: float = 0.0, checks_apart: bool = False) -> Costs:
    """fgo's costs in one build: REPORT (fgo build --report) and its measured WALL_S. With
    SHARES_CORES (the head runs on a worker's core) the head's CPU counts: its own, the
    verification compiles' (unless CHECKS_APART: a prediction schedules them, `with_checks`)
    and OTHER_HEAD_CPU_S (e.g. a scheduler process beside it)."""
    actions = [a for a in report["actions"] if a.get("start") and a.get("end")]
    dispatch = [a["dispatch_s"] for a in report["actions"]
                if a.get("dispatch_s") is not None and a.get("mode") == "remote"]
    span = max(a["end"] for a in actions) - min(a["start"] for a in actions) if actions else 0.0
    remote = report.get("totals", {}).get("remote", 0)
    checks = 0.0 if checks_apart else (report.get("verification") or {}).get("seconds", 0.0)
    head = (report.get("head") or {}).get("cpu_s", 0.0) + checks + other_head_cpu_s
    return Costs(dispatch_s=statistics.median(dispatch) if dispatch else 0.0,
                 fixed_s=max(0.0, wall_s - span), bytes_per_s=bytes_per_s,
                 head_cpu_s=head / remote if shares_cores and remote else 0.0)


def mean_costs(costs: list[Costs]) -> Costs:
    """The average of several fits (each field), e.g. over other projects' builds."""
    rates = [c.bytes_per_s for c in costs if c.bytes_per_s]
    return Costs(dispatch_s=statistics.fmean(c.dispatch_s for c in costs),
                 fixed_s=statistics.fmean(c.fixed_s for c in costs),
                 bytes_per_s=statistics.fmean(rates) if rates else None,
                 head_cpu_s=statistics.fmean(c.head_cpu_s for c in costs))


def is_compile(g: nx.DiGraph, n: Any) -> bool:
    """The actions fgo runs remotely: go's compiles (mode build, tool compile)."""
    return g.nodes[n].get("mode") == "build" and g.nodes[n].get("tool") == "compile"


def with_costs(g: nx.DiGraph, dur: Durations, costs: Costs,
               node_bytes: Mapping[Any, float] | None = None,
               remote: Callable[[nx.DiGraph, Any], bool] = is_compile) -> dict[Any, float]:
    """DUR with each remote action's dispatch and transfer added."""
    node_bytes = node_bytes or {}
    return {n: float(dur[n]) + (costs.per_compile(node_bytes.get(n, 0.0)) if remote(g, n) else 0.0)
            for n in g}


def with_checks(g: nx.DiGraph, dur: Durations, checked: Collection[Any],
                at_dispatch: Collection[Any] = ()) -> tuple[nx.DiGraph, dict[Any, float], set[Any]]:
    """G with verification's compiles: each CHECKED compile n is compiled again on the head,
    ("check", n), as long as n (DUR), after n (or, for those drawn AT_DISPATCH, from when n
    may start: beside it) and before every link (the link gate waits for every check),
    first in line on the head; the graph, its durations and the checks (`list_schedule`'s
    HEAD_ONLY)."""
    out, d = g.copy(), {n: float(dur[n]) for n in g}
    links = [n for n in g if g.nodes[n].get("mode") == "link"]
    top = min((float(g.nodes[n].get("priority", 0) or 0) for n in g), default=0.0) - 1
    checks = set()
    for n in checked:
        c = ("check", n)
        out.add_node(c, mode="check", tool="compile", package=g.nodes[n].get("package"),
                     priority=top)   # go's order: lowest first
        if n in at_dispatch:
            out.add_edges_from((p, c) for p in g.predecessors(n))
        else:
            out.add_edge(n, c)
        out.add_edges_from((c, link) for link in links)
        d[c] = d[n]
        checks.add(c)
    return out, d, checks


def predict(g: nx.DiGraph, k: int, dur: Durations, costs: Costs,
            node_bytes: Mapping[Any, float] | None = None,
            remote: Callable[[nx.DiGraph, Any], bool] = is_compile,
            local_slots: int = 0, checked: Collection[Any] = (),
            at_dispatch: Collection[Any] = ()) -> float:
    """The wall time of a build of G on K slots: go's order (its action priorities, as go
    build's ready queue has them), durations DUR plus fgo's COSTS. The first LOCAL_SLOTS of
    the K are the head's own (--local-slots): taken first, and a compile there pays no
    dispatch or transfer; the compiles in CHECKED are compiled again there (`with_checks`,
    those in AT_DISPATCH beside their remote compile)."""
    g, dur, checks = with_checks(g, dur, checked, at_dispatch) if checked and local_slots \
        else (g, dur, set())
    d = with_costs(g, dur, costs, node_bytes, remote)
    return costs.fixed_s + simulate.list_schedule(g, k, d, simulate.go_priorities(g),
                                                  local=local_slots, local_dur=dur,
                                                  head_only=checks).makespan


def predict_pipelined(g: nx.DiGraph, k: int, dur: Durations, costs: Costs,
                      export_frac: Mapping[str, float], default_frac: float,
                      node_bytes: Mapping[Any, float] | None = None,
                      local_slots: int = 0, checked: Collection[Any] = (),
                      at_dispatch: Collection[Any] = (), head_exports: bool = False) -> float:
    """`predict` with fgo's pipelining (`simulate.speculative_schedule`): a remote
    compile's export data is out once a share EXPORT_FRAC[package] (else DEFAULT_FRAC) of
    it has run, and a compile whose imports all have export data is speculated on a remote
    slot that go build leaves idle; go's order otherwise. LOCAL_SLOTS, CHECKED and
    AT_DISPATCH as in `predict` (a check is one process, not pipelined); HEAD_EXPORTS as in
    `simulate.speculative_schedule`."""
    g, dur, checks = with_checks(g, dur, checked, at_dispatch) if checked and local_slots \
        else (g, dur, set())
    d = with_costs(g, dur, costs, node_bytes)

    def frac(n: Any) -> float:
        return export_frac.get(g.nodes[n].get("package", ""), default_frac)
    return costs.fixed_s + simulate.speculative_schedule(
        g, k, d, frac, simulate.go_priorities(g), local=local_slots, local_dur=dur,
        head_only=checks, head_exports=head_exports).makespan


def predict_processes(g: nx.DiGraph, k: int, dur: Durations, costs: Costs,
                      specs: Mapping[Any, simulate.SplitSpec],
                      shards: Mapping[Any, int] | None = None,
                      node_bytes: Mapping[Any, float] | None = None) -> float:
    """`predict` for pipelined (and split) compiles: each compile in SPECS becomes its
    frontend then its backend (`simulate.pipelined_graph`; with SHARDS {n: K} also K shards
    and a merge), dependents' compiles start from the frontend. fgo's costs are paid per
    process, where it starts: one dispatch and NODE_BYTES for the leader (before its
    frontend) and for each other shard (a shard ships its inputs too); the backend, the
    leader's share and the merge continue a process already there."""
    p = simulate.pipelined_graph(g, specs, dur, shards)
    node_bytes = node_bytes or {}
    d = dict(p.dur)
    for n in p.graph:
        base = n[0] if isinstance(n, tuple) else n
        starts = (isinstance(n, tuple) and (n[1] == "export" or (n[1] == "shard" and n[2] > 0))
                  or (not isinstance(n, tuple) and n not in specs))
        if starts and is_compile(g, base):
            d[n] += costs.per_compile(node_bytes.get(base, 0.0))
    return costs.fixed_s + simulate.list_schedule(p.graph, k, d, chain=p.chain).makespan


def bytes_by_node(g: nx.DiGraph, report: Mapping[str, Any]) -> dict[Any, float]:
    """Each compile's bytes over the link (inputs sent + outputs back), by package, from
    an fgo REPORT of the same target, mapped onto G's compile nodes."""
    by_package = {a["package"]: a.get("bytes_in", 0) + a.get("bytes_out", 0)
                  for a in report["actions"] if a.get("tool") == "compile"}
    return {n: float(by_package.get(g.nodes[n].get("package"), 0)) for n in g if is_compile(g, n)}
