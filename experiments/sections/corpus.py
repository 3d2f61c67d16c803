"""The corpus builds (experiments/test_1_corpus.py): cold and warm `go build` walls, the
action graphs' shape, and the critical paths the simulations found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.sections import simulation
from experiments.sections.common import REPO, Context, label, pyplot, save, table

RESULTS = "corpus_builds.json"


def render(ctx: Context) -> list[str]:
    corpus = ctx.load(RESULTS)
    if not corpus:
        return []
    corp = corpus["meta"].get("corpus", {})
    md = ["Corpus: " + "; ".join(f"**{n}** `{c['target']}` ({c['note']}"
                                 f"{', GOPATH mode from /usr/share/gocode' if c['gopath_mode'] else ''})"
                                 for n, c in corp.items()) + ".",
          ("Cold = `go build -a` with an empty temporary GOCACHE; warm = the same build again. "
           "Shape from `-debug-actiongraph`: *work actions* exclude go's bookkeeping nodes "
           "(check-cache, nop, built-in, install); *work* = sum of action durations; *span* = "
           "critical path by recorded durations; *avg width* = busy time / elapsed, *peak* = most "
           "actions running at once (recorded). The -debug-trace files (Perfetto: ui.perfetto.dev) "
           "are next to the graphs."),
          "",
          table(corpus["rows"], [
              ("project", "project"), ("kind", "build"), ("gomaxprocs", "GOMAXPROCS"), ("wall_s", "wall s"),
              ("actions", "actions"), ("work_actions", "work actions"), ("compiles", "compiles"),
              ("cached", "cached"), ("work_s", "work s"), ("span_s", "span s"), ("avg_width", "avg width"),
              ("peak_width", "peak width"), ("levels", "levels"), ("load1_before", "load1 before")]),
          f"_{label(corpus['meta'], 'Measured')}_",
          ""]
    measured = label(corpus["meta"], "MEASURED")
    cap = "Wall time of cold and warm builds"
    md += ctx.figure("fig1_corpus_walls.png", cap, f"{cap} — {measured}", lambda p: draw_walls(corpus, p))
    if any(r["kind"] == "cold" for r in corpus["rows"]):
        cap = "Number of actions running at once during the cold builds"
        md += ctx.figure("fig2_width_over_time.png", cap, f"{cap} — {measured}",
                         lambda p: draw_width(corpus, p))
    return md + _critical_paths(ctx)


def _critical_paths(ctx: Context) -> list[str]:
    """The critical path of each project's input build, as its wall-time simulation found it."""
    md = []
    for (pr, source), doc in simulation.load_sims(ctx).items():
        cpath = doc["meta"].get("critical_path") or []
        if cpath and source == "wall":
            md.append(f"Critical path of {pr} (cold, GOMAXPROCS={doc['meta'].get('input_build', {}).get('gomaxprocs')}, "
                      f"{len(cpath)} actions): " + " → ".join(f"`{x}`" for x in cpath))
            md.append("")
    return md


def draw_walls(doc: dict[str, Any], out: Path) -> None:
    """Figure 1: each project's build walls, one bar per (cold/warm, GOMAXPROCS)."""
    plt = pyplot()
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
    save(fig, out, doc["meta"], "measured")


def draw_width(doc: dict[str, Any], out: Path) -> None:
    """Figure 2: actions running at once over each cold build, from its action graph in
    raw/. Without any of those graphs (raw/ is not committed) OUT is left as it is: an
    empty plot would replace the one drawn when they were there."""
    from fgo.analysis import actiongraph as ag
    rows = [r for r in doc["rows"] if r["kind"] == "cold" and _graph(r).exists()]
    if not rows:
        return
    plt = pyplot()
    projects = list(dict.fromkeys(r["project"] for r in rows))
    fig, axes = plt.subplots(len(projects), 1, figsize=(8, 1.9 * len(projects) + 1.3), squeeze=False)
    for ax, pr in zip(axes[:, 0], projects):
        for r in (r for r in rows if r["project"] == pr):
            wg = ag.work_graph(ag.load(_graph(r)))
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
    save(fig, out, doc["meta"], "measured", top=1 - 0.45 / fig.get_figheight(), hspace=0.45)


def _graph(row: dict[str, Any]) -> Path:
    """A corpus build's action graph (the row's path is relative to the checkout)."""
    path = Path(row["graph"])
    return path if path.is_absolute() else REPO / path
