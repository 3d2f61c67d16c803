"""Render experiments/REPORT.md and its PNG plots from experiments/results/*.json.

Run by conftest.py at the end of `pytest experiments/ --benchmark`; also
runnable alone to re-render from stored results:

    .venv/bin/python -m experiments.report [RESULTS_DIR [REPORT.md]]

Every table and figure names its source: machine, Go version, date and the
exact command. Measured and simulated numbers live in separate tables and are
labelled; a simulated number is never derived from a measured one in the same
cell.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def label(meta: dict[str, Any], kind: str) -> str:
    m = meta.get("machine", {})
    return (f"{kind}; {m.get('uname_m', '?')}, {m.get('cores', '?')} cores ({m.get('cpu', '?')}); "
            f"{meta.get('go_version', '?')}; {meta.get('date', '?')}; "
            f"load avg at save {', '.join(str(x) for x in meta.get('loadavg', []))}; "
            f"command: `{meta.get('command', '?')}`")


def table(rows: Sequence[dict[str, Any]], cols: Sequence[tuple[str, str]]) -> str:
    if not rows:
        return "_(no rows)_\n"
    out = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r.get(key)
            if isinstance(v, float):
                v = f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
            cells.append("" if v is None else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bottom(fig: Any, inches: float = 0.95) -> float:
    """Bottom margin (figure fraction) leaving room for the x label and the footer."""
    return inches / fig.get_figheight()


def _footer(fig: Any, meta: dict[str, Any], kind: str) -> None:
    import textwrap

    fig.text(0.01, 0.005, "\n".join(textwrap.wrap(label(meta, kind).replace("`", ""), 150)),
             fontsize=6, va="bottom", ha="left", color="0.3")


def _save(fig: Any, out: Path, meta: dict[str, Any], kind: str, **adjust: float) -> Path:
    """Margins (room at the bottom for the x label and the footer), the footer, OUT written."""
    fig.subplots_adjust(bottom=_bottom(fig), **adjust)
    _footer(fig, meta, kind)
    fig.savefig(out, dpi=110)
    _plt().close(fig)
    return out


# ---------------------------------------------------------------- figures

def fig_corpus(doc: dict[str, Any], out: Path) -> Path:
    plt = _plt()
    rows = doc["rows"]
    projects = list(dict.fromkeys(r["project"] for r in rows))
    series = sorted({(r["kind"], r["gomaxprocs"]) for r in rows})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(series))
    for i, (kind, p) in enumerate(series):
        ys = [next((r["wall_s"] for r in rows if r["project"] == pr and r["kind"] == kind
                    and r["gomaxprocs"] == p), 0) for pr in projects]
        ax.bar([x + i * width for x in range(len(projects))], ys, width, label=f"{kind}, GOMAXPROCS={p}")
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(projects))], projects)
    ax.set_ylabel("wall time (s)")
    ax.set_title("go build wall time, cold (-a, empty GOCACHE) and warm — MEASURED")
    ax.legend(fontsize=8)
    return _save(fig, out, doc["meta"], "measured")


def fig_width(doc: dict[str, Any], repo: Path, out: Path) -> Path | None:
    from fgo.analysis import actiongraph as ag
    plt = _plt()
    rows = [r for r in doc["rows"] if r["kind"] == "cold"]
    if not rows:
        return None
    projects = list(dict.fromkeys(r["project"] for r in rows))
    fig, axes = plt.subplots(len(projects), 1, figsize=(8, 1.9 * len(projects) + 1.3), squeeze=False)
    for ax, pr in zip(axes[:, 0], projects):
        for r in rows:
            if r["project"] != pr:
                continue
            gp = Path(r["graph"])
            gp = gp if gp.is_absolute() else repo / gp
            if not gp.exists():
                continue
            g = ag.load(gp)
            wg = ag.work_graph(g)
            iv = [(float(wg.nodes[n]["start"]), float(wg.nodes[n]["done"])) for n in wg
                  if wg.nodes[n].get("start") is not None and wg.nodes[n].get("done") is not None]
            bins = ag.binned_width(iv, 150)
            if bins:
                ax.step([t for t, _ in bins], [w for _, w in bins], where="post", lw=0.9,
                        label=f"GOMAXPROCS={r['gomaxprocs']} (avg {r['avg_width']:.2f})")
        ax.set_ylabel(pr, fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the first action started")
    fig.suptitle("Work actions running at once during a cold go build (recorded times, averaged "
                 "over 150 bins) — MEASURED", fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylim(bottom=0)
    return _save(fig, out, doc["meta"], "measured", top=1 - 0.45 / fig.get_figheight(), hspace=0.45)


POLICY_LABELS = {
    "levels": "(a) DistGo levels + barriers",
    "cp_list": "(b) DAG list sched., critical-path priority",
    "go_list": "go build's order (post-order priority)",
    "split_cp_list": "(c) (b) + split large packages, modelled shards",
    "measured_cp_list": "(c) (b) + split large packages, measured shards",
}


def fig_sim(doc: dict[str, Any], out: Path) -> Path:
    plt = _plt()
    rows = doc["rows"]
    ks = [r["k"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.3))
    for pol, lab in POLICY_LABELS.items():
        if pol not in rows[0]:
            continue
        a1.plot(ks, [r[pol] for r in rows], marker="o", ms=3, label=lab)
        a2.plot(ks, [rows[0]["work"] / r[pol] for r in rows], marker="o", ms=3, label=lab)
    a1.plot(ks, [r["lower_bound"] for r in rows], "k--", lw=1, label="bound max(work/k, span)")
    a1.plot(ks, [r["lower_bound_split"] for r in rows], "k:", lw=1, label="bound with splits")
    a2.plot(ks, [rows[0]["work"] / r["lower_bound"] for r in rows], "k--", lw=1, label="bound")
    a2.plot(ks, [rows[0]["work"] / r["lower_bound_split"] for r in rows], "k:", lw=1, label="bound with splits")
    for a in (a1, a2):
        a.set_xscale("log", base=2)
        a.set_xlabel("workers k")
        a.grid(alpha=0.3)
    a1.set_yscale("log")
    a1.set_ylabel("makespan (s)")
    a2.set_ylabel("speedup vs 1 worker (work / makespan)")
    a1.legend(fontsize=6.5)
    name = doc["meta"].get("project", "?")
    src = SOURCE_LABELS.get(doc["meta"].get("durations", "wall"), "")
    fig.suptitle(f"{name}: makespan and speedup vs workers — SIMULATED on measured {src}", fontsize=9)
    return _save(fig, out, doc["meta"], "simulated", wspace=0.3)


def fig_split(doc: dict[str, Any], sim: dict[str, Any], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.3))
    for r in doc["rows"]:
        pkg = r["package"]
        srows = [s for s in sim["rows"] if s["package"] == pkg]
        line = ax.plot([s["k"] for s in srows], [s["bound_s"] for s in srows], marker="o", ms=3,
                       label=f"{pkg}: F + D + B/k (simulated)")[0]
        ms = [s for s in srows if s.get("shards_measured_s") is not None]
        if ms:
            ax.plot([s["k"] for s in ms], [s["shards_measured_s"] for s in ms], marker="s", ls="--",
                    color=line.get_color(), label=f"{pkg}: from the shard processes' CPU times (simulated k machines)")
        ax.axhline(r["stock_c1_wall_s"], color=line.get_color(), lw=0.8, ls=":",
                   label=f"{pkg}: stock -c=1 (measured)")
        ax.axhline(r["stock_c2_wall_s"], color=line.get_color(), lw=0.8, ls="-.",
                   label=f"{pkg}: stock -c=2 (measured)")
        if r.get("split2_wall_s"):
            ax.plot([2], [r["split2_wall_s"]], "*", ms=10, color=line.get_color(),
                    label=f"{pkg}: split K=2, 2 processes on 2 cores (measured)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("shards / machines k")
    ax.set_ylabel("compile wall time (s)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    ax.set_title("One package's compile split k ways — simulated lines, measured references", fontsize=10)
    return _save(fig, out, doc["meta"], "simulated (lines) and measured (horizontal references, star)")


def fig_dispatch(results: Path, doc: dict[str, Any], out: Path) -> Path | None:
    plt = _plt()
    data = {}
    for r in doc["rows"]:
        f = results / "raw" / f"{r['project'].replace('/', '_')}-fgo-dispatch.json"
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if d:
            data[r["project"]] = [1e3 * float(x) for x in d]
    if not data:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(list(data.values()), bins=40, label=list(data), histtype="step")
    ax.set_xlabel("dispatch overhead per remote action (ms): shim request → tool start, and back")
    ax.set_ylabel("actions")
    ax.legend(fontsize=8)
    ax.set_title("fgo build: per-action dispatch overhead — MEASURED", fontsize=10)
    return _save(fig, out, doc["meta"], "measured")


# ---------------------------------------------------------------- report

def _rel(p: Path, base: Path) -> str:
    try:
        return str(p.relative_to(base))
    except ValueError:
        return str(p)


def _shard_cell(row: dict[str, Any]) -> str:
    if row.get("measured_error"):
        return f"not split: {row['measured_error']}"
    return "; ".join(f"{k}: " + " ".join(f"{t:.2f}" for t in ts)
                     for k, ts in (row.get("measured_shard_s") or {}).items())


SOURCE_LABELS = {"wall": "recorded wall durations", "cpu": "CPU-time durations (user+sys of the commands)"}


def summary_paragraph(corpus: dict[str, Any] | None, sims: dict[tuple[str, str], dict[str, Any]],
                      fgo: dict[str, Any] | None, split: dict[str, Any] | None) -> str:
    parts: list[str] = []
    if corpus:
        rows = corpus["rows"]

        def wall(pr: str, kind: str, p: int) -> float | None:
            return next((r["wall_s"] for r in rows if r["project"] == pr and r["kind"] == kind
                         and r["gomaxprocs"] == p), None)
        bits = []
        for pr in dict.fromkeys(r["project"] for r in rows):
            c1, c2, w2 = wall(pr, "cold", 1), wall(pr, "cold", 2), wall(pr, "warm", 2)
            if c1 and c2:
                bits.append(f"{pr} {c1:.0f} s → {c2:.0f} s ({c1 / c2:.2f}×)"
                            + (f", warm {w2:.1f} s" if w2 else ""))
            elif c2 and w2:
                bits.append(f"{pr} cold {c2:.1f} s, warm {w2:.1f} s (GOMAXPROCS=2)")
        if bits:
            both = any(r["gomaxprocs"] == 1 for r in rows)
            parts.append("Measured cold builds (`-a`, empty GOCACHE)" + (", GOMAXPROCS 1 → 2" if both else "")
                         + ": " + "; ".join(bits) + ".")
    for (pr, source), doc in sims.items():
        rows = {r["k"]: r for r in doc["rows"]}
        m = doc["meta"]
        w, sp = m.get("work_s", 0.0), m.get("span_s", 0.0)
        s = (f"{pr}, simulated on {SOURCE_LABELS.get(source, source)} of {m.get('actions')} work actions "
             f"(work {w:.0f} s, span {sp:.1f} s, parallelism {w / sp if sp else 0:.1f}): ")
        bits = []
        for k in (8, 16):
            if k in rows:
                r = rows[k]
                bits.append(f"k={k}: (a) levels {r['levels']:.1f} s, (b) list {r['cp_list']:.1f} s "
                            f"({r['levels'] / r['cp_list']:.2f}× ahead of (a)), (c) split "
                            f"{r['split_cp_list']:.1f} s ({r['levels'] / r['split_cp_list']:.2f}× ahead of (a); "
                            f"span {r['span_split'] / r['span']:.2f}× the unsplit one, K={r['shards']})"
                            + (f", (c) with measured shards {r['measured_cp_list']:.1f} s "
                               f"({r['levels'] / r['measured_cp_list']:.2f}× ahead of (a); span "
                               f"{r['measured_span_split'] / r['span']:.2f}× the unsplit one, "
                               f"K={r['measured_shards']})" if "measured_cp_list" in r else ""))
        reach = next((k for k in sorted(rows) if rows[k]["cp_list"] <= 1.05 * sp), None)
        if reach:
            bits.append(f"(b) is within 5% of the span from k={reach} on")
        parts.append(s + "; ".join(bits) + ".")
    if fgo:
        if fgo.get("meta", {}).get("skipped"):
            parts.append(f"fgo build end to end: not measured ({fgo['meta']['skipped']}).")
        else:
            bits = [f"{r['project']} {r['fgo_cold_s']:.0f} s vs go -p 2 {r['go_p2_cold_s']:.0f} s"
                    f" ({r['speedup_vs_p2']:.2f}×), dispatch p50 {r.get('dispatch_p50_ms')} ms"
                    for r in fgo["rows"] if not r.get("error")]
            bits += [f"{r['project']} failed" for r in fgo["rows"] if r.get("error")]
            parts.append("Measured fgo build -a on 2 local workers: " + "; ".join(bits) + ".")
    if split:
        bits = []
        for r in split["rows"]:
            t = f"{r['package']}: F {r['F_s']:.2f} s, B {r['B_s']:.2f} s, D {r['D_s']:.2f} s " \
                f"(stock -c=1 {r['stock_c1_wall_s']:.1f} s, -c=2 {r['stock_c2_wall_s']:.1f} s)"
            if r.get("split2_wall_s"):
                t += f", split k=2 {r['split2_wall_s']:.1f} s"
            bits.append(t)
        parts.append("Compile phases (measured, -c=1): " + "; ".join(bits) + ".")
    parts.append("Where fgo cannot help: a warm build is all cache hits (nothing to distribute); "
                 "past the span only splitting packages shortens a build, and a split repeats the "
                 "frontend F in every shard, so a package's compile never drops below F + D; on this "
                 "2-core machine remote workers compete with the head node for the same cores.")
    return "\n".join("- " + x for x in parts)


NO_RESULTS = ["_No results yet._", ""]


def _figure(alt: str, path: Path, out: Path, caption: str) -> list[str]:
    """A figure embedded in the report at OUT, with its caption."""
    return [f"![{alt}]({_rel(path, out.parent)})", "", f"*Figure: {caption}*", ""]


def _load_sims(results: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The simulation results, by (project, duration source)."""
    sims = {}
    for p in sorted(results.glob("simulate_*.json")):
        d = _load(p)
        if d:
            m = d["meta"]
            sims[(m.get("project", p.stem), m.get("durations", "wall"))] = d
    return sims


