"""Two cores' worth of fgo (the head's slot and emulated single-core hosts,
experiments/test_8_scaleout.py) against go build -p 1 on one, with where each fgo run's CPU
went."""

from __future__ import annotations

import statistics
from typing import Any

from experiments.sections.common import Context, label, runs_and_summaries, table

RESULTS = "scaleout.json"
CEILING = "interference.json"    # experiments/interference.py
GAP = "gap.json"                  # experiments/gap.py


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    runs, summaries = runs_and_summaries(doc, "side")
    md = [(f"{label(doc['meta'], 'measured')}. Two cores' worth of fgo against `go build -p 1` "
           "pinned to core 0. Single-core worker hosts emulated on this machine "
           "(`experiments/hosts.py`: a network namespace each, 1 Gb/s `tbf` links, its own "
           "installation and store, nothing shared with the head but the network); the head "
           "(fgo, go build and the Dask scheduler) pinned to core 0. Whole builds (`what` says "
           "the arrangement): the head compiles on its own core (`--local-slots 1`) and one host "
           "on core 1 takes the overflow; rows whose `what` names no slot were measured before "
           "issue 24, with no slot on the head and a second host beside it on core 0. Cold: `-a`, "
           "empty GOCACHE and worker stores, a fresh cluster each run; `aws`: aws-sdk-go's quick "
           "subset (ec2, sagemaker, iot, glue, ssm and their dependencies: 234 compiles) linked "
           "by one main package, plain and with `--split-large` (the model's own choice) or "
           "`--pipeline`; `ssa` and `ec2`: `cmd/compile/internal/ssa` or aws-sdk-go's "
           "`service/ec2` alone (its dependencies cached) split K=2 against its stock `-c=1` "
           "compile: the leader on the head's slot (core 0), its shard on the host (core 1) "
           "(rows whose `what` says \"across 2 hosts\" were measured before the head could "
           "lead: both on hosts, on cores 0 and 1). "
           "Sides alternate; speedup = go wall / fgo wall within a pair, median of the pairs; "
           "efficiency = speedup / 2. Every fgo output is byte-identical to its pair's go build "
           "(asserted). Re-run one row: `.venv/bin/pytest experiments/test_8_scaleout.py "
           "--benchmark -k NAME`. Each row's date, load and session (the pytest command) are its "
           "own; the caption's are the last session's."), "",
          table(summaries, [("project", "project"), ("what", "what"), ("pairs", "pairs"),
                            ("go_wall_median_s", "go -p 1 s"), ("fgo_wall_median_s", "fgo s"),
                            ("speedup_median", "speedup"), ("speedups", "per pair"),
                            ("efficiency", "efficiency"), ("target", "target"), ("met", "met"),
                            ("go_cpu_median_s", "go CPU s"),
                            ("fgo_head_cpu_median_s", "fgo head CPU s"),
                            ("load1_max", "max load1"), ("identical", "identical")]),
          ""]
    md += _provisional(runs, summaries, doc["meta"].get("machine", {}).get("cores") or 2)
    md += ["",
           table(runs, [("project", "project"), ("pair", "pair"), ("side", "side"),
                        ("wall_s", "wall s"), ("cpu_s", "head CPU s"),
                        ("scheduler_cpu_s", "scheduler CPU s"), ("remote", "remote"),
                        ("split", "split"), ("fallbacks", "fallbacks"),
                        ("dispatch_median_ms", "dispatch p50 ms"), ("bytes_sent", "bytes sent"),
                        ("load1_before", "load1"), ("date", "date")]),
           "",
           ("Per run, the fgo report (per-action durations, dispatch, bytes) and go's action "
            "graph are in `results/scaleout/`; the CPU seconds of each host in `hosts_cpu_s`."),
           ""]
    return md + _split_phases(ctx, runs) + _ceiling(ctx) + _gap(ctx) + _memory(runs) \
        + _cpu_by_role(runs)


# A giant's stock phases (-bench, -c=1), measured by experiments/aws.py (`python -m
# experiments.aws stock`, its command in each file): project -> (results file, package)
STOCK_PHASES = {"ec2": ("aws_stock.json", "github.com/aws/aws-sdk-go/service/ec2"),
                "ssa": ("aws_c2_late_ssa.json", "cmd/compile/internal/ssa")}


