"""The scheduling simulations (experiments/test_2_simulation.py, re-run by
experiments/resim.py): each policy's makespan on k workers over a measured build's
actions, one table and figure per project and duration source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.sections.common import Context, label, levels_note, pyplot, save, table

PROJECTS = ("cmd/compile", "cmd/go", "etcd", "gin")
SOURCE_LABELS = {"wall": "recorded wall durations", "cpu": "CPU-time durations (user+sys of the commands)"}

POLICIES = (
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

POLICY_LABELS = {
    "levels": "(a) DistGo levels + barriers",
    "cp_list": "(b) DAG list sched., critical-path priority",
    "go_list": "go build's order (post-order priority)",
    "split_cp_list": "(c) (b) + split large packages, modelled shards",
    "measured_cp_list": "(c) (b) + split large packages, measured shards",
}


def results_file(project: str, source: str) -> str:
    """The results file of PROJECT simulated on SOURCE durations (as test_2 names it)."""
    return f"simulate_{project.replace('/', '_')}" + ("" if source == "wall" else f"_{source}") + ".json"


def load_sims(ctx: Context) -> dict[tuple[str, str], dict[str, Any]]:
    """The simulations present, by (project, duration source), in report order."""
    sims = {}
    for project in PROJECTS:
        for source in SOURCE_LABELS:
            doc = ctx.load(results_file(project, source))
            if doc:
                sims[(project, source)] = doc
    return sims


def render(ctx: Context) -> list[str]:
    sims = load_sims(ctx)
    if not sims:
        return []
    md = [POLICIES, ""]
    for (pr, source), doc in sims.items():
        md += _one(ctx, pr, source, doc)
    return md


def _one(ctx: Context, pr: str, source: str, doc: dict[str, Any]) -> list[str]:
    """One simulation: its input, the makespan table, split packages and figure."""
    m = doc["meta"]
    md = [f"### {pr} — {SOURCE_LABELS[source]}", ""]
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
    md += [levels_note(ctx), ""]
    md += _split_packages(m)
    md += ctx.figure(f"fig3_sim_{pr.replace('/', '_')}_{source}.png", f"{pr} simulation",
                     f"{pr} ({source} durations): makespan and speedup vs k — {label(m, 'SIMULATED')}",
                     lambda p: draw(doc, p))
    return md


def _split_packages(m: dict[str, Any]) -> list[str]:
    """The table of one simulation's split packages and their measured phases (if any)."""
    if not m.get("split_packages"):
        return []
    measured = bool(m.get("measured_shard_choices"))
    return [
        "Split packages (F/B/D measured with `compile -bench`, -c=1; `action s` from the "
        "input graph" + ("; measured shards: CPU seconds of each shard process, shard 0 = "
                         "the leader less D" if measured else "") + "):",
        "",
        table([{**r, "shards_k": _shard_cell(r)} for r in m["split_packages"]], [
            ("package", "package"), ("action_s", "action s"), ("compile_c1_wall_s", "compile -c=1 s (two at once)"),
            ("frontend_s", "F s"), ("backend_s", "B s"), ("merge_s", "D s"), ("backend_frac", "B share"),
            *([("shards_k", "measured shards s (K: shard 0 … K-1)")] if measured else [])]),
    ]


def _shard_cell(row: dict[str, Any]) -> str:
    """A split package's measured shard times, per K; or why it was not split."""
    if row.get("measured_error"):
        return f"not split: {row['measured_error']}"
    return "; ".join(f"{k}: " + " ".join(f"{t:.2f}" for t in ts)
                     for k, ts in (row.get("measured_shard_s") or {}).items())


def draw(doc: dict[str, Any], out: Path) -> None:
    """Figure 3: makespan and speedup against k, per policy, with the lower bounds."""
    plt = pyplot()
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
    save(fig, out, doc["meta"], "simulated", wspace=0.3)