def _intro_lines(head: dict[str, Any], quick: bool, wall_s: float | None) -> list[str]:
    """The title, where and how the results were made, and how to read the numbers."""
    mach = head.get("machine", {})
    return [
        "# fgo experiments report" + (" (--quick subset)" if quick else ""),
        "",
        f"Generated by `{head.get('command', 'pytest experiments/ --benchmark')}` "
        f"on {mach.get('uname_m', '?')}, {mach.get('cores', '?')} cores ({mach.get('cpu', '?')}), "
        f"{head.get('go_version', '?')}, {head.get('date', '?')}"
        + (f"; the run took {wall_s / 60:.1f} min." if wall_s else ".")
        + " Re-render from stored results: `.venv/bin/python -m experiments.report`.",
        "",
        "The machine is shared (other builds run at the same time): absolute times are noisy; "
        "compare ratios taken within one run. The load average at the moment each result was "
        "saved is in its caption. **Measured** numbers come from real runs; **simulated** ones from "
        "`fgo.analysis.simulate` on measured action durations; the two are never combined into one number.",
        "",
    ]


def _corpus_section(corpus: dict[str, Any] | None, sims: dict[tuple[str, str], dict[str, Any]],
                    results: Path, out: Path) -> list[str]:
    """Section 1: the corpus builds, their action-graph shape and critical paths."""
    md = ["## 1. Corpus builds and action-graph shape (measured)", ""]
    if not corpus:
        return md + NO_RESULTS
    corp = corpus["meta"].get("corpus", {})
    md.append("Corpus: " + "; ".join(f"**{n}** `{c['target']}` ({c['note']}"
                                      f"{', GOPATH mode from /usr/share/gocode' if c['gopath_mode'] else ''})"
                                      for n, c in corp.items()) + ".")
    md.append("Cold = `go build -a` with an empty temporary GOCACHE; warm = the same build again. "
              "Shape from `-debug-actiongraph`: *work actions* exclude go's bookkeeping nodes "
              "(check-cache, nop, built-in, install); *work* = sum of action durations; *span* = "
              "critical path by recorded durations; *avg width* = busy time / elapsed, *peak* = most "
              "actions running at once (recorded). The -debug-trace files (Perfetto: ui.perfetto.dev) "
              "are next to the graphs.")
    md.append("")
    md.append(table(corpus["rows"], [
        ("project", "project"), ("kind", "build"), ("gomaxprocs", "GOMAXPROCS"), ("wall_s", "wall s"),
        ("actions", "actions"), ("work_actions", "work actions"), ("compiles", "compiles"),
        ("cached", "cached"), ("work_s", "work s"), ("span_s", "span s"), ("avg_width", "avg width"),
        ("peak_width", "peak width"), ("levels", "levels"), ("load1_before", "load1 before")]))
    md.append(f"_{label(corpus['meta'], 'Measured')}_")
    md.append("")
    f1 = fig_corpus(corpus, results / "fig1_corpus_walls.png")
    f2 = fig_width(corpus, HERE.parent, results / "fig2_width_over_time.png")
    for f, cap in ((f1, "Wall time of cold and warm builds"),
                   (f2, "Number of actions running at once during the cold builds")):
        if f:
            md += _figure(cap, f, out, f"{cap} — {label(corpus['meta'], 'MEASURED')}")
    for (pr, source), doc in sims.items():
        cpath = doc["meta"].get("critical_path") or []
        if cpath and source == "wall":
            md.append(f"Critical path of {pr} (cold, GOMAXPROCS={doc['meta'].get('input_build', {}).get('gomaxprocs')}, "
                      f"{len(cpath)} actions): " + " → ".join(f"`{x}`" for x in cpath))
            md.append("")
    return md