def split_ceiling(f: float, b: float, d: float, k: int) -> float:
    """A K-way split's speedup over the stock compile with nothing but its own repetition:
    every process runs the frontend F, the backend B is shared, the archive D written once."""
    return (f + b + d) / (f + b / k + d)


def _split_phases(ctx: Context, runs: list[dict[str, Any]]) -> list[str]:
    """Where each giant split's time went (its report), and what a split in two could give at
    best, from the package's stock phases."""
    rows = []
    for r in runs:
        if r.get("side") != "fgo" or r["project"] not in STOCK_PHASES:
            continue
        for a in r.get("split_actions") or []:
            lead = a["leader"]
            for shard in a["shards"].values():
                st = shard["stats"]
                rows.append({"project": r["project"], "pair": r["pair"], "fgo_s": r["wall_s"],
                             "compile_s": a["duration_s"], "leader_on": lead["on"],
                             "l_front": lead["frontend_s"], "l_back": lead["backend_s"],
                             "l_wait": lead["wait_s"], "l_merge": lead["merge_s"],
                             "s_lag": shard.get("start_lag_s"), "s_front": st["frontend_s"],
                             "s_back": st["backend_s"], "s_export": st["export_s"],
                             "s_result": shard.get("result_s")})
    if not rows:
        return []
    md = [("**Where a giant split's time goes** (each fgo run's report, `split` section): the "
           "leader's frontend (its walk of its own functions included), backend, wait for the "
           "shard and merge; the shard's start after the leader's (`start lag`), frontend, "
           "backend, result export, and the time from its end to its result on the leader's "
           "disk (`result`; both on this machine's clock). Runs before these fields were "
           "reported show none."), "",
          table(rows, [("project", "project"), ("pair", "pair"), ("fgo_s", "fgo s"),
                       ("compile_s", "compile s"), ("leader_on", "leader on"),
                       ("l_front", "leader F s"), ("l_back", "leader B s"),
                       ("l_wait", "leader wait s"), ("l_merge", "merge s"),
                       ("s_lag", "shard start lag s"), ("s_front", "shard F s"),
                       ("s_back", "shard B s"), ("s_export", "shard export s"),
                       ("s_result", "result s")]), ""]
    for project, (name, package) in STOCK_PHASES.items():
        doc = ctx.load(name)
        phases = (doc or {}).get("summary", {}).get(package, {}).get("c1")
        if not phases:
            continue
        f, b, d = (phases[x]["median"] for x in ("F", "B", "D"))
        md.append(f"- {project}: its stock `-c=1` compile's phases F {f:.2f} s, B {b:.2f} s, "
                  f"D {d:.2f} s (medians, `results/{name}`: `{doc['meta']['command']}`, "
                  f"{doc['meta']['date']}): a split in two that repeats the frontend and writes "
                  f"the archive once gives at most **{split_ceiling(f, b, d, 2):.2f}×** with no "
                  f"overhead at all (K=4: {split_ceiling(f, b, d, 4):.2f}×).")
    return md + [""]


def _gap(ctx: Context) -> list[str]:
    """Where each whole build's speedup went (experiments/gap.py), read from its pair."""
    doc = ctx.load(GAP)
    if not doc:
        return []
    return [(f"{label(doc['meta'], 'read from the runs above')}. **Where the speedup goes** "
             "(`experiments/gap.py`; `.venv/bin/pytest experiments/test_8_scaleout.py "
             "--benchmark -k speedup_goes`): `graph ceiling` is what go's own action graph and "
             "durations allow on two slots (list-scheduled, critical path first) over one; "
             "`slot ×` and `host ×` how much longer the same compiles took on the head's slot "
             "and on the host than in go's own run (a host's by its tool time, without "
             "dispatch and queueing; raced and speculated compiles left out); `head other CPU` "
             "every process on the head's core but its compiles (fgo, the cacheprog, go build, "
             "the link, the scheduler: process accounting), `host other CPU` the host's Python."),
            "",
            table(doc["rows"], [("project", "project"), ("pair", "pair"), ("go_s", "go -p 1 s"),
                                ("fgo_s", "fgo s"), ("speedup", "speedup"),
                                ("graph_ceiling", "graph ceiling"),
                                ("slot_compiles", "slot compiles"), ("slot_inflation", "slot ×"),
                                ("host_compiles", "host compiles"), ("host_inflation", "host ×"),
                                ("head_other_cpu_s", "head other CPU s"),
                                ("host_other_cpu_s", "host other CPU s")]), ""]


