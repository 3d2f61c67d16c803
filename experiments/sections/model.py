"""The makespan model against measured builds (experiments/test_9_overhead.py): each
cold fgo build predicted from its pair's go build and fgo's costs fitted on the others."""

from __future__ import annotations

from experiments.sections.common import Context, label, table

RESULTS = "model_validation.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    return [(f"{label(doc['meta'], 'simulated vs measured')}. Each cold fgo build of {ctx.ref('overhead')} "
             "predicted by `fgo.analysis.makespan.predict`: the go build of the same pair (its action "
             "graph and durations at -p 2, in go's own order, 2 slots) plus fgo's costs (median "
             "dispatch per remote compile, fixed start and end) fitted on the *other* fgo builds "
             "(leave one out)."), "",
            table(doc["rows"], [("project", "project"), ("pair", "pair"), ("kind", "setup"),
                                ("measured_s", "measured s"), ("predicted_s", "predicted s"),
                                ("error", "error"), ("dispatch_s", "dispatch s"),
                                ("fixed_s", "fixed s")]),
            "", f"Largest error: {100 * doc['meta'].get('worst_error', 0):.1f}% (target 10%).", ""]