SIM_POLICIES = (
    "Policies (`fgo/analysis/simulate.py`), k identical workers, no communication cost: "
    "(a) DistGo-style: actions grouped by longest-path depth, each level list-scheduled "
    "(longest first) with a barrier before the next level; (b) greedy DAG list scheduling, "
    "critical-path (bottom-level) priority; *go order*: the same greedy scheduler with go "
    "build's real priority — cmd/go (`exec.go`, `Builder.Do`) numbers actions in a depth-first "
    "post-order walk from the root and its ready queue pops the lowest number first; `-p N` "
    "(default GOMAXPROCS) is the number of actions run at once, and each compile also gets "
    "`-c` backend threads from a token pool (not simulated); (c) modelled: (b) after splitting "
    "the critical path's large compiles into K shards (each F + B/K) plus a merge (D), with F/B/D "
    "measured by `compile -bench` (`-c=1`, without `-pgoprofile`, which a split cannot use) and "
    "scaled to the action's duration; K is the best "
    "of {1, 2, 4, 8, 16} not above k; (c) measured (where the table has it): the same splits, "
    "but each shard takes the CPU time of the patched compiler's real shard process (-c=1, "
    "GOMAXPROCS=1: single-threaded, so its time alone; shard 0 = the leader less D), scaled the "
    "same way; K only from the measured "
    "counts, and a package whose split could not be measured stays whole. To fit the run in 30 "
    "minutes, the -bench compiles and the shard processes run two at a time, one per core; "
    "sharing the memory system slows each (gin's `runtime`: 8.6 s alone, 10.8 s beside another "
    "compile, in two --quick runs); both are scaled by the action's recorded duration over the "
    "paired F + B + D, which cancels a slowdown they share. "
    "Input: the cold build with the lowest GOMAXPROCS of the run, "
    "with two duration sources, each in its own table: the recorded wall durations, and the "
    "CPU time (user+sys) of each action's commands — on this shared machine the wall "
    "durations stretch with other processes' load, CPU time of a -c=1 compile hardly does. "
    "Numbers are seconds of simulated makespan.")


