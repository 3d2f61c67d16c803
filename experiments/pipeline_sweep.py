"""The pipelining simulation's steps (experiment 7, test_7_pipelining.py): every compile's
F/B/D, the packages to split, the sweep over k.

Input: the action graph of a cold `go build -a -gcflags=all=-bench=FILE` and FILE, whose
runs are keyed by the compile's `-p` (a main package's is "main"). Policies
(fgo.analysis.simulate), makespans on k workers, all list scheduling by bottom level
unless said otherwise:
  levels:          DistGo-style levels with barriers (a);
  cp_list:         the build as go runs it, compiles whole (b);
  split_cp_list:   (b) with the chosen packages split K ways (c);
  pipelined:       every compile's dependents start after its frontend (d);
  pipelined_split: (d) with the chosen packages also split K ways.
K is the best of SHARD_CHOICES (<= k) for each k, separately for (c) and (d)+split.
The packages to split are the longest compiles on the pipelined critical path, found
again after each choice (the path moves), as in split_sweep.choose_splits.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import networkx as nx

from experiments.split_sweep import MAX_SPLIT, MIN_SPLIT_S, SHARD_CHOICES
from fgo.analysis import bench, graph
from fgo.analysis import simulate as sim


def compile_p(g: nx.DiGraph, n: Any) -> str | None:
    """The -p of node N's compile command (None if it ran none)."""
    for c in g.nodes[n]["action"].cmd:
        argv = shlex.split(c)
        if argv and Path(argv[0]).name == "compile" and "-p" in argv:
            return argv[argv.index("-p") + 1]
    return None


def node_specs(g: nx.DiGraph, bench_text: str) -> dict[Any, sim.SplitSpec]:
    """{build node: F/B/D of its compile} from the build's -bench FILE.

    A -p seen on more than one build node (two main packages) is ambiguous: those nodes
    get none and stay whole."""
    phases = bench.summaries(bench_text)
    by_p: dict[str, list[Any]] = {}
    for n in g:
        if g.nodes[n].get("mode") == "build":
            p = compile_p(g, n)
            if p is not None:
                by_p.setdefault(p, []).append(n)
    return {ns[0]: sim.spec_from_phases(phases[p]) for p, ns in by_p.items() if len(ns) == 1 and p in phases}


def ready_specs(g: nx.DiGraph, specs: Mapping[Any, sim.SplitSpec],
                ready_frac: Mapping[str, float]) -> dict[Any, sim.SplitSpec]:
    """SPECS with F = the measured moment the patched compiler wrote the export data
    (READY_FRAC[-p], a fraction of the compile's wall time; experiment 7's first part)
    instead of the -bench frontend; the rest of the compile is B. Compiles without a
    measurement keep their -bench F/B/D. Main packages are left out (their -p, "main",
    is not unique, and only links wait for them)."""
    out = dict(specs)
    for n in specs:
        p = compile_p(g, n)
        if p is not None and p != "main" and p in ready_frac:
            f = min(1.0, max(0.0, ready_frac[p]))
            out[n] = sim.SplitSpec(f, 1.0 - f, 0.0)
    return out


def choose_splits(g: nx.DiGraph, specs: Mapping[Any, sim.SplitSpec], dur: Mapping[Any, float],
                  min_s: float = MIN_SPLIT_S, max_n: int = MAX_SPLIT, k_big: int = 16) -> list[Any]:
    """The compiles to split: the longest on the pipelined critical path (with the ones
    chosen so far split K_BIG ways), one at a time, at least MIN_S seconds, at most MAX_N."""
    chosen: list[Any] = []
    while len(chosen) < max_n:
        p = sim.pipelined_graph(g, specs, dur, {n: k_big for n in chosen})
        path = graph.critical_path(p.graph, p.dur)[1]
        cand = sorted({x[0] if isinstance(x, tuple) else x for x in path}
                      - set(chosen), key=lambda n: -dur[n])
        cand = [n for n in cand if n in specs and g.nodes[n].get("mode") == "build" and dur[n] >= min_s]
        if not cand:
            break
        chosen.append(cand[0])
    return chosen


