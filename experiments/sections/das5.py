"""DAS-5 sizes (experiments/test_9_overhead.py): fgo's measured costs in the validated
makespan model, on clusters of 16-core nodes, against DistGo-style levels and go build on one
node of the same size with its -c."""

from __future__ import annotations

from experiments.sections.common import Context, label, table

RESULTS = "das5.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    m = doc["meta"]
    has_baseline = all("go_build_1_node_s" in r for r in doc["rows"])
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
                                ("split_speedup_vs_1_node", "split speedup vs 1 node"),
                                *(_BASELINE if has_baseline else ())]),
            "", *_baseline_note(ctx, has_baseline)]


# go build on ONE node of 16 cores with its -c (simulate.gobuild_schedule), as test_9 now
# computes it; rows saved before it lack it
_BASELINE = (("go_build_1_node_s", "go build 1 node (-c) s"),
             ("plain_over_go_build", "fgo / go build 1 node"),
             ("split_over_go_build", "split / go build 1 node"),
             ("pipelined_over_go_build", "pipelined / go build 1 node"))


def _baseline_note(ctx: Context, has_baseline: bool) -> list[str]:
    if has_baseline:
        return ["Ratios over levels are against DistGo; the baseline a user would run instead is "
                "go build on one node of the same size with its -c (the `/ go build 1 node` columns).",
                ""]
    return [("**Baseline missing:** these rows were saved before experiment 9 simulated go build "
             "on one 16-core node with its -c, so they compare with DistGo levels only, a low bar. "
             f"Against go build on one node of the same size with -c, see {ctx.ref('das5_scale')} "
             "(etcd and aws-sdk-go, from committed graphs); re-running "
             "`pytest experiments/test_9_overhead.py --benchmark -k 'dispatch_over_tcp or das5'` "
             "adds the columns here."), ""]