def _split_packages_lines(m: dict[str, Any]) -> list[str]:
    """The table of one simulation's split packages and their measured phases (if any)."""
    if not m.get("split_packages"):
        return []
    return [
        "Split packages (F/B/D measured with `compile -bench`, -c=1; `action s` from the "
        "input graph" + ("; measured shards: CPU seconds of each shard process, shard 0 = "
                         "the leader less D" if m.get("measured_shard_choices") else "") + "):",
        "",
        table([{**r, "shards_k": _shard_cell(r)} for r in m["split_packages"]], [
            ("package", "package"), ("action_s", "action s"), ("compile_c1_wall_s", "compile -c=1 s (two at once)"),
            ("frontend_s", "F s"), ("backend_s", "B s"), ("merge_s", "D s"), ("backend_frac", "B share"),
            *([("shards_k", "measured shards s (K: shard 0 … K-1)")]
              if m.get("measured_shard_choices") else [])]),
    ]


def _sim_lines(pr: str, source: str, doc: dict[str, Any], results: Path, out: Path) -> list[str]:
    """One simulation: its input, the makespan table, split packages and figure."""
    m = doc["meta"]
    md = [f"### {pr} — {SOURCE_LABELS.get(source, source)}", ""]
    md.append(f"Input: {m.get('actions')} work actions from `{m.get('input_build', {}).get('command')}` "
              f"(GOMAXPROCS={m.get('input_build', {}).get('gomaxprocs')}); work {m.get('work_s', 0):.1f} s, "
              f"span {m.get('span_s', 0):.1f} s."
              + (f" Re-simulated by `{m['command']}` from the results of `{m['resimulated_from'].get('command')}`"
                 f" ({m['resimulated_from'].get('date')})." if m.get("resimulated_from") else ""))
    md.append("")
    md.append(table(doc["rows"], [
        ("k", "k"), ("levels", "(a) levels s"), ("cp_list", "(b) CP list s"), ("go_list", "go order s"),
        ("split_cp_list", "(c) modelled s"), ("shards", "K"), ("span_split", "span modelled s"),
        *([("measured_cp_list", "(c) measured s"), ("measured_shards", "K meas."),
           ("measured_span_split", "span measured s")] if "measured_cp_list" in doc["rows"][0] else []),
        ("lower_bound", "bound s"), ("lower_bound_split", "bound modelled s")]))
    md.append(f"_{label(m, 'SIMULATED')}_")
    md.append("")
    md += _split_packages_lines(m)
    f = fig_sim(doc, results / f"fig3_sim_{pr.replace('/', '_')}_{source}.png")
    md += _figure(f"{pr} simulation", f, out,
                  f"{pr} ({source} durations): makespan and speedup vs k — {label(m, 'SIMULATED')}")
    return md


def _sim_section(sims: dict[tuple[str, str], dict[str, Any]], results: Path, out: Path) -> list[str]:
    """Section 2: the scheduling policies simulated on each measured build."""
    md = ["## 2. Scheduling simulation on measured durations (simulated)", "", SIM_POLICIES, ""]
    for (pr, source), doc in sims.items():
        md += _sim_lines(pr, source, doc, results, out)
    if not sims:
        md += NO_RESULTS
    return md


def _fgo_section(fgo: dict[str, Any] | None, results: Path, out: Path) -> list[str]:
    """Section 3: fgo build end to end against go build, and its dispatch overhead."""
    md = ["## 3. fgo build end to end (measured)", ""]
    if fgo and fgo.get("meta", {}).get("skipped"):
        return md + [f"Not measured in this run: {fgo['meta']['skipped']}.", ""]
    if not fgo:
        return md + NO_RESULTS
    md.append("`fgo build -a` on an embedded cluster of 2 workers, empty GOCACHE and blob store, against item 1's cold "
              "`go build -a` of the same session at GOMAXPROCS=2 (so -p 2, the fair comparison on 2 "
              "cores) and GOMAXPROCS=1 (-p 1 and -c=1: one core); then a no-op rebuild with fgo. "
              "Dispatch = shim request → tool start plus tool end → reply, per remote action.")
    md.append("")
    md.append(table(fgo["rows"], [
        ("project", "project"), ("fgo_cold_s", "fgo -a s"), ("go_p1_cold_s", "go -a, GOMAXPROCS=1 s"),
        ("go_p2_cold_s", "go -a, GOMAXPROCS=2 s"), ("speedup_vs_p2", "vs -p 2"), ("fgo_noop_s", "fgo no-op s"),
        ("totals_remote", "remote"), ("totals_local", "local"), ("totals_cached", "cached"),
        ("totals_fallbacks", "fallbacks"), ("totals_bytes_sent", "bytes sent"),
        ("totals_unique_input_bytes", "unique input bytes"), ("dispatch_p50_ms", "dispatch p50 ms"),
        ("dispatch_p90_ms", "p90 ms"), ("dispatch_p99_ms", "p99 ms")]))
    for r in fgo["rows"]:
        if r.get("error"):
            err = r["error"].strip().splitlines()
            md.append(f"- **{r['project']}: fgo build failed**: `{err[0][:300]}` … `{err[-2][:300] if len(err) > 1 else ''}`")
    md.append("")
    md.append(f"_{label(fgo['meta'], 'MEASURED')}_")
    md.append("")
    f = fig_dispatch(results, fgo, results / "fig4_dispatch.png")
    if f:
        md += _figure("dispatch", f, out, f"dispatch overhead per remote action — {label(fgo['meta'], 'MEASURED')}")
    return md


def _split_sim_lines(split: dict[str, Any], split_sim: dict[str, Any], results: Path, out: Path) -> list[str]:
    """The simulated k-machine wall time of a split compile, table and figure."""
    md = ["Simulated k-machine wall time of the split compile: the bound F + D + B/k, and, from "
          "the CPU times of the patched compiler's processes (-c=1, GOMAXPROCS=1: each "
          "single-threaded, so its time alone on a machine of its own), max(slowest shard + "
          "merge, leader) — the leader compiles shard 0 and merges:", ""]
    md.append(table(split_sim["rows"], [("package", "package"), ("k", "k"), ("bound_s", "F+D+B/k s"),
                                        ("shards_measured_s", "from the processes s"),
                                        ("slowest_shard_s", "slowest shard s"),
                                        ("leader_alone_s", "leader s"), ("merge_s", "merge s")]))
    md.append(f"_{label(split_sim['meta'], 'SIMULATED')}_")
    md.append("")
    f = fig_split(split, split_sim, results / "fig5_split.png")
    md += _figure("split", f, out, "one package's compile split k ways — "
                  f"{label(split_sim['meta'], 'SIMULATED lines; MEASURED horizontal references')}")
    return md


