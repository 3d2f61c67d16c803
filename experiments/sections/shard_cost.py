"""What a real shard costs (experiments/test_10_shard_cost.py): a shard process's CPU
time against the model F + B/K, by patch series; where its time goes; and the
simulation's (c) measured with those shards."""

from __future__ import annotations

import statistics
from typing import Any

from experiments.sections import simulation
from experiments.sections.common import Context, label, levels_note, table

RESULTS = "shard_cost.json"
PARTS = ("frontend", "walk", "backend", "export", "inject", "later", "rest")


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    m, rows = doc["meta"], doc["rows"]
    md = [f"{label(m, 'measured')}. {m.get('project')}'s split packages (those of (c) measured), each from "
          f"its real compile command; {m.get('rounds')} rounds, the order of the runs reversed every other "
          "round; every process alone, -c=1, GOMAXPROCS=1, its CPU time. Model: (F + B/K) from the stock "
          "compile's -bench, brought to its CPU time; a split's processes: shards 1..K-1, and shard 0 = the "
          "leader less D; medians over the rounds. Series: "
          + "; ".join(f"{k}: {v}" for k, v in m.get("series", {}).items())
          + ". Every leader's archive equals the stock compile's.", "",
          table(rows, [("package", "package"), ("k", "K"), ("series", "series"), ("model_s", "F+B/K s"),
                       ("max_s", "slowest s"), ("mean_s", "mean s"), ("max_over_model", "slowest / model"),
                       ("mean_over_model", "mean / model"), ("result_mb", "results MB")]),
          ""]
    md += _against_model(m, rows) + [""] + _parts(rows)
    sim = _simulated(m, simulation.load_sims(ctx).get((m.get("project"), "wall")))
    return md + sim + ([levels_note(ctx), ""] if sim else [])


def _against_model(m: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """Per series and K: the slowest process over the model, across the packages."""
    md = []
    for series in m.get("series", {}):
        for k in m.get("ks", []):
            sel = [r for r in rows if r["series"] == series and r["k"] == k]
            if sel:
                over = sorted(r["max_over_model"] for r in sel)
                md.append(f"- {series}, K={k}: slowest process / model, median over {len(sel)} packages "
                          f"**{statistics.median(over):.3f}** (range {over[0]:.3f}–{over[-1]:.3f}); "
                          f"within 10%: {sum(x <= 1.10 for x in over)} of {len(sel)}.")
    return md


def _parts(rows: list[dict[str, Any]]) -> list[str]:
    """Where a shard's and a leader's CPU time goes, by compile phase."""
    parts = [{"package": r["package"], "k": r["k"], "series": r["series"], "who": who,
              **{f"p_{key}": v for key, v in r[f"{who}_parts_s"].items()}}
             for r in rows for who in ("shard", "leader")]
    return [("Where a process's CPU time goes (seconds, medians; -fgostats wall times scaled to the "
             "process's CPU time; walk = the compile loop up to the backend; shard = the median shard):"), "",
            table(parts, [("package", "package"), ("k", "K"), ("series", "series"), ("who", "process"),
                          *[(f"p_{key}", key) for key in PARTS]]),
            ""]


def _simulated(m: dict[str, Any], sim: dict[str, Any] | None) -> list[str]:
    """(c) measured at 16 workers, when the project's simulation was re-run with these shards."""
    if not sim or "shard-cost" not in str(sim["meta"].get("command", "")):
        return []
    r16 = next((r for r in sim["rows"] if r["k"] == 16), None)
    if not r16 or not r16.get("measured_cp_list"):
        return []
    return [(f"(c) measured with these shards (simulated, `{sim['meta']['command']}`, on the input "
             f"graph of work {sim['meta'].get('work_s', 0):.1f} s, span {sim['meta'].get('span_s', 0):.1f} s): "
             f"{m.get('project')} on 16 workers {r16['measured_cp_list']:.1f} s "
             f"(K={r16['measured_shards']}) against (a) DistGo-style levels {r16['levels']:.1f} s: "
             f"**{r16['levels'] / r16['measured_cp_list']:.2f}×**; (c) modelled "
             f"{r16['split_cp_list']:.1f} s ({r16['levels'] / r16['split_cp_list']:.2f}×)."), ""]
