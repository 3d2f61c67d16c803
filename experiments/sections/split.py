"""One package's compile split K ways (experiments/test_4_split.py): its phases and stock
walls, measured; the k-machine wall of the split, simulated from its processes' CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.sections.common import Context, label, pyplot, save, table

RESULTS, SIMULATED = "split.json", "split_sim.json"


def render(ctx: Context) -> list[str]:
    split = ctx.load(RESULTS)
    if not split:
        return []
    md = [("Measured: phase times from `compile -bench` (F = frontend incl. unaccounted start-up, "
           "B = backend `compilefuncs`, D = `dumpobj`), stock wall times of the package's real "
           "compile command re-run with `-c=1` (GOMAXPROCS=1) and `-c=2` (GOMAXPROCS=2)."),
          "",
          table(split["rows"], [
              ("package", "package"), ("F_s", "F s"), ("B_s", "B s"), ("D_s", "D s"),
              ("stock_c1_wall_s", "stock -c=1 s"), ("stock_c2_wall_s", "stock -c=2 s"),
              ("split2_wall_s", "split K=2, shard + leader at once on 2 cores s"),
              ("split2_identical", "split archive = stock"), ("split_skipped", "split: not measured because")]),
          f"_{label(split['meta'], 'MEASURED')}_",
          ""]
    sim = ctx.load(SIMULATED)
    return md + (_simulated(ctx, split, sim) if sim else [])


def _simulated(ctx: Context, split: dict[str, Any], sim: dict[str, Any]) -> list[str]:
    """The simulated k-machine wall time of the split compile, table and figure."""
    md = [("Simulated k-machine wall time of the split compile: the bound F + D + B/k, and, from "
           "the CPU times of the patched compiler's processes (-c=1, GOMAXPROCS=1: each "
           "single-threaded, so its time alone on a machine of its own), max(slowest shard + "
           "merge, leader) — the leader compiles shard 0 and merges:"), "",
          table(sim["rows"], [("package", "package"), ("k", "k"), ("bound_s", "F+D+B/k s"),
                              ("shards_measured_s", "from the processes s"),
                              ("slowest_shard_s", "slowest shard s"),
                              ("leader_alone_s", "leader s"), ("merge_s", "merge s")]),
          f"_{label(sim['meta'], 'SIMULATED')}_",
          ""]
    return md + ctx.figure("fig5_split.png", "split", "one package's compile split k ways — "
                           f"{label(sim['meta'], 'SIMULATED lines; MEASURED horizontal references')}",
                           lambda p: draw(split, sim, p))


def draw(doc: dict[str, Any], sim: dict[str, Any], out: Path) -> None:
    """Figure 5: the simulated walls against k, with the measured stock and split walls."""
    fig, ax = pyplot().subplots(figsize=(8, 4.3))
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
    save(fig, out, doc["meta"], "simulated (lines) and measured (horizontal references, star)")