def _split_section(split: dict[str, Any] | None, split_sim: dict[str, Any] | None,
                   results: Path, out: Path) -> list[str]:
    """Section 4: one package's compile phases, stock and split, measured and simulated."""
    md = ["## 4. Intra-package split", ""]
    if not split:
        return md + NO_RESULTS
    md.append("Measured: phase times from `compile -bench` (F = frontend incl. unaccounted start-up, "
              "B = backend `compilefuncs`, D = `dumpobj`), stock wall times of the package's real "
              "compile command re-run with `-c=1` (GOMAXPROCS=1) and `-c=2` (GOMAXPROCS=2).")
    md.append("")
    md.append(table(split["rows"], [
        ("package", "package"), ("F_s", "F s"), ("B_s", "B s"), ("D_s", "D s"),
        ("stock_c1_wall_s", "stock -c=1 s"), ("stock_c2_wall_s", "stock -c=2 s"),
        ("split2_wall_s", "split K=2, shard + leader at once on 2 cores s"),
        ("split2_identical", "split archive = stock"), ("split_skipped", "split: not measured because")]))
    md.append(f"_{label(split['meta'], 'MEASURED')}_")
    md.append("")
    if split_sim:
        md += _split_sim_lines(split, split_sim, results, out)
    return md


def _runs_and_summaries(doc: dict[str, Any], key: str) -> tuple[list[dict], list[dict]]:
    """A results file's rows: (the runs, the summary rows: KEY == "summary")."""
    rows = doc["rows"]
    return ([r for r in rows if r.get(key) != "summary"],
            [r for r in rows if r.get(key) == "summary"])


def _verification_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 5: the default verification's measured cost."""
    if not doc:
        return []
    rows, summaries = _runs_and_summaries(doc, "run")
    md = ["## 5. What verification costs (measured)", "",
          f"{label(doc['meta'], 'measured')}. Cold `fgo build -a` on the embedded 2-worker cluster, "
          "empty GOCACHE and store each run (`pytest experiments/test_5_verification.py "
          "--benchmark`). `default` verifies each worker's first remote compile and a 3% sample "
          "on the head node; `rate 0` only each worker's first; the split runs split every "
          "package in two and compile it stock on the head node when the ledger has not seen "
          "its inputs.", ""]
    md.append(table(rows, [("project", "project"), ("run", "run"), ("pair", "pair"),
                           ("wall_s", "wall s"), ("checked", "verified"), ("split_checked", "splits verified"),
                           ("verify_s", "head s verifying"), ("wait_s", "link wait s"),
                           ("remote", "remote"), ("split", "split")]))
    md.append("")
    for s in summaries:
        md.append(f"- {s['project']}: default / rate 0, median of {len(s['ratios'])} pair(s): "
                  f"**{s['default_over_rate0_median']}×** (pairs {s['ratios']}); split with a cold "
                  f"ledger / off: {s['split_cold_over_off']}×; warm ledger / off: "
                  f"**{s['split_warm_over_off']}×**.")
    md.append("")
    return md


def _overhead_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 9: fgo against go build on one machine."""
    if not doc:
        return []
    pairs = [r for r in doc["rows"] if isinstance(r.get("pair"), int)]
    medians = [r for r in doc["rows"] if r.get("pair") == "median"]
    tcp = [r for r in doc["rows"] if r.get("pair") == "tcp"]
    md = ["## 9. What fgo costs on one machine (measured)", "",
          f"{label(doc['meta'], 'measured')}. `go build -a -p 2` into an empty GOCACHE against "
          "`fgo build -a` on the embedded 2-worker cluster (go build then runs with -p 2), empty "
          "GOCACHE and store, alternating, then no-op rebuilds on each side's warm cache "
          "(`pytest experiments/test_9_overhead.py --benchmark`). Head CPU: user+sys of the fgo "
          "process itself (imports and cluster start included; `build`: while go build ran) per "
          "remote compile. Every fgo build's outputs are asserted equal to the go side's.", ""]
    md.append(table(pairs, [("project", "project"), ("pair", "pair"), ("first", "first"),
                            ("go_cold_s", "go s"), ("fgo_cold_s", "fgo s"), ("ratio", "fgo/go"),
                            ("go_noop_s", "go no-op s"), ("fgo_noop_s", "fgo no-op s"),
                            ("dispatch_median_ms", "dispatch ms"),
                            ("head_cpu_per_remote_ms", "head CPU ms/compile"),
                            ("head_build_cpu_per_remote_ms", "during build"), ("load1", "load")]))
    md.append("")
    for s in medians:
        met = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in s["targets"].items())
        md.append(f"- {s['project']}, medians of {s['pairs']} pairs: fgo/go **{s['ratio']}×**, "
                  f"no-op +{s['noop_extra_s']} s, dispatch {s['dispatch_median_ms']} ms, head CPU "
                  f"{s['head_cpu_per_remote_ms']} ms per remote compile "
                  f"({s['head_build_cpu_per_remote_ms']} ms while go build ran). Targets: {met}.")
    for r in (r for r in doc["rows"] if r.get("pair") == "rpc"):
        md.append(f"- One compile message, {r['calls']} calls × {r['rounds']} rounds to 2 worker "
                  f"processes (`test_a_task_against_one_rpc`): as a Dask task "
                  f"{r['task_head_cpu_ms']} ms of head CPU and {r['task_wall_ms']} ms each; as "
                  f"one RPC to fgo's handler {r['rpc_head_cpu_ms']} ms and {r['rpc_wall_ms']} ms.")
    for t in tcp:
        md.append(f"- {t['project']} on `dask scheduler` + 2 `dask worker` processes over TCP "
                  f"(`{t['fgo_command']}`): median dispatch **{t['dispatch_median_ms']} ms** "
                  f"({'met' if t['targets']['dispatch <= 15 ms'] else 'NOT met'}: <= 15 ms), head "
                  f"CPU {t['head_cpu_per_remote_ms']} ms per remote compile.")
    md.append("")
    return md


def _model_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 9b: the makespan model against the measured walls."""
    if not doc:
        return []
    md = ["## 9b. The makespan model against measured builds (simulated vs measured)", "",
          f"{label(doc['meta'], 'simulated vs measured')}. Each cold fgo build of section 9 "
          "predicted by `fgo.analysis.makespan.predict`: the go build of the same pair (its action "
          "graph and durations at -p 2, in go's own order, 2 slots) plus fgo's costs (median "
          "dispatch per remote compile, fixed start and end) fitted on the *other* fgo builds "
          "(leave one out).", ""]
    md.append(table(doc["rows"], [("project", "project"), ("pair", "pair"), ("kind", "setup"),
                                  ("measured_s", "measured s"), ("predicted_s", "predicted s"),
                                  ("error", "error"), ("dispatch_s", "dispatch s"),
                                  ("fixed_s", "fixed s")]))
    md += ["", f"Largest error: {100 * doc['meta'].get('worst_error', 0):.1f}% (target 10%).", ""]
    return md


