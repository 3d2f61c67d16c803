"""The report's summary: one bullet per finding, from the corpus builds, the
simulations, fgo build end to end and the split compiles, and what fgo cannot do."""

from __future__ import annotations

from typing import Any

from experiments.sections import at_scale, corpus, fgo_build, simulation, split
from experiments.sections.common import Context, levels_note

LIMITS = ("Where fgo cannot help: a warm build is all cache hits (nothing to distribute); "
          "past the span only splitting packages shortens a build, and a split repeats the "
          "frontend F in every shard, so a package's compile never drops below F + D; on this "
          "2-core machine remote workers compete with the head node for the same cores.")


def render(ctx: Context) -> list[str]:
    parts = []
    if doc := ctx.load(corpus.RESULTS):
        parts += _corpus(doc["rows"])
    parts += [_simulation(pr, source, doc) for (pr, source), doc in simulation.load_sims(ctx).items()]
    if doc := ctx.load(fgo_build.RESULTS):
        parts.append(_fgo(doc))
    if doc := ctx.load(split.RESULTS):
        parts.append(_split(doc["rows"]))
    if ctx.load(at_scale.RESULTS):
        parts.append(_at_scale(ctx.load(at_scale.RESULTS)))
    return ["- " + x for x in [*parts, levels_note(ctx), LIMITS]]


def _at_scale(doc: dict[str, Any]) -> str:
    """The DAS-5 table at 8 nodes, against go build on one node with -c."""
    bits = [f"{r['project']} best {r['best']} {r[r['best'] + '_s']:.1f} s against go build on one "
            f"16-core node with -c {r['go_build_1_node_s']:.1f} s ({r['best_over_go_build']:.2f}×)"
            for r in doc["rows"] if r["nodes"] == 8]
    return "Simulated DAS-5, 8 nodes of 16 cores with fgo's measured costs: " + "; ".join(bits) + "."


def _corpus(rows: list[dict[str, Any]]) -> list[str]:
    """Cold builds from GOMAXPROCS 1 to 2, and warm."""
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
    if not bits:
        return []
    both = any(r["gomaxprocs"] == 1 for r in rows)
    return ["Measured cold builds (`-a`, empty GOCACHE)" + (", GOMAXPROCS 1 → 2" if both else "")
            + ": " + "; ".join(bits) + "."]


def _simulation(pr: str, source: str, doc: dict[str, Any]) -> str:
    """The policies at k = 8 and 16, and from which k list scheduling reaches the span."""
    rows = {r["k"]: r for r in doc["rows"]}
    m = doc["meta"]
    w, sp = m.get("work_s", 0.0), m.get("span_s", 0.0)
    s = (f"{pr}, simulated on {simulation.SOURCE_LABELS[source]} of {m.get('actions')} work actions "
         f"(work {w:.0f} s, span {sp:.1f} s, parallelism {w / sp if sp else 0:.1f}"
         + (f"; re-simulated by `{m['command']}`" if m.get("resimulated_from") else "") + "): ")
    bits = [_at_k(k, rows[k]) for k in (8, 16) if k in rows]
    reach = next((k for k in sorted(rows) if rows[k]["cp_list"] <= 1.05 * sp), None)
    if reach:
        bits.append(f"(b) is within 5% of the span from k={reach} on")
    return s + "; ".join(bits) + "."


def _at_k(k: int, r: dict[str, Any]) -> str:
    return (f"k={k}: (a) levels {r['levels']:.1f} s, (b) list {r['cp_list']:.1f} s "
            f"({r['levels'] / r['cp_list']:.2f}× ahead of (a)), (c) split "
            f"{r['split_cp_list']:.1f} s ({r['levels'] / r['split_cp_list']:.2f}× ahead of (a); "
            f"span {r['span_split'] / r['span']:.2f}× the unsplit one, K={r['shards']})"
            + (f", (c) with measured shards {r['measured_cp_list']:.1f} s "
               f"({r['levels'] / r['measured_cp_list']:.2f}× ahead of (a); span "
               f"{r['measured_span_split'] / r['span']:.2f}× the unsplit one, "
               f"K={r['measured_shards']})" if "measured_cp_list" in r else ""))


def _fgo(doc: dict[str, Any]) -> str:
    if doc.get("meta", {}).get("skipped"):
        return f"fgo build end to end: not measured ({doc['meta']['skipped']})."
    bits = [f"{r['project']} {r['fgo_cold_s']:.0f} s vs go -p 2 {r['go_p2_cold_s']:.0f} s"
            f" ({r['speedup_vs_p2']:.2f}×), dispatch p50 {r.get('dispatch_p50_ms')} ms"
            for r in doc["rows"] if not r.get("error")]
    bits += [f"{r['project']} failed" for r in doc["rows"] if r.get("error")]
    return "Measured fgo build -a on 2 local workers: " + "; ".join(bits) + "."


def _split(rows: list[dict[str, Any]]) -> str:
    bits = []
    for r in rows:
        t = (f"{r['package']}: F {r['F_s']:.2f} s, B {r['B_s']:.2f} s, D {r['D_s']:.2f} s "
             f"(stock -c=1 {r['stock_c1_wall_s']:.1f} s, -c=2 {r['stock_c2_wall_s']:.1f} s)")
        if r.get("split2_wall_s"):
            t += f", split k=2 {r['split2_wall_s']:.1f} s"
        bits.append(t)
    return "Compile phases (measured, -c=1): " + "; ".join(bits) + "."