def _ceiling(ctx: Context) -> list[str]:
    """What two cores can give over one on this machine, measured with go alone
    (experiments/interference.py): the speedups above are against it, not against 2."""
    doc = ctx.load(CEILING)
    if not doc:
        return []
    _, summaries = runs_and_summaries(doc, "side")
    return [(f"{label(doc['meta'], 'measured')}. **The ceiling of these speedups on this "
             "machine**: `go build -a -p 1` pinned to core 0 alone, against the same with another "
             "copy of it compiling on core 1 (`experiments/interference.py`; `.venv/bin/pytest "
             "experiments/test_8_scaleout.py --benchmark -k interference`). A build beside "
             "another runs `slowdown` times as long (its CPU seconds `cpu_slowdown` times: its "
             "core does less per second, it does not wait), so two cores give at most "
             "2 / slowdown over one, whoever drives them."), "",
            table(summaries, [("project", "project"), ("pairs", "pairs"),
                              ("alone_median_s", "alone s"), ("beside_median_s", "beside s"),
                              ("slowdowns", "per pair"), ("slowdown", "slowdown"),
                              ("cpu_slowdown", "CPU slowdown"),
                              ("ceiling_2_cores", "ceiling of 2 cores")]), ""]


def _memory(runs: list[dict[str, Any]]) -> list[str]:
    """Peak resident memory of the head (the fgo process: its shim server is a thread of it)
    and of the host's worker process, the most over each project's fgo runs."""
    rows = []
    for project in sorted({r["project"] for r in runs if r.get("head_peak_rss_mb")}):
        mine = [r for r in runs if r["project"] == project and r.get("head_peak_rss_mb")]
        workers = [v for r in mine for v in (r.get("workers_peak_rss_mb") or {}).values()]
        rows.append({"project": project, "runs": len(mine),
                     "head": max(r["head_peak_rss_mb"] for r in mine),
                     "worker": max(workers) if workers else None,
                     "dates": ", ".join(sorted({r["date"][:10] for r in mine}))})
    if not rows:
        return []
    return [("Peak memory (MB, the most over each project's fgo runs; the report's `head` and "
             "`workers_peak_rss_mb`):"), "",
            table(rows, [("project", "project"), ("runs", "runs"), ("head", "head MB"),
                         ("worker", "worker MB"), ("dates", "dates")]), ""]


def _provisional(runs: list[dict[str, Any]], summaries: list[dict[str, Any]], cores: int) -> list[str]:
    """A note on each project whose numbers are weak: too few pairs, or a machine busier
    than its cores."""
    md = []
    for s in summaries:
        load = max((r.get("load1_before") or 0) for r in runs if r["project"] == s["project"])
        if s["pairs"] < 3 or load > cores:
            md.append(f"- {s['project']}: **provisional** ({s['pairs']} pair(s); load average up to "
                      f"{load} on {cores} cores: other work shared the cores).")
    return md


def _cpu_by_role(runs: list[dict[str, Any]]) -> list[str]:
    """Where an fgo run's CPU went (process accounting, `experiments/acct.py`): the median
    over each project's fgo runs of each role's seconds, beside go -p 1's CPU."""
    md = []
    for project in sorted({r["project"] for r in runs if r.get("cpu_by_role")}):
        mine = [r for r in runs if r["project"] == project]
        fgo = [r["cpu_by_role"] for r in mine if r.get("cpu_by_role")]
        go_cpu = statistics.median(r["cpu_s"] for r in mine if r["side"] == "go")
        roles = sorted({k for b in fgo for k in b}, key=lambda k: (-statistics.median(
            b.get(k, 0.0) for b in fgo), k))   # ties by name: the same markdown every time
        rows = [{"role": k, "cpu_s": round(statistics.median(b.get(k, 0.0) for b in fgo), 2)}
                for k in roles]
        total = round(sum(x["cpu_s"] for x in rows), 1)
        md += [(f"Where {project}'s fgo CPU went (process accounting, median of {len(fgo)} runs; "
                f"all roles {total} s against go -p 1's {round(go_cpu, 1)} s; `cpu_by_role`):"), "",
               table(rows, [("role", "role"), ("cpu_s", "CPU s")])]  # its own newline ends it
    return md