def _das5_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 9c: DAS-5 sizes with the validated cost model (simulated)."""
    if not doc:
        return []
    m = doc["meta"]
    md = ["## 9c. DAS-5 sizes with fgo's measured costs (simulated)", "",
          f"{label(m, 'simulated')}. `fgo.analysis.makespan` (validated in 9b) on this run's "
          "`go build -a -p 1` durations, 16 slots per node, dispatch measured over TCP "
          f"({1000 * m.get('dispatch_s', 0):.1f} ms), each compile's bytes at 1 Gb/s, fixed "
          f"{m.get('fixed_s', 0):.1f} s per build; `levels`: DistGo-style barriers with the same "
          "costs; `split`: --split-large as in section 4 (F + B/K, K <= 16).", ""]
    md.append(table(doc["rows"], [("project", "project"), ("nodes", "nodes"), ("slots", "slots"),
                                  ("plain_s", "fgo s"), ("split_s", "fgo --split-large s"),
                                  ("pipelined_s", "fgo --pipeline s"),
                                  ("levels_s", "levels s"),
                                  ("plain_over_levels", "fgo vs levels"),
                                  ("split_over_levels", "split vs levels"),
                                  ("pipelined_over_levels", "pipelined vs levels"),
                                  ("plain_speedup_vs_1_node", "fgo speedup vs 1 node"),
                                  ("split_speedup_vs_1_node", "split speedup vs 1 node")]))
    md.append("")
    return md


def _scaleout_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 8: scale-out measured on two emulated single-core hosts."""
    if not doc:
        return []
    runs, summaries = _runs_and_summaries(doc, "side")
    md = ["## 8. Scale-out on emulated hosts (measured)", "",
          f"{label(doc['meta'], 'measured')}. Two single-core worker hosts emulated on this machine "
          "(`experiments/hosts.py`: a network namespace each, 1 Gb/s `tbf` links, its own "
          "installation and store, nothing shared with the head but the network): host 0 on core 0 "
          "beside the head (fgo, go build and the Dask scheduler, pinned to core 0), host 1 on "
          "core 1; against `go build -p 1` pinned to core 0. Cold: `-a`, empty GOCACHE and worker "
          "stores, a fresh cluster each run; `ssa`: `cmd/compile/internal/ssa` alone (its "
          "dependencies cached) split K=2 across the hosts against its stock `-c=1` compile. "
          "Sides alternate; speedup = go wall / fgo wall within a pair, median of the pairs; "
          "efficiency = speedup / 2. Every fgo output is byte-identical to its pair's go build "
          "(asserted). Re-run one row: `.venv/bin/pytest experiments/test_8_scaleout.py "
          "--benchmark -k NAME`. Each row's date, load and session (the pytest command) are its "
          "own; the caption's are the last session's.", ""]
    md.append(table(summaries, [("project", "project"), ("pairs", "pairs"),
                                ("go_wall_median_s", "go -p 1 s"), ("fgo_wall_median_s", "fgo s"),
                                ("speedup_median", "speedup"), ("speedups", "per pair"),
                                ("efficiency", "efficiency"), ("target", "target"), ("met", "met"),
                                ("go_cpu_median_s", "go CPU s"),
                                ("fgo_head_cpu_median_s", "fgo head CPU s"),
                                ("load1_max", "max load1"), ("identical", "identical")]))
    md.append("")
    cores = doc["meta"].get("machine", {}).get("cores") or 2
    for s in summaries:
        load = max((r.get("load1_before") or 0) for r in runs if r["project"] == s["project"])
        if s["pairs"] < 3 or load > cores:
            md.append(f"- {s['project']}: **provisional** ({s['pairs']} pair(s); load average up to "
                      f"{load} on {cores} cores: other work shared the cores).")
    md.append("")
    md.append(table(runs, [("project", "project"), ("pair", "pair"), ("side", "side"),
                           ("wall_s", "wall s"), ("cpu_s", "head CPU s"),
                           ("scheduler_cpu_s", "scheduler CPU s"), ("remote", "remote"),
                           ("split", "split"), ("fallbacks", "fallbacks"),
                           ("dispatch_median_ms", "dispatch p50 ms"), ("bytes_sent", "bytes sent"),
                           ("load1_before", "load1"), ("date", "date")]))
    md += ["", "Per run, the fgo report (per-action durations, dispatch, bytes) and go's action "
           "graph are in `results/scaleout/`; the CPU seconds of each host in `hosts_cpu_s`.", ""]
    md += _cpu_by_role(runs)
    return md


def _cpu_by_role(runs: list[dict[str, Any]]) -> list[str]:
    """Where an fgo run's CPU went (process accounting, `experiments/acct.py`): the median
    over each project's fgo runs of each role's seconds, beside go -p 1's CPU."""
    md = []
    for project in sorted({r["project"] for r in runs if r.get("cpu_by_role")}):
        mine = [r for r in runs if r["project"] == project]
        fgo = [r["cpu_by_role"] for r in mine if r.get("cpu_by_role")]
        go_cpu = statistics.median(r["cpu_s"] for r in mine if r["side"] == "go")
        roles = sorted({k for b in fgo for k in b}, key=lambda k: -statistics.median(
            b.get(k, 0.0) for b in fgo))
        rows = [{"role": k, "cpu_s": round(statistics.median(b.get(k, 0.0) for b in fgo), 2)}
                for k in roles]
        total = round(sum(x["cpu_s"] for x in rows), 1)
        md += [f"Where {project}'s fgo CPU went (process accounting, median of {len(fgo)} runs; "
               f"all roles {total} s against go -p 1's {round(go_cpu, 1)} s; `cpu_by_role`):", "",
               table(rows, [("role", "role"), ("cpu_s", "CPU s")]), ""]
    return md