def sweep(g: nx.DiGraph, ks: Sequence[int], specs: Mapping[Any, sim.SplitSpec],
          dur: Mapping[Any, float], splits: Sequence[Any],
          choices: Sequence[int] = SHARD_CHOICES,
          ready: Mapping[Any, sim.SplitSpec] | None = None) -> list[dict[str, Any]]:
    """One row per k: the makespan of every policy, its shard count, spans and bounds.
    With READY (`ready_specs`), also `pipelined_patch`: pipelined at the moment the
    patched compiler actually writes the export data."""
    w, span = graph.work(g, dur), graph.span(g, dur)
    pipe = sim.pipelined_graph(g, specs, dur)
    at_patch = sim.pipelined_graph(g, ready, dur) if ready else None
    by_pkg = {g.nodes[n]["package"]: specs[n] for n in splits}
    rows = []
    for k in ks:
        split_best = pipe_best = None
        for kk in [x for x in choices if x <= k]:
            h, hd = sim.split_graph(g, by_pkg, kk, dur)
            t = sim.list_schedule(h, k, hd).makespan
            if split_best is None or t < split_best[0]:
                split_best = (t, kk, graph.span(h, hd))
            p = sim.pipelined_graph(g, specs, dur, {n: kk for n in splits})
            t = p.schedule(k).makespan
            if pipe_best is None or t < pipe_best[0]:
                pipe_best = (t, kk, graph.span(p.graph, p.dur), graph.work(p.graph, p.dur))
        assert split_best is not None and pipe_best is not None
        row = {"k": k, "levels": sim.level_schedule(g, k, dur).makespan,
               "cp_list": sim.list_schedule(g, k, dur).makespan,
               "split_cp_list": split_best[0], "split_shards": split_best[1],
               "pipelined": pipe.schedule(k).makespan,
               "pipelined_split": pipe_best[0], "pipelined_split_shards": pipe_best[1],
               "span": span, "span_split": split_best[2],
               "span_pipelined": graph.span(pipe.graph, pipe.dur), "span_pipelined_split": pipe_best[2],
               "work": w, "work_pipelined_split": pipe_best[3],
               "lower_bound": max(w / k, span),
               "lower_bound_pipelined": max(w / k, graph.span(pipe.graph, pipe.dur))}
        if at_patch is not None:
            row.update(pipelined_patch=at_patch.schedule(k).makespan,
                       span_pipelined_patch=graph.span(at_patch.graph, at_patch.dur))
        rows.append({key: (round(v, 3) if isinstance(v, float) else v) for key, v in row.items()})
    return rows


def phase_table(g: nx.DiGraph, specs: Mapping[Any, sim.SplitSpec], dur: Mapping[Any, float],
                top: int = 15) -> list[dict[str, Any]]:
    """The longest compiles: duration in the graph, F/B/D from -bench, the frontend's share."""
    rows = []
    for n in sorted(specs, key=lambda x: -dur[x])[:top]:
        s = specs[n]
        rows.append({"package": g.nodes[n]["package"], "action_s": round(dur[n], 3),
                     "frontend_s": round(s.frontend_s, 3), "backend_s": round(s.backend_s, 3),
                     "dumpobj_s": round(s.merge_s, 3),
                     "frontend_frac": round(s.frontend_s / s.total_s, 3) if s.total_s else None})
    return rows


def frontend_share(g: nx.DiGraph, specs: Mapping[Any, sim.SplitSpec], dur: Mapping[Any, float]) -> float:
    """The frontend's share of all compile time (each compile's F scaled to its duration)."""
    tot = sum(dur[n] for n in specs)
    fe = sum(dur[n] * s.frontend_s / s.total_s for n, s in specs.items() if s.total_s > 0)
    return fe / tot if tot else 0.0
