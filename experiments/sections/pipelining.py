"""Pipelined compilation (experiments/test_7_pipelining.py): simulated on the corpus's
compiles; the patched compiler's early export data checked against the final archive;
pipelined builds on the emulated hosts, with the simulator's prediction beside them."""

from __future__ import annotations

from typing import Any

from experiments.sections.common import Context, label, levels_note, runs_and_summaries, table

PROJECTS = ("etcd", "gin", "cmd/go", "cmd/compile")
EXPORT, MEASURED = "early_export.json", "pipeline_measured.json"


def results_file(project: str) -> str:
    """PROJECT's pipelining simulation (as test_7 names it)."""
    return f"pipeline_{project.replace('/', '_')}.json"


def render(ctx: Context) -> list[str]:
    sims = {p: d for p in PROJECTS if (d := ctx.load(results_file(p)))}
    export, measured = ctx.load(EXPORT), ctx.load(MEASURED)
    md = [*_simulated(sims), levels_note(ctx), ""] if sims else []
    md += _early_export(export) if export else []
    return md + (_measured(ctx, measured) if measured else [])


def _simulated(sims: dict[str, dict[str, Any]]) -> list[str]:
    """Part 2: each project's build simulated with and without pipelining (and splits)."""
    md = [("Simulated (`pytest experiments/test_7_pipelining.py --benchmark -k simulation`): a cold "
           "`go build -a -gcflags=all=-bench=FILE` at GOMAXPROCS=2, its work actions with their CPU "
           "durations, every compile's F/B/D from its own -bench run (scaled to the action). "
           "`pipelined`: a compile's dependent compiles start when its frontend (F) ends, its backend "
           "(B + D) runs on in the same process, links and cgo wait for the whole; `+split`: the "
           "longest compiles on the pipelined critical path also split K ways (F + B/K per shard, the "
           "leader's frontend gives the export data), K the best of 1..16 <= k. List scheduling by "
           "bottom level, no communication cost; seconds."), ""]
    for p, d in sims.items():
        md += _simulated_project(p, d)
    return md


def _simulated_project(p: str, d: dict[str, Any]) -> list[str]:
    m, rows = d["meta"], d["rows"]
    md = [f"### {p} (simulated)", "",
          (f"{label(m, 'simulated')}. {m['compiles_with_phases']} of "
           f"{m['compiles']} compiles with -bench phases; the frontend is "
           f"{100 * m['frontend_share']:.0f}% of all compile time. Split packages: "
           f"{', '.join(m['split_packages']) or 'none'}."),
          ""]
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
    return md + [""]


def _early_export(export: dict[str, Any]) -> list[str]:
    """Part 1: whether the early export data is final, over every compile of the corpus."""
    differ = sorted({p for r in export["rows"] for p in r.get("differ", [])})
    return ["### Early export data is final (measured)", "",
            (f"{label(export['meta'], 'measured')}. Every compile of `go build -a -toolexec` over the "
             "corpus ran the patched compiler with `-fgoexport` (patch 0013: the export data written "
             "after the first pass of the compile loop, before the SSA backend) and the stock compiler "
             "on the same command line (std+cmd only; `stock` is empty where it was not run). "
             "`identical`: the early file equals the final archive up to the "
             "end of `__.PKGDEF`; `stock`: the patched archive equals the stock one; `ready`: when the "
             "early file appeared, as the median fraction of the compile's wall time (all compiles; "
             "compiles of >= 1 s); `run`: when the row was measured, by the command in the row "
             "(`pytest experiments/test_7_pipelining.py --benchmark -k early_export`, results/early_export.json)."), "",
            table(export["rows"], [("corpus", "corpus"), ("compiles", "compiles"),
                                   ("identical", "identical"), ("not_identical", "not identical"),
                                   ("stock_identical", "stock"), ("not_stock_identical", "not stock"),
                                   ("ready_frac_median", "ready"), ("ready_frac_median_1s", "ready (>= 1 s)"),
                                   ("compiles_1s", "compiles >= 1 s"), ("date", "run")]),
            "", "Packages whose early export data differs (must not be pipelined): "
            + (", ".join(f"`{p}`" for p in differ) if differ else "none") + ".", ""]


def _measured(ctx: Context, doc: dict[str, Any]) -> list[str]:
    """Part 3: pipelined builds on the emulated hosts, with the prediction beside them."""
    runs, summaries = runs_and_summaries(doc, "side")
    md = ["### Pipelined builds on emulated hosts (measured; predictions simulated)", "",
          (f"{label(doc['meta'], 'measured')}. The arrangement of {ctx.ref('scaleout')} for whole builds (the "
           "head's own slot on core 0, `--local-slots 1`; one single-core host on core 1 behind "
           "a 1 Gb/s link, nothing shared): cold `-a` "
           "`fgo build --no-pipeline` against `--pipeline`, alternating pairs; every binary "
           "byte-identical to one plain `go build -a` into an empty GOCACHE (`identical`). "
           "`hit rate`: speculative compiles taken by go build / started; `head start`: how much "
           "earlier the taken compiles started than go build asked for them (not time saved: "
           "the walls show that). `predicted`: "
           "**simulated**, the unpipelined run of the same pair replayed "
           "(`fgo.analysis.makespan.predict_pipelined`, the head's slot first and sending no "
           "export data early: its compiles' tool times from fgo's report, its fixed cost) "
           "with each compile's dependents released when its export data came in the other "
           "pairs' pipelined runs; `replay`: the same without pipelining, against that run. "
           "`.venv/bin/pytest experiments/test_7_pipelining.py --benchmark -k \"measured and "
           "etcd\"`, results/pipeline_measured.json."), ""]
    md.append(table(summaries, [("project", "project"), ("pairs", "pairs"),
                                ("speedup_median", "no-pipeline / pipeline"),
                                ("speedups", "per pair"), ("hit_rate_median", "hit rate"),
                                ("prediction_error_median", "prediction error"),
                                ("identical", "identical")]))
    md.append("")
    md.append(table([_head_start(r) for r in runs], [
        ("project", "project"), ("pair", "pair"), ("side", "side"),
        ("wall_s", "wall s"), ("predicted_s", "predicted s (simulated)"),
        ("error", "error"), ("replay_error", "replay error"),
        ("started", "speculated"), ("hits", "taken"), ("misses", "missed"),
        ("unused", "unused"), ("hit_rate", "hit rate"),
        ("head_start_s", "head start s"), ("wasted_s", "wasted s"),
        ("head_cpu_s", "head CPU s"), ("load1_before", "load1"),
        ("identical", "identical")]))
    return md + [""]


def _head_start(run: dict[str, Any]) -> dict[str, Any]:
    """RUN with `head_start_s`: results written before the rename call it `saved_s`."""
    return {**run, "head_start_s": run.get("head_start_s", run.get("saved_s"))}