def _pipeline_section(results: Path, export: dict[str, Any] | None,
                      measured: dict[str, Any] | None = None) -> list[str]:
    """Item 7 (issue 15): pipelined compilation, simulated, and the early export data and
    pipelined builds, measured."""
    sims = {p: _load(results / f"pipeline_{p.replace('/', '_')}.json") for p in ("etcd", "gin", "cmd/go", "cmd/compile")}
    sims = {p: d for p, d in sims.items() if d}
    if not sims and not export and not measured:
        return []
    md = ["## 7. Pipelined compilation (issue 15)", ""]
    if sims:
        md += ["Simulated (`pytest experiments/test_7_pipelining.py --benchmark -k simulation`): a cold "
               "`go build -a -gcflags=all=-bench=FILE` at GOMAXPROCS=2, its work actions with their CPU "
               "durations, every compile's F/B/D from its own -bench run (scaled to the action). "
               "`pipelined`: a compile's dependent compiles start when its frontend (F) ends, its backend "
               "(B + D) runs on in the same process, links and cgo wait for the whole; `+split`: the "
               "longest compiles on the pipelined critical path also split K ways (F + B/K per shard, the "
               "leader's frontend gives the export data), K the best of 1..16 <= k. List scheduling by "
               "bottom level, no communication cost; seconds.", ""]
        for p, d in sims.items():
            m, rows = d["meta"], d["rows"]
            md += [f"### {p} (simulated)", "", f"{label(m, 'simulated')}. {m['compiles_with_phases']} of "
                   f"{m['compiles']} compiles with -bench phases; the frontend is "
                   f"{100 * m['frontend_share']:.0f}% of all compile time. Split packages: "
                   f"{', '.join(m['split_packages']) or 'none'}.", ""]
            at_patch = [("pipelined_patch", "pipelined at patch point")] if "pipelined_patch" in rows[0] else []
            md.append(table(rows, [("k", "k"), ("levels", "DistGo levels"), ("cp_list", "list"),
                                   ("split_cp_list", "list+split"), ("split_shards", "K"),
                                   ("pipelined", "pipelined"), *at_patch, ("pipelined_split", "pipelined+split"),
                                   ("pipelined_split_shards", "K"), ("span", "span"),
                                   ("span_pipelined", "span pipelined"), ("lower_bound_pipelined", "bound pipelined")]))
            if at_patch:
                md.append(f"`pipelined at patch point`: F = when the patched compiler wrote the export data "
                          f"(after walk), measured in part 1 (`{m['export_ready_from']}`) for "
                          f"{m['compiles_with_export_ready']} compiles, the others as `pipelined`.")
                md.append("")
            r16 = next((r for r in rows if r["k"] == 16), None)
            if r16:
                md.append(f"At 16 workers: pipelined / list = **{r16['pipelined'] / r16['cp_list']:.2f}×** "
                          f"(issue 15's target <= 0.55), DistGo levels / pipelined = "
                          f"**{r16['levels'] / r16['pipelined']:.2f}×** (target >= 2.5); "
                          f"pipelined+split {r16['pipelined_split']:.1f} s.")
            md.append("")
    if export:
        md += ["### Early export data is final (measured)", "",
               f"{label(export['meta'], 'measured')}. Every compile of `go build -a -toolexec` over the "
               "corpus ran the patched compiler with `-fgoexport` (patch 0013: the export data written "
               "after the first pass of the compile loop, before the SSA backend) and the stock compiler "
               "on the same command line (std+cmd only; `stock` is empty where it was not run). "
               "`identical`: the early file equals the final archive up to the "
               "end of `__.PKGDEF`; `stock`: the patched archive equals the stock one; `ready`: when the "
               "early file appeared, as the median fraction of the compile's wall time (all compiles; "
               "compiles of >= 1 s); `run`: when the row was measured, by the command in the row "
               "(`pytest experiments/test_7_pipelining.py --benchmark -k early_export`, results/early_export.json).", ""]
        md.append(table(export["rows"], [("corpus", "corpus"), ("compiles", "compiles"),
                                         ("identical", "identical"), ("not_identical", "not identical"),
                                         ("stock_identical", "stock"), ("not_stock_identical", "not stock"),
                                         ("ready_frac_median", "ready"), ("ready_frac_median_1s", "ready (>= 1 s)"),
                                         ("compiles_1s", "compiles >= 1 s"), ("date", "run")]))
        differ = sorted({p for r in export["rows"] for p in r.get("differ", [])})
        md += ["", "Packages whose early export data differs (must not be pipelined): "
               + (", ".join(f"`{p}`" for p in differ) if differ else "none") + ".", ""]
    if measured:
        md += _pipeline_measured(measured)
    return md


def _pipeline_measured(doc: dict[str, Any]) -> list[str]:
    """Item 7 part 3: pipelined builds on the emulated hosts, with the prediction beside them."""
    runs, summaries = _runs_and_summaries(doc, "side")
    md = ["### Pipelined builds on emulated hosts (measured; predictions simulated)", "",
          f"{label(doc['meta'], 'measured')}. The two single-core hosts of section 8 (host 0 on "
          "core 0 beside the head, host 1 on core 1, 1 Gb/s links, nothing shared): cold `-a` "
          "`fgo build --no-pipeline` against `--pipeline`, alternating pairs; every binary "
          "byte-identical to one plain `go build -a` into an empty GOCACHE (`identical`). "
          "`hit rate`: speculative compiles taken by go build / started. `predicted`: "
          "**simulated**, the unpipelined run of the same pair replayed "
          "(`fgo.analysis.makespan.predict_pipelined`: its own action durations and fixed cost) "
          "with each compile's dependents released when its export data came in the other "
          "pairs' pipelined runs; `replay`: the same without pipelining, against that run. "
          "`.venv/bin/pytest experiments/test_7_pipelining.py --benchmark -k \"measured and "
          "etcd\"`, results/pipeline_measured.json.", ""]
    md.append(table(summaries, [("project", "project"), ("pairs", "pairs"),
                                ("speedup_median", "no-pipeline / pipeline"),
                                ("speedups", "per pair"), ("hit_rate_median", "hit rate"),
                                ("prediction_error_median", "prediction error"),
                                ("identical", "identical")]))
    md.append("")
    md.append(table(runs, [("project", "project"), ("pair", "pair"), ("side", "side"),
                           ("wall_s", "wall s"), ("predicted_s", "predicted s (simulated)"),
                           ("error", "error"), ("replay_error", "replay error"),
                           ("started", "speculated"), ("hits", "taken"), ("misses", "missed"),
                           ("unused", "unused"), ("hit_rate", "hit rate"),
                           ("saved_s", "saved s"), ("wasted_s", "wasted s"),
                           ("head_cpu_s", "head CPU s"), ("load1_before", "load1"),
                           ("identical", "identical")]))
    md.append("")
    return md


