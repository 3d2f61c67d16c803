"""DAS-5 at scale and where fgo cannot help (experiments/test_11_aws.py): simulated from
committed results, against go build on one node of the same size with its -c."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.sections.common import Context, label, pyplot, save, table

RESULTS = "das5_scale.json"
LIMITS = "limits.json"
POLICIES = {"plain": "fgo", "split": "fgo --split-large", "pipelined": "fgo --pipeline",
            "pipelined_split": "pipeline + split", "pipelined_fgo": "--pipeline as it runs"}
WITH_C = {"plain_c": "fgo -c", "split_c": "split -c"}
DESIGNS = {"pipelined_head_exports": "design: the head exports early too",
           "split_floor": "floor: every compile split, free"}


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    m = doc["meta"]
    t = m.get("targets", {})
    fx = m.get("go_fixed_s", {})
    md = [(f"{label(m, 'simulated')}. Baseline: **`go build` on one DAS-5 node of "
           f"{m['cores_per_node']} cores with its defaults** (-p {m['cores_per_node']}, -c from go's "
           "token pool, Amdahl backend speedup with the measured parallel fractions, threads sharing "
           "the cores: `simulate.gobuild_schedule`), plus go's own measured time outside its "
           f"actions ({', '.join(f'{k} {v:.1f} s' for k, v in fx.items())}; on this loaded machine, "
           "and paid by fgo's go build too). fgo: the validated "
           f"makespan model (`fgo.analysis.makespan`, {ctx.ref('model')}) on n nodes of "
           f"{m['cores_per_node']} slots, the head's node one of them (plain and split builds "
           "compile on its slots first, without the remote path; pipelined ones count every "
           "compile remote), every compile one slot at -c=1 (fgo's compiles do "
           "not get the node's idle cores here: pessimistic for fgo), dispatch measured over TCP "
           f"({1000 * m['dispatch_s']:.1f} ms) and each compile's bytes (sources in, archive out) at "
           f"1 Gb/s per remote process, fgo's measured fixed part ({m['fixed_s']:.1f} s per build of "
           f"gin over TCP, {ctx.ref('overhead')}) once. `--split-large`: the compiles of >= 1 s on the critical path, "
           f"K <= {m['max_shards']} (measured shard times where {ctx.ref('shard_cost')} and "
           "`aws.py split` measured them, else F + B/K), only with another node to split onto; "
           "pipelining: dependents' compiles start at the measured export-data share "
           f"(median {m['export_frac_default']:.2f}), the ideal; `--pipeline as it runs`: "
           "the model checked against fgo's pipelined builds (`makespan.predict_pipelined`, "
           f"{ctx.ref('model')}): go build drives, a speculation runs only on a remote slot it "
           "leaves idle, the head's own compiles export nothing early. "
           f"Inputs: aws `{m['inputs']['aws']}` "
           f"(`{m['inputs']['aws_run']}`, {m['inputs']['aws_run_date']}), etcd "
           f"`{m['inputs']['etcd']}`; durations are the graphs' CPU times (-c=1); the aws run's "
           f"-bench phases were taken under load (load1 {m['inputs']['aws_run_load'][0]} at its "
           f"start, {m['inputs']['aws_run_load'][1]} at its end): only their proportions are used, "
           "scaled to each compile's CPU time."), "",
          table(doc["rows"], [("project", "project"), ("nodes", "nodes"), ("slots", "slots"),
                              ("go_build_1_node_s", "go build 1 node (-c) s"),
                              ("levels_s", "DistGo levels s"),
                              *((f"{k}_s", f"{v} s") for k, v in POLICIES.items()),
                              *((f"{k}_s", f"{v} s") for k, v in WITH_C.items()),
                              *((f"{k}_s", f"{v} s") for k, v in DESIGNS.items())]),
          "", "Over go build on one node of the same size with -c (> 1: fgo faster):", "",
          table(doc["rows"], [("project", "project"), ("nodes", "nodes"),
                              *((f"{k}_over_go_build", v)
                                for k, v in {**POLICIES, **WITH_C, **DESIGNS}.items()),
                              ("pipelined_split_over_levels", "pipeline + split / levels"),
                              ("best_actions_over_go_build",
                               "best validated, without fixed parts")]),
          "", ("`fgo -c` and `split -c` extend the go build model to fgo (not validated against fgo's "
               "runs): the head's go build gives each compile its -c from its token pool (-p = all "
               "slots) and fgo passes it on, a compile's threads share its node's 16 cores, "
               "dispatch and transfer hold the slot first. The last column leaves out both sides' "
               "fixed parts (fgo's measured one, go's own): what the schedules alone give. "
               "`design: the head exports early too` is `--pipeline as it runs` with the head's "
               "own compiles (the critical path's, which take the head's slots first) sending "
               "their export data early as the workers' do: not built. `floor` is what no split "
               "of fgo's design can beat: every compile split into as many shards as there are "
               "slots, at no cost (no dispatch, transfer, merge or export), so that each keeps "
               "only its frontend, which every shard repeats, and its object, which the leader "
               "writes once (`at_scale.split_floor_span`), plus fgo's fixed part."),
          ""]
    if t:
        md += [(f"Targets at 8 nodes over go build on one node: aws best "
                f"**{t['aws_best_over_go_build_8_nodes']:.2f}×** (target >= {t['aws_target']:g}: "
                f"{'met' if t['aws_met'] else 'not met'}); etcd pipeline + split "
                f"**{t['etcd_pipelined_split_over_go_build_8_nodes']:.2f}×** (target >= "
                f"{t['etcd_target']:g}: {'met' if t['etcd_met'] else 'not met'}); with the -c "
                f"extension, split -c: aws {t['aws_split_c_over_go_build_8_nodes']:.2f}×, etcd "
                f"{t['etcd_split_c_over_go_build_8_nodes']:.2f}×"
                + (f"; the floor of any split, free: aws "
                   f"{t['aws_split_floor_over_go_build_8_nodes']:.2f}×, etcd "
                   f"{t['etcd_split_floor_over_go_build_8_nodes']:.2f}×"
                   if "aws_split_floor_over_go_build_8_nodes" in t else "")
                + ". Work / span "
                f"(CPU s): {_work_span(m)}."),
               ""]
    if two := m.get("two_hosts_prediction"):
        md += [(f"Predicted for two emulated one-core hosts (item 4; {ctx.ref('scaleout')}'s setup, "
                f"not measured here): the aws quick subset cold, `go build -p 1` on one core "
                f"{two['go_p1_one_core_s']:.1f} s, fgo {two['fgo_two_hosts_s']:.1f} s: "
                f"**{two['speedup']:.2f}×** (target >= {two['target']:g}); fgo's costs from "
                f"{two['costs_from']} (fixed {two['costs']['fixed_s']:.1f} s, head CPU "
                f"{two['costs']['head_cpu_ms']:.0f} ms per compile), graph `{two['graph']}`."), ""]
    md += ctx.figure("fig6_das5_scale.png", "DAS-5 at scale, simulated",
                     "simulated: build time against DAS-5 nodes; baseline (dashed) go build on one "
                     "16-core node with -c; fgo with its measured costs", lambda p: _plot(doc, p))
    return md


def _work_span(m: dict[str, Any]) -> str:
    return ", ".join(f"{p} {w:.0f} / {m['span_s'][p]:.1f}" for p, w in m["work_s"].items())


def _plot(doc: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    projects = sorted({r["project"] for r in doc["rows"]})
    fig, axes = plt.subplots(1, len(projects), figsize=(5 * len(projects), 4.2), squeeze=False)
    for ax, p in zip(axes[0], projects):
        rows = [r for r in doc["rows"] if r["project"] == p]
        xs = [r["nodes"] for r in rows]
        ax.axhline(rows[0]["go_build_1_node_s"], color="k", ls="--",
                   label="go build, 1 node of 16 cores, -c (baseline)")
        ax.plot(xs, [r["levels_s"] for r in rows], "x:", color="0.5", label="DistGo levels")
        for k, v in POLICIES.items():
            ax.plot(xs, [r[f"{k}_s"] for r in rows], "o-", label=v)
        for k, v in WITH_C.items():
            ax.plot(xs, [r[f"{k}_s"] for r in rows], "s--", label=f"{v} (extension)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_ylim(bottom=0)
        ax.set_xlabel("DAS-5 nodes (16 cores each)")
        ax.set_ylabel("simulated build time (s)")
        ax.set_title(f"{p} (simulated)")
        ax.legend(fontsize=7)
    save(fig, out, doc["meta"], "simulated")


def render_limits(ctx: Context) -> list[str]:
    doc = ctx.load(LIMITS)
    if not doc:
        return []
    m = doc["meta"]
    c = m["cores_per_node"]
    rows = doc["rows"]
    one = [r["corpus"] for r in rows if r["parallelism"] <= c]
    md = [(f"{label(m, 'simulated bounds')}. No schedule on s slots beats max(work / s, span), so "
           f"n nodes of {c} cores are at most min(n·{c}, P) / min({c}, P) times faster than one, "
           "P = work / span (the parallelism; CPU durations, each compile -c=1). "
           f"Where P <= {c}, one node already holds all of the build's parallelism: "
           f"{', '.join(one) if one else 'none'} gain nothing from more nodes by scheduling alone; "
           "only shortening the span (splitting the compiles on the critical path, pipelining) "
           "can help, and go build's own -c already shortens it on one node."), "",
          table(rows, [("corpus", "corpus"), ("work_s", "work s"), ("span_s", "span s"),
                       ("parallelism", "P = work/span"), ("nodes_that_help", "nodes that can help"),
                       ("bound_8_nodes_over_1", "bound 8 nodes / 1"),
                       ("span_split_s", "span, split s"), ("parallelism_split", "P, split"),
                       ("source", "from")]), ""]
    md += ctx.figure("fig7_limits.png", "parallelism per corpus",
                     f"simulated: parallelism P = work/span per corpus (CPU durations), unsplit and "
                     f"with the critical path's compiles split; baseline: one node's {c} cores (dashed): "
                     f"below it, n nodes are at most min(n·{c}, P) / min({c}, P) = 1× one node",
                     lambda p: _plot_limits(doc, p))
    return md


def _plot_limits(doc: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    c = doc["meta"]["cores_per_node"]
    rows = doc["rows"]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.bar([x - 0.2 for x in xs], [r["parallelism"] for r in rows], 0.4, label="P = work / span")
    ax.bar([x + 0.2 for x in xs], [r.get("parallelism_split") or 0 for r in rows], 0.4,
           label="P with --split-large (span split)")
    ax.axhline(c, color="k", ls="--", label=f"one node's cores ({c})")
    ax.set_xticks(list(xs), [r["corpus"] for r in rows])
    ax.set_ylabel("parallelism (work / span)")
    ax.set_title("Where more nodes cannot help: P <= one node's cores (simulated)")
    ax.legend(fontsize=7)
    save(fig, out, doc["meta"], "simulated bound")
