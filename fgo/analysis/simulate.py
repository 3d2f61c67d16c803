"""Scheduling simulations on an action DAG with measured durations (pure functions).

The input is any networkx DiGraph (edge dep -> dependent) plus a duration per
node, normally `fgo.analysis.actiongraph.work_graph` of a real build. Every function
here is deterministic and runs no process; numbers it produces are
*simulated* and must be labelled so.

Policies, for k identical workers and zero communication cost:

(a) `level_schedule`: DistGo-style. Nodes are grouped by longest-path depth
    (`graph.level_groups`); each level is list-scheduled on k workers
    (longest first onto the least-loaded worker, LPT) and the next level starts
    only when the whole level is done (a barrier between levels).
(b) `list_schedule` with `graph.bottom_levels`: greedy DAG list scheduling; when a
    worker is free it takes the ready node with the longest remaining path
    to the end (bottom level incl. its own duration; HLFET).
    go build itself is *not* this: cmd/go/internal/work/exec.go (`Builder.Do`)
    numbers the actions in a depth-first post-order walk from the root
    (`actionList`) and its ready queue (`actionQueue`, a heap on that index)
    pops the lowest index first; `-p N` (default GOMAXPROCS, i.e. the CPU
    count) is the number of goroutines taking actions from that queue. On top
    of that each compile gets `-c` backend threads from a token pool
    (gc.go:compilerConcurrency). `go_priorities` + `list_schedule` simulates
    that order without the -c threads; (e) below with them.
(c) `split_graph` then (b): chosen large packages are replaced by K shard
    nodes (each frontend F + backend B/K, or measured shard times) with the
    package's deps, plus a merge node (D) that its dependents wait for.
(d) `pipelined_graph` then (b): each compile is its frontend F then its
    backend B + D in one process; dependents' compiles wait only for the
    frontend (the export data), links and other actions for the whole; with
    chosen packages also split K ways as in (c). That is pipelining's ideal;
    `speculative_schedule` is fgo's as it runs (go build stays the driver,
    speculations only fill idle remote slots, the head's compiles export nothing
    early).

(e) `gobuild_schedule`: the baseline a user runs instead, `go build` on ONE node of N cores
    with its defaults: -p N goroutines in go's order, and each compile's backend on c
    goroutines, c from go1.27.3's token pool (`TokenPool`, cmd/go/internal/work/gc.go
    compilerConcurrency) as the compile starts. A compile's backend speedup with c is
    Amdahl's, with a per-package parallel fraction measured from -c=1 against -c=2
    (`parallel_fraction`); threads beyond the N cores share them (processor sharing).
    `sweep(..., shapes=...)` adds it to every table (go_build_c) next to the policies above,
    which give every worker one core and every compile -c=1.

`lower_bound`: max(work / k, span) — no schedule on k workers can beat it.
Work, span, critical path, bottom levels and levels are `fgo.analysis.graph`'s
(same edge direction, durations on the nodes).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from fgo.analysis import graph
from fgo.analysis.graph import Durations


@dataclass
class Schedule:
    """Result of a simulation: when each node ran, on which worker."""

    makespan: float
    start: dict[Any, float] = field(default_factory=dict)
    finish: dict[Any, float] = field(default_factory=dict)
    worker: dict[Any, int] = field(default_factory=dict)

    def busy(self) -> float:
        return sum(self.finish[n] - self.start[n] for n in self.start)

    def utilization(self, k: int) -> float:
        return self.busy() / (k * self.makespan) if self.makespan > 0 else 0.0


def _dur(g: nx.DiGraph, dur: Durations | None) -> Durations:
    return dur if dur is not None else graph.node_weights(g)


def lower_bound(g: nx.DiGraph, k: int, dur: Durations | None = None) -> float:
    """max(work/k, span): the work/span bound on the makespan with k workers."""
    if k < 1:
        raise ValueError("k must be >= 1")
    return max(graph.work(g, dur) / k, graph.span(g, dur))


def go_priorities(g: nx.DiGraph, attr: str = "priority") -> dict[Any, float]:
    """go build's order: the post-order index recorded in the action graph, lowest first.

    Returned negated so that, as for every priority here, higher runs first.
    Shards made by `split_graph` carry the index of the node they came from.
    """
    return {n: -float(g.nodes[n].get(attr, 0) or 0) for n in g}


def list_schedule(g: nx.DiGraph, k: int, dur: Durations | None = None,
                  priority: Mapping[Any, float] | None = None,
                  chain: Mapping[Any, Any] | None = None,
                  local: int = 0, local_dur: Durations | None = None,
                  head_only: Collection[Any] = ()) -> Schedule:
    """Greedy (non-delay) list scheduling of the DAG on k identical workers.

    Whenever a worker is idle and a node is ready (all deps finished), the
    ready node with the highest priority starts (ties: insertion order of g).
    Default priority: `graph.bottom_levels` (critical path first).
    CHAIN {a: b}: b is the rest of a's process (e.g. a compile's backend after its
    frontend): b starts on a's worker the moment a finishes, never queued behind
    other work; b's only dep must be a.
    LOCAL: the first LOCAL of the k workers are the head's own slots, taken first when free
    (the lowest free id starts next), where a node takes LOCAL_DUR (e.g. without the
    remote path's dispatch and transfer) instead of DUR.
    HEAD_ONLY: nodes that run on those LOCAL slots only (e.g. verification's compiles); one
    waits for a free head slot while the others take the workers.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    d = _dur(g, dur)
    ld = _dur(g, local_dur) if local else d
    chain = chain or {}
    for a, b in chain.items():
        if list(g.predecessors(b)) != [a]:
            raise ValueError(f"chained node {b!r} must depend on {a!r} alone")
    chained = set(chain.values())
    prio = priority if priority is not None else graph.bottom_levels(g, d)
    order = {n: i for i, n in enumerate(g)}
    pending = {n: g.in_degree(n) for n in g}
    ready: list[tuple[float, int, Any]] = [(-prio[n], order[n], n) for n in g if pending[n] == 0]
    heapq.heapify(ready)
    free = list(range(k))  # idle worker ids, lowest first
    heapq.heapify(free)
    running: list[tuple[float, int, int, Any]] = []  # (finish, order, worker, node)
    sched = Schedule(0.0)
    now = 0.0
    done = 0

    def start(n: Any, w: int) -> None:
        sched.start[n], sched.worker[n] = now, w
        sched.finish[n] = now + max(0.0, float((ld if w < local else d)[n]))
        heapq.heappush(running, (sched.finish[n], order[n], w, n))

    while done < len(pending):
        _start_ready(ready, free, local, head_only, start)
        if not running:
            raise ValueError("graph has a cycle or unreachable nodes")
        now = running[0][0]
        while running and running[0][0] <= now:
            _, _, w, n = heapq.heappop(running)
            done += 1
            for s in g.successors(n):
                pending[s] -= 1
                if pending[s] == 0 and s not in chained:
                    heapq.heappush(ready, (-prio[s], order[s], s))
            if n in chain:
                start(chain[n], w)
            else:
                heapq.heappush(free, w)
    sched.makespan = max(sched.finish.values(), default=0.0)
    return sched


def _start_ready(ready: list[tuple[float, int, Any]], free: list[int], local: int,
                 head_only: Collection[Any], start: Callable[[Any, int], None]) -> None:
    """START the READY nodes (a heap, highest priority first) on the FREE workers (a heap,
    lowest id first) while both last; a HEAD_ONLY node waits for one of the first LOCAL."""
    waiting = []
    while ready and free:
        item = heapq.heappop(ready)
        if local and item[2] in head_only and free[0] >= local:
            waiting.append(item)
            continue
        start(item[2], heapq.heappop(free))
    for item in waiting:
        heapq.heappush(ready, item)


def lpt(tasks: Sequence[tuple[Any, float]], k: int, t0: float = 0.0) -> Schedule:
    """Independent tasks on k workers, longest first onto the least-loaded worker."""
    loads = [(t0, w) for w in range(k)]
    heapq.heapify(loads)
    sched = Schedule(t0)
    for n, t in sorted(tasks, key=lambda x: -x[1]):
        at, w = heapq.heappop(loads)
        sched.start[n], sched.finish[n], sched.worker[n] = at, at + t, w
        heapq.heappush(loads, (at + t, w))
    sched.makespan = max([t0, *sched.finish.values()])
    return sched


def level_schedule(g: nx.DiGraph, k: int, dur: Durations | None = None) -> Schedule:
    """(a) DistGo-style: levels in sequence with a barrier; LPT inside each level."""
    if k < 1:
        raise ValueError("k must be >= 1")
    d = _dur(g, dur)
    out = Schedule(0.0)
    t = 0.0
    for group in graph.level_groups(g):
        s = lpt([(n, float(d[n])) for n in group], k, t)
        out.start.update(s.start)
        out.finish.update(s.finish)
        out.worker.update(s.worker)
        t = s.makespan
    out.makespan = t
    return out


# ---------------------------------------------------------------- splitting

@dataclass(frozen=True)
class SplitSpec:
    """How one package's compile splits; seconds, from `compile -bench` or shard runs.

    frontend_s (F): parse, typecheck, inline, escape... repeated by every shard.
    backend_s (B): SSA + codegen of all functions, divided among the shards.
    merge_s (D): what the leader adds after the shards (dumpobj + injection).
    shard_s: optional measured wall times per shard count K: {K: [t_1..t_K]};
      when present for the K asked for, they replace F + B/K for the shards
      (merge_s is still added by the merge node).
    scale_to_action: scale everything by d / (F+B+D), d being the action's
      duration in the graph, so an unsplit (K=1) package costs exactly what
      the graph says (the phase times and the graph come from different runs).
    """

    frontend_s: float
    backend_s: float
    merge_s: float
    shard_s: Mapping[int, Sequence[float]] | None = None
    scale_to_action: bool = True

    @property
    def total_s(self) -> float:
        return self.frontend_s + self.backend_s + self.merge_s

    def shard_times(self, k: int, scale: float = 1.0) -> list[float]:
        if self.shard_s and k in self.shard_s:
            return [scale * t for t in self.shard_s[k]]
        return [scale * (self.frontend_s + self.backend_s / k)] * k

    def split_span(self, k: int, scale: float = 1.0) -> float:
        """The package's own span when split K ways: max shard + merge."""
        return max(self.shard_times(k, scale)) + scale * self.merge_s


def split_graph(g: nx.DiGraph, specs: Mapping[str, SplitSpec],
                shards: int | Callable[[str], int], dur: Durations | None = None,
                mode: str = "build") -> tuple[nx.DiGraph, dict[Any, float]]:
    """(c) Replace each `mode` node whose package is in SPECS by K shards + a merge.

    The merge node keeps the original node id (so dependents and reports still
    find the package); shard i is (id, "shard", i). Shards inherit the node's
    deps and attributes (mode "split shard"); the merge (mode "split merge")
    depends on all shards. K = shards or shards(package); K <= 1 leaves the
    node alone. Returns the new graph and its durations.
    """
    d = dict(_dur(g, dur))
    h = g.copy()
    for n in list(g):
        attrs = g.nodes[n]
        pkg = attrs.get("package")
        if attrs.get("mode") != mode or pkg not in specs:
            continue
        k = shards(pkg) if callable(shards) else int(shards)
        if k <= 1:
            continue
        spec = specs[pkg]
        scale = d[n] / spec.total_s if spec.scale_to_action and spec.total_s > 0 else 1.0
        preds = list(h.predecessors(n))
        for i, t in enumerate(spec.shard_times(k, scale)):
            s = (n, "shard", i)
            h.add_node(s, **{**attrs, "mode": "split shard", "duration": t})
            h.add_edges_from((p, s) for p in preds)
            h.add_edge(s, n)
            d[s] = t
        h.remove_edges_from([(p, n) for p in preds])
        d[n] = scale * spec.merge_s
        h.nodes[n].update(mode="split merge", duration=d[n])
    return h, d


# ---------------------------------------------------------------- pipelining

@dataclass
class Pipelined:
    """A graph with pipelined compiles (see `pipelined_graph`) and how to schedule it."""

    graph: nx.DiGraph
    dur: dict[Any, float]
    chain: dict[Any, Any]       # frontend node -> the backend that continues its process

    def schedule(self, k: int) -> Schedule:
        """List scheduling, critical path first, each backend right after its frontend."""
        return list_schedule(self.graph, k, self.dur, chain=self.chain)


def pipelined_graph(g: nx.DiGraph, specs: Mapping[Any, SplitSpec], dur: Durations | None = None,
                    shards: Mapping[Any, int] | None = None, mode: str = "build") -> Pipelined:
    """(d) Pipelined compilation: dependents' compiles start from a package's export data.

    Each `mode` node n in SPECS (keyed by node) becomes its frontend (n, "export"),
    F seconds, then its backend n (B + D), run as one process (`Pipelined.chain`).
    A dependent of mode `mode` (a compile) waits only for the frontend; every other
    dependent (link, cgo, ...) for the whole. F, B, D are scaled to the node's duration
    as in `split_graph`. With SHARDS {n: K}, K > 1, n is also split: the frontend
    (the leader's) is followed by the leader's share B/K, shards 1..K-1 take F + B/K
    each, and the merge n (D) waits for all of them; dependents' compiles wait for
    the leader's frontend. Nodes not in SPECS (or with F + B + D = 0) stay whole.
    """
    d = dict(_dur(g, dur))
    shards = shards or {}
    h = nx.DiGraph()
    hd: dict[Any, float] = {}
    chain: dict[Any, Any] = {}
    entry: dict[Any, list[Any]] = {}   # the nodes that take n's deps
    export: dict[Any, Any] = {}        # what a dependent compile of n waits for

    def add(node: Any, t: float, attrs: Mapping[str, Any], role: str) -> None:
        h.add_node(node, **{**attrs, "mode": role, "duration": t})
        hd[node] = t

    for n in g:
        attrs = g.nodes[n]
        spec = specs.get(n) if attrs.get("mode") == mode else None
        if spec is None or spec.total_s <= 0:
            h.add_node(n, **attrs)
            hd[n] = d[n]
            entry[n], export[n] = [n], n
            continue
        scale = d[n] / spec.total_s
        f, b, m = scale * spec.frontend_s, scale * spec.backend_s, scale * spec.merge_s
        k = max(1, int(shards.get(n, 1)))
        front = (n, "export")
        add(front, f, attrs, "frontend")
        entry[n], export[n] = [front], front
        if k == 1:
            add(n, b + m, attrs, "backend")
            h.add_edge(front, n)
            chain[front] = n
            continue
        lead = (n, "shard", 0)
        add(lead, b / k, attrs, "split shard")
        h.add_edge(front, lead)
        chain[front] = lead
        add(n, m, attrs, "split merge")
        h.add_edge(lead, n)
        for i in range(1, k):
            s = (n, "shard", i)
            add(s, f + b / k, attrs, "split shard")
            h.add_edge(s, n)
            entry[n].append(s)
    for u, v in g.edges:
        src = export[u] if g.nodes[v].get("mode") == mode else u
        h.add_edges_from((src, t) for t in entry[v])
    return Pipelined(h, hd, chain)


# ---------------------------------------------------------------- fgo's pipelining

@dataclass(eq=False)
class _Job:
    node: Any
    total: float            # seconds of work at full speed
    export_at: float        # work done when its export data is out (total: with the archive)
    done: float = 0.0
    exported: bool = False


def speculative_schedule(g: nx.DiGraph, k: int, dur: Durations | None = None,
                         export_frac: Callable[[Any], float] = lambda n: 1.0,
                         priority: Mapping[Any, float] | None = None,
                         local: int = 0, local_dur: Durations | None = None,
                         head_only: Collection[Any] = (), mode: str = "build",
                         head_exports: bool = False) -> Schedule:
    """fgo's pipelining as it runs (fgo.head.speculation), not (d)'s ideal.

    go build stays the driver: a node is *go-ready* when every dep has finished, and
    go-ready nodes take free slots in PRIORITY order (default: go's own), local slots
    first, as in `list_schedule` (LOCAL, LOCAL_DUR, HEAD_ONLY alike). A `mode` node (a
    compile) run on a remote slot (id >= LOCAL) sends its export data once EXPORT_FRAC(n)
    of its work is done; one on a head's slot, and every other node, only with its
    result (the head's own compiles run the stock way). A compile whose deps have all
    sent export data but are not all finished is *speculable*: it starts in the
    background of a remote slot that has nothing else to run (a speculation is niced:
    it progresses only while its slot has no go-ready work), and once go build asks for
    it (go-ready) it is promoted and shares its slot equally with the slot's own work.
    A speculation never starts on a head's slot. HEAD_EXPORTS: the head's compiles send
    their export data early as well (a design: the shim would run them with -fgoexport)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    d = _dur(g, dur)
    ld = _dur(g, local_dur) if local else d
    prio = priority if priority is not None else go_priorities(g)
    order = {n: i for i, n in enumerate(g)}
    is_mode = {n: g.nodes[n].get("mode") == mode for n in g}
    deps_left = {n: g.in_degree(n) for n in g}
    exports_left = {n: g.in_degree(n) for n in g}
    go_ready: list[tuple[float, int, Any]] = []
    spec_ready: list[tuple[float, int, Any]] = []
    started: dict[Any, int] = {}                 # node -> slot
    fg: list[list[_Job]] = [[] for _ in range(k)]   # go build's work on each slot
    bg: list[_Job | None] = [None] * k              # a speculation, remote slots only
    sched = Schedule(0.0)
    now, finished, eps = 0.0, 0, 1e-9

    def push(heap: list[tuple[float, int, Any]], n: Any) -> None:
        heapq.heappush(heap, (-prio[n], order[n], n))

    for n in g:
        if deps_left[n] == 0:
            push(go_ready, n)

    def start(n: Any, w: int, background: bool) -> None:
        t = max(0.0, float((ld if w < local else d)[n]))
        early = (w >= local or head_exports) and is_mode[n]
        job = _Job(n, t, export_frac(n) * t if early else t)
        started[n] = w
        sched.start[n], sched.worker[n] = now, w
        if background:
            bg[w] = job
        else:
            fg[w].append(job)

    def rates(w: int) -> list[tuple[_Job, float]]:
        if fg[w]:
            return [(j, 1.0 / len(fg[w])) for j in fg[w]]
        spec = bg[w]
        return [(spec, 1.0)] if spec is not None else []

    def exported(n: Any) -> None:
        for s in g.successors(n):
            exports_left[s] -= 1
            if exports_left[s] == 0 and deps_left[s] > 0 and is_mode[s] and s not in started:
                push(spec_ready, s)

    def complete(job: _Job, w: int) -> None:
        nonlocal finished
        n = job.node
        sched.finish[n] = now
        finished += 1
        if fg[w] and job in fg[w]:
            fg[w].remove(job)
        else:
            bg[w] = None
        if not job.exported:
            exported(n)
        for s in g.successors(n):
            deps_left[s] -= 1
            if deps_left[s]:
                continue
            if s not in started:
                push(go_ready, s)
            elif (spec := bg[started[s]]) is not None and spec.node == s:  # promoted
                fg[started[s]].append(spec)
                bg[started[s]] = None

    while finished < len(g):
        # a slot that comes free goes to a speculation first: the speculator hears of
        # it at once, go build's next request needs a round trip (then pauses it)
        for w in range(local, k):
            if fg[w] or bg[w] is not None:
                continue
            while spec_ready and (spec_ready[0][2] in started or not deps_left[spec_ready[0][2]]):
                heapq.heappop(spec_ready)
            if not spec_ready:
                break
            start(heapq.heappop(spec_ready)[2], w, background=True)
        # go build's ready work, the head's slots first (lowest id)
        _start_ready(go_ready, [w for w in range(k) if not fg[w]], local, head_only,
                     lambda n, w: start(n, w, background=False))
        running = [(j, r, w) for w in range(k) for j, r in rates(w)]
        if not running:
            raise ValueError("graph has a cycle or unreachable nodes")
        step = min(((j.export_at if not j.exported else j.total) - j.done) / r
                   for j, r, _ in running)
        now += max(0.0, step)
        for j, r, w in running:
            j.done += r * step
        for j, _, w in running:
            if not j.exported and j.done >= j.export_at - eps and j.export_at < j.total:
                j.exported = True
                exported(j.node)
            if j.done >= j.total - eps:
                complete(j, w)
    sched.makespan = max(sched.finish.values(), default=0.0)
    return sched


# ---------------------------------------------------------------- sweeps

def sweep(g: nx.DiGraph, ks: Iterable[int], dur: Durations | None = None,
          specs: Mapping[str, SplitSpec] | None = None,
          shards_for_k: Callable[[int], int] = lambda k: min(k, 16),
          shapes: Mapping[Any, CompileShape] | None = None) -> list[dict[str, Any]]:
    """Makespans of every policy for each k, with the bounds; one dict per k.

    Keys: k, levels (a), cp_list (b), go_list (go's own order), split_cp_list (c),
    shards (K used for (c)), lower_bound, lower_bound_split, span, span_split, work,
    work_split. Without SPECS, (c) equals (b).
    With SHAPES (`compile_shapes` of g: each compile's F/B/D and backend parallel
    fraction) also the baseline a user would run instead: go_build_c, `go build` on one
    node of k cores with its default -p and -c (`gobuild_schedule`), and go_build_c1,
    the same node with every compile at -c=1.
    """
    d = dict(_dur(g, dur))
    w, sp = graph.work(g, d), graph.span(g, d)
    gop = go_priorities(g)
    rows = []
    for k in ks:
        kk = shards_for_k(k)
        if specs:
            h, hd = split_graph(g, specs, kk, d)
        else:
            h, hd = g, d
        row = {
            "k": k,
            "levels": level_schedule(g, k, d).makespan,
            "cp_list": list_schedule(g, k, d).makespan,
            "go_list": list_schedule(g, k, d, gop).makespan,
            "split_cp_list": list_schedule(h, k, hd).makespan,
            "shards": kk if specs else 1,
            "lower_bound": max(w / k, sp),
            "lower_bound_split": lower_bound(h, k, hd),
            "span": sp,
            "span_split": graph.span(h, hd),
            "work": w,
            "work_split": graph.work(h, hd),
        }
        if shapes is not None:
            row["go_build_c"] = gobuild_schedule(g, GoBuild(k), d, shapes).makespan
            row["go_build_c1"] = gobuild_schedule(g, GoBuild(k, fixed_c=1), d, shapes).makespan
        rows.append(row)
    return rows


# ---------------------------------------------------------------- F, B, D from -bench

def spec_from_phases(ph: Mapping[str, float], merge_extra_s: float = 0.0,
                     scale_to_action: bool = True) -> SplitSpec:
    """SplitSpec (F, B, D) from `fgo.analysis.bench.summary` phases; D = dumpobj + MERGE_EXTRA_S.

    Unaccounted time (process start, flag parsing, exit) is added to F: every
    shard pays it.
    """
    f = ph.get("frontend", 0.0) + ph.get("unaccounted", 0.0)
    return SplitSpec(f, ph.get("backend", 0.0), ph.get("dumpobj", 0.0) + merge_extra_s,
                     scale_to_action=scale_to_action)


# ---------------------------------------------------------------- go build on one node, with -c

def _go_div(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero, unlike Python's //)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class TokenPool:
    """go1.27.3's backend concurrency pool, line for line.

    cmd/go/internal/work/gc.go: `initCompilerConcurrencyPool` sets
        minTokens = min(4, maxCompilerConcurrency)          (maxCompilerConcurrency = GOMAXPROCS)
        tokens    = 2*maxCompilerConcurrency + minTokens*cfg.BuildP
    and `compilerConcurrency`, called as each compile starts (gc.go: `gc`), returns
        GOMAXPROCS                               if -p == 1 (no pool), else
        concurrentProcesses++
        setAside  = (BuildP - concurrentProcesses) * minTokens
        available = tokens - setAside
        c         = max(min(available/2, GOMAXPROCS), minTokens);  tokens -= c
    and gives the c tokens back when the compile ends. go passes `-c=c` only if c > 1; the
    compiler's default -c is GOMAXPROCS (base/flag.go), so c == 1 means 1 here too.
    """

    def __init__(self, gomaxprocs: int, p: int | None = None) -> None:
        if gomaxprocs < 1:
            raise ValueError("GOMAXPROCS must be >= 1")
        self.gomaxprocs = gomaxprocs
        self.p = gomaxprocs if p is None else p  # cfg.BuildP defaults to GOMAXPROCS
        if self.p < 1:
            raise ValueError("-p must be >= 1")
        self.min_tokens = min(4, gomaxprocs)
        self.tokens = 2 * gomaxprocs + self.min_tokens * self.p
        self.total = self.tokens
        self.concurrent = 0

    def acquire(self) -> int:
        if self.p == 1:
            return self.gomaxprocs
        self.concurrent += 1
        set_aside = (self.p - self.concurrent) * self.min_tokens
        available = self.tokens - set_aside
        c = max(min(_go_div(available, 2), self.gomaxprocs), self.min_tokens)
        self.tokens -= c
        return c

    def release(self, c: int) -> None:
        if self.p == 1:
            return
        self.concurrent -= 1
        self.tokens += c


def amdahl(c: float, f: float) -> float:
    """Backend speedup with c goroutines when a fraction F of the -c=1 backend time
    parallelises perfectly: 1 / ((1 - F) + F / c)."""
    if c < 1:
        raise ValueError("c must be >= 1")
    f = min(max(f, 0.0), 1.0)
    return 1.0 / ((1.0 - f) + f / c)


def parallel_fraction(speedup: float, c: float = 2.0) -> float:
    """The Amdahl fraction that gives SPEEDUP (= B at -c=1 / B at -c=C), clipped to [0, 1]."""
    if c <= 1:
        raise ValueError("c must be > 1")
    if speedup <= 0:
        raise ValueError("speedup must be > 0")
    return min(1.0, max(0.0, (1.0 - 1.0 / speedup) / (1.0 - 1.0 / c)))


@dataclass(frozen=True)
class CompileShape:
    """One compile as go build's -c sees it: seconds at -c=1 (F frontend, B backend
    `be:compilefuncs`, D dumpobj), and the Amdahl fraction of B that -c parallelises."""

    F: float
    B: float
    D: float
    parallel: float

    @property
    def total(self) -> float:
        return self.F + self.B + self.D

    def wall(self, c: int) -> float:
        """Its duration alone with -c=C (enough idle cores)."""
        return self.F + self.B / amdahl(c, self.parallel) + self.D


# Where a compile's F/B/D are not measured: the shares of a cold etcd build's compile time per
# the compiler's -bench (measured-facts-2: frontend 32% of all compile time; dumpobj ~4%).
DEFAULT_SHARES = (0.32, 0.64, 0.04)


@dataclass(frozen=True)
class GoBuild:
    """`go build` on one node: CORES = GOMAXPROCS of go and of every compile; -p P
    (default: CORES). FIXED_C: every compile gets -c=FIXED_C (e.g. `-gcflags=all=-c=4`,
    or Go 1.9's experiments) instead of the pool's c. CONTENTION: when the running
    threads outnumber the cores, every thread gets CORES / threads of a core
    (processor sharing); without it, every thread gets a core of its own."""

    cores: int
    p: int | None = None
    fixed_c: int | None = None
    contention: bool = True
    nodes: int = 1      # >1: fgo's workers on NODES nodes of CORES each (slot w on node w % NODES)

    @property
    def procs(self) -> int:
        return self.cores * self.nodes if self.p is None else self.p


@dataclass
class GoBuildSchedule(Schedule):
    """A `gobuild_schedule` result: also each compile's -c and the CPU-seconds it used."""

    c: dict[Any, int] = field(default_factory=dict)


def compile_shapes(g: nx.DiGraph, dur: Durations | None = None,
                   phases: Mapping[Any, CompileShape] | None = None,
                   default_parallel: float | Callable[[float], float] = 0.5,
                   shares: tuple[float, float, float] = DEFAULT_SHARES,
                   mode: str = "build") -> dict[Any, CompileShape]:
    """A CompileShape for every MODE node of g, scaled to its duration in DUR (the graph's
    -c=1 duration is the truth; the shape only says how it divides). PHASES (by node) give
    measured F/B/D/parallel; other nodes divide by SHARES and get DEFAULT_PARALLEL (a
    constant, or a function of the node's B seconds)."""
    d = _dur(g, dur)
    out: dict[Any, CompileShape] = {}
    for n in g:
        if g.nodes[n].get("mode") != mode:
            continue
        t = max(0.0, float(d[n]))
        ph = (phases or {}).get(n)
        if ph is not None and ph.total > 0:
            k = t / ph.total
            out[n] = CompileShape(ph.F * k, ph.B * k, ph.D * k, ph.parallel)
            continue
        b = shares[1] * t
        f = default_parallel(b) if callable(default_parallel) else default_parallel
        out[n] = CompileShape(shares[0] * t, b, shares[2] * t, f)
    return out


def gobuild_schedule(g: nx.DiGraph, build: GoBuild, dur: Durations | None = None,
                     shapes: Mapping[Any, CompileShape] | None = None,
                     priority: Mapping[Any, float] | None = None,
                     delays: Mapping[Any, float] | None = None) -> GoBuildSchedule:
    """Simulate `go build` on one node of BUILD.cores cores, backend concurrency included.

    -p goroutines take ready actions in go's order (`go_priorities`, or PRIORITY); a compile
    (a node in SHAPES, see `compile_shapes`) asks the token pool (`TokenPool`) for its c as it
    starts, runs its frontend F on one thread, its backend as Amdahl says (the parallel part
    fB on c threads, the rest (1-f)B on one), then D on one thread, and returns the tokens.
    Every other action runs on one thread for its duration. Threads share the cores (fluid
    processor sharing, see GoBuild.contention). With c = 1 everywhere and -p <= cores this
    is `list_schedule(g, p, dur, go_priorities(g))`.
    With BUILD.nodes > 1 the -p slots are spread over that many nodes of BUILD.cores each
    (fgo's workers; the token pool is still the head's go build's), threads share their own
    node's cores, and DELAYS {node: seconds} hold a slot without using a core before the
    action runs (fgo's dispatch and transfer).
    """
    d = _dur(g, dur)
    shapes = shapes or {}
    pool = TokenPool(build.cores, build.procs)
    prio = priority if priority is not None else go_priorities(g)
    order = {n: i for i, n in enumerate(g)}
    pending = {n: g.in_degree(n) for n in g}
    ready: list[tuple[float, int, Any]] = [(-prio[n], order[n], n) for n in g if pending[n] == 0]
    heapq.heapify(ready)
    free = list(range(build.procs))
    heapq.heapify(free)
    segs: dict[Any, list[list[float]]] = {}   # running node -> [[cpu-seconds left, threads], ...]
    out = GoBuildSchedule(0.0)
    now = 0.0
    done = 0
    eps = 1e-12

    delays = delays or {}

    def segments(n: Any, c: int) -> list[list[float]]:
        wait = [[float(delays[n]), 0.0]] if delays.get(n) else []   # 0 threads: wall time only
        s = shapes.get(n)
        if s is None:
            return wait + [[max(0.0, float(d[n])), 1.0]]
        fb = min(max(s.parallel, 0.0), 1.0) * s.B
        return wait + [[s.F, 1.0], [fb, float(c)], [s.B - fb, 1.0], [s.D, 1.0]]

    def finish(n: Any) -> None:
        nonlocal done
        del segs[n]
        out.finish[n] = now
        done += 1
        if n in out.c and build.fixed_c is None:
            pool.release(out.c[n])
        heapq.heappush(free, out.worker[n])
        for s in g.successors(n):
            pending[s] -= 1
            if pending[s] == 0:
                heapq.heappush(ready, (-prio[s], order[s], s))

    while done < len(pending):
        while ready and free:
            _, _, n = heapq.heappop(ready)
            c = 1
            if n in shapes:
                c = pool.acquire() if build.fixed_c is None else build.fixed_c
                out.c[n] = c
            out.start[n], out.worker[n] = now, heapq.heappop(free)
            # an empty list (nothing to run) still ends at the next event, as in list_schedule
            segs[n] = [x for x in segments(n, c) if x[0] > eps]
        if not segs:
            raise ValueError("graph has a cycle or unreachable nodes")
        threads = [0.0] * build.nodes
        for n, s in segs.items():
            if s:
                threads[out.worker[n] % build.nodes] += s[0][1]
        share = [min(1.0, build.cores / t) if build.contention and t else 1.0 for t in threads]

        def rate(n: Any, s: list[list[float]]) -> float:
            return s[0][1] * share[out.worker[n] % build.nodes] if s[0][1] else 1.0

        empty = any(not s for s in segs.values())
        dt = 0.0 if empty else min(s[0][0] / rate(n, s) for n, s in segs.items())
        now += dt
        ended = []
        for n, s in segs.items():
            if s:
                s[0][0] -= dt * rate(n, s)
            while s and s[0][0] <= eps * max(1.0, now):
                s.pop(0)
            if not s:
                ended.append(n)
        for n in sorted(ended, key=order.__getitem__):
            finish(n)
    out.makespan = max(out.finish.values(), default=0.0)
    return out