def _shared_cache_section(doc: dict[str, Any] | None) -> list[str]:
    """Item 6: the shared build cache, head B against head A."""
    if not doc:
        return []
    rows, summaries = _runs_and_summaries(doc, "run")
    md = ["## 6. The shared build cache (measured)", "",
          f"{label(doc['meta'], 'measured')}. A real cluster (`dask scheduler` + 2 `dask worker` "
          "processes on 127.0.0.1, a new one per pair; `pytest "
          "experiments/test_6_shared_cache.py --benchmark`). Head A builds with an empty GOCACHE "
          "and an empty cluster tier and publishes; head B, with its own empty GOCACHE and HOME, "
          "builds the same sources from the cluster tier; a cold `--no-shared-cache` build "
          "beside them is what A's publishing costs. B always follows A (it needs A's entries).",
          ""]
    md.append(table(rows, [("project", "project"), ("pair", "pair"), ("run", "run"),
                           ("wall_s", "wall s"), ("hit_rate", "compiles cached"),
                           ("remote_hits", "cluster hits"), ("misses", "misses"),
                           ("bytes_fetched", "bytes fetched"), ("fetch_s", "fetch s"),
                           ("published", "published"), ("publish_s", "publish s")]))
    md.append("")
    for s in summaries:
        md.append(f"- {s['project']}: B / A wall, median of {s['pairs']} pair(s): "
                  f"**{s['b_over_a_median']}×** (pairs {s['b_over_a']}); A (publishing) / cold "
                  f"without the shared cache: {s['a_over_local_median']}× (pairs "
                  f"{s['a_over_local']}); B's compiles cached: at least "
                  f"{100 * s['b_hit_rate_min']:.1f}%.")
    md.append("")
    return md


def _files_section(results: Path, out: Path) -> list[str]:
    """The last section: where the results and raw files are."""
    return ["## Files", "",
            f"Results (JSON with `meta` + `rows`, and CSV of the rows) in `{_rel(results, out.parent)}/`; "
            "raw action graphs, traces and fgo reports in its `raw/` subdirectory.", ""]


def _shard_cost_section(doc: dict[str, Any] | None, sims: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Item 10: a real shard's CPU time against the model F + B/K, before and after the
    shards walked only their own functions; and (c) measured with those shards."""
    if not doc:
        return []
    m = doc["meta"]
    rows = doc["rows"]
    md = ["## 10. What a real shard costs (measured)", "",
          f"{label(m, 'measured')}. {m.get('project')}'s split packages (those of (c) measured), each from "
          f"its real compile command; {m.get('rounds')} rounds, the order of the runs reversed every other "
          "round; every process alone, -c=1, GOMAXPROCS=1, its CPU time. Model: (F + B/K) from the stock "
          "compile's -bench, brought to its CPU time; a split's processes: shards 1..K-1, and shard 0 = the "
          "leader less D; medians over the rounds. Series: "
          + "; ".join(f"{k}: {v}" for k, v in m.get("series", {}).items())
          + ". Every leader's archive equals the stock compile's.", ""]
    md.append(table(rows, [("package", "package"), ("k", "K"), ("series", "series"), ("model_s", "F+B/K s"),
                           ("max_s", "slowest s"), ("mean_s", "mean s"), ("max_over_model", "slowest / model"),
                           ("mean_over_model", "mean / model"), ("result_mb", "results MB")]))
    md.append("")
    for series in m.get("series", {}):
        for k in m.get("ks", []):
            sel = [r for r in rows if r["series"] == series and r["k"] == k]
            if sel:
                over = sorted(r["max_over_model"] for r in sel)
                md.append(f"- {series}, K={k}: slowest process / model, median over {len(sel)} packages "
                          f"**{statistics.median(over):.3f}** (range {over[0]:.3f}–{over[-1]:.3f}); "
                          f"within 10%: {sum(x <= 1.10 for x in over)} of {len(sel)}.")
    md.append("")
    parts = [{"package": r["package"], "k": r["k"], "series": r["series"], "who": who,
              **{f"p_{key}": v for key, v in r[f"{who}_parts_s"].items()}}
             for r in rows for who in ("shard", "leader")]
    keys = ["frontend", "walk", "backend", "export", "inject", "later", "rest"]
    md += ["Where a process's CPU time goes (seconds, medians; -fgostats wall times scaled to the "
           "process's CPU time; walk = the compile loop up to the backend; shard = the median shard):", ""]
    md.append(table(parts, [("package", "package"), ("k", "K"), ("series", "series"), ("who", "process"),
                            *[(f"p_{key}", key) for key in keys]]))
    md.append("")
    sim = sims.get((m.get("project"), "wall"))
    if sim and "shard-cost" in str(sim["meta"].get("command", "")):
        r16 = next((r for r in sim["rows"] if r["k"] == 16), None)
        if r16 and r16.get("measured_cp_list"):
            md.append(f"(c) measured with these shards (simulated, `{sim['meta']['command']}`, on the input "
                      f"graph of work {sim['meta'].get('work_s', 0):.1f} s, span {sim['meta'].get('span_s', 0):.1f} s): "
                      f"{m.get('project')} on 16 workers {r16['measured_cp_list']:.1f} s "
                      f"(K={r16['measured_shards']}) against (a) DistGo-style levels {r16['levels']:.1f} s: "
                      f"**{r16['levels'] / r16['measured_cp_list']:.2f}×**; (c) modelled "
                      f"{r16['split_cp_list']:.1f} s ({r16['levels'] / r16['split_cp_list']:.2f}×).")
            md.append("")
    return md


def write_report(results: Path, out: Path, quick: bool = False, wall_s: float | None = None) -> Path:
    results = Path(results)
    corpus = _load(results / "corpus_builds.json")
    sims = _load_sims(results)
    fgo = _load(results / "fgo_build.json")
    split = _load(results / "split.json")
    split_sim = _load(results / "split_sim.json")
    metas = [d["meta"] for d in [corpus, fgo, split, *sims.values()] if d]
    md = _intro_lines(metas[0] if metas else {}, quick, wall_s)
    md += ["## Summary", "", summary_paragraph(corpus, sims, fgo, split), ""]
    md += _corpus_section(corpus, sims, results, out)
    md += _sim_section(sims, results, out)
    md += _fgo_section(fgo, results, out)
    md += _split_section(split, split_sim, results, out)
    md += _verification_section(_load(results / "verification.json"))
    md += _shared_cache_section(_load(results / "shared_cache.json"))
    md += _pipeline_section(results, _load(results / "early_export.json"),
                            _load(results / "pipeline_measured.json"))
    md += _scaleout_section(_load(results / "scaleout.json"))
    md += _overhead_section(_load(results / "overhead.json"))
    md += _model_section(_load(results / "model_validation.json"))
    md += _das5_section(_load(results / "das5.json"))
    md += _shard_cost_section(_load(results / "shard_cost.json"), sims)
    md += _files_section(results, out)
    out.write_text("\n".join(md))
    return out


if __name__ == "__main__":
    res = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else (HERE / "REPORT.md" if res.name != "quick" else res / "REPORT.md")
    print(write_report(res, dst, quick=res.name == "quick"))
