"""DAS-5 sizes (experiments/test_9_overhead.py): fgo's measured costs in the validated
makespan model, on clusters of 16-core nodes, against DistGo-style levels."""

from __future__ import annotations

from experiments.sections.common import Context, label, table

RESULTS = "das5.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    m = doc["meta"]
    return [(f"{label(m, 'simulated')}. `fgo.analysis.makespan` (validated in {ctx.ref('model')}) on this run's "
             "`go build -a -p 1` durations, 16 slots per node, dispatch measured over TCP "
             f"({1000 * m.get('dispatch_s', 0):.1f} ms), each compile's bytes at 1 Gb/s, fixed "
             f"{m.get('fixed_s', 0):.1f} s per build; `levels`: DistGo-style barriers with the same "
             f"costs; `split`: --split-large as in {ctx.ref('split')} (F + B/K, K <= 16)."), "",
            table(doc["rows"], [("project", "project"), ("nodes", "nodes"), ("slots", "slots"),
                                ("plain_s", "fgo s"), ("split_s", "fgo --split-large s"),
                                ("pipelined_s", "fgo --pipeline s"),
                                ("levels_s", "levels s"),
                                ("plain_over_levels", "fgo vs levels"),
                                ("split_over_levels", "split vs levels"),
                                ("pipelined_over_levels", "pipelined vs levels"),
                                ("plain_speedup_vs_1_node", "fgo speedup vs 1 node"),
                                ("split_speedup_vs_1_node", "split speedup vs 1 node")]),
            ""]
