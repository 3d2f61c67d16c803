"""The plan of a whole build, without building: the package graph, its shape, what to split.

The package graph comes from `go list -deps -json` (networkx), costs from the
lark-based cost model, or from the durations fgo measured in the last build of
the same target when it has them. Output: a table, `--json`, or `--dot FILE`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from fgo import toolchain
from fgo.analysis.graph import level_groups
from fgo.errors import FgoError
from fgo.goflags import split_go_args, without_output_flag
from fgo.report.record import last_durations


def go_list(project: Path, go_args: list[str]) -> list[dict[str, Any]]:
    flags, patterns = split_go_args(go_args)
    patterns = patterns or ["."]
    proc = toolchain.run_go(["list", "-deps", "-json", *without_output_flag(flags), *patterns],
                            cwd=project, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise FgoError(f"go list: {lines[-1] if lines else 'failed'}")
    return list(json.JSONDecoder().raw_decode(proc.stdout, i)[0]
                for i in _object_starts(proc.stdout))


def _object_starts(text: str) -> list[int]:
    """Offsets of the top-level JSON objects go list prints one after another."""
    starts, depth, in_str, esc = [], 0, False, False
    for i, ch in enumerate(text):
        if in_str:
            esc, in_str = (not esc and ch == "\\"), in_str and (esc or ch != '"')
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                starts.append(i)
            depth += 1
        elif ch == "}":
            depth -= 1
    return starts


def make_plan(project: Path, go_args: list[str], hosts: int, split_large: str | None) -> dict[str, Any]:
    from fgo import planner
    from fgo.planner.critical import critical_path, critical_path_priority, graph_from_go_list
    from fgo.planner.decide import SplitPolicy
    t0 = time.perf_counter()
    pkgs = go_list(project, go_args)
    graph = graph_from_go_list(pkgs)
    measured = last_durations(project, go_args)
    threshold = None if split_large in (None, "auto") else float(split_large)
    policy = SplitPolicy(threshold=threshold)
    cost: dict[str, float] = {}
    rows = []
    for p in pkgs:
        files = [os.path.join(p["Dir"], f) for f in p.get("GoFiles", []) + p.get("CgoFiles", [])]
        row: dict[str, Any] = {"package": p["ImportPath"], "files": len(files),
                               "standard": bool(p.get("Standard"))}
        try:
            scan = planner.scan_files(files) if files else None
        except Exception as exc:  # the planner never fails a plan: it says why
            scan, row["scan_error"] = None, str(exc).splitlines()[0]
        if scan is not None:
            c = planner.predict(scan)
            sp = planner.plan(scan, hosts, policy)
            row.update(functions=len(scan.units), lines=scan.total_lines,
                       predicted={"F": round(c.F, 3), "B": round(c.B, 3), "D": round(c.D, 3)},
                       split={"k": sp.k, "reason": sp.reason,
                              "gain_s": round(sp.predicted_whole - sp.predicted_split, 3)})
            cost[p["ImportPath"]] = c.F + c.B + c.D
        if p["ImportPath"] in measured:
            row["measured_s"] = measured[p["ImportPath"]]
            cost[p["ImportPath"]] = measured[p["ImportPath"]]
        row["cost_s"] = round(cost.get(p["ImportPath"], 0.0), 3)
        rows.append(row)
    path = critical_path(graph, cost)
    prio = critical_path_priority(graph, cost)
    levels = level_groups(graph.reverse(copy=False))  # edges importer -> imported: reversed
    for row in rows:
        row["priority_s"] = round(prio.get(row["package"], 0.0), 3)
    mains = [p["ImportPath"] for p in pkgs if p.get("Name") == "main" and not p.get("DepOnly")]
    return {
        "project": str(project), "go_args": go_args, "hosts": hosts,
        "costs_from": "last build" if measured else "cost model",
        "actions": {"compile": len(pkgs), "link": len(mains)},
        "depth": len(levels),
        "width_by_level": [len(level) for level in levels],
        "work_s": round(sum(cost.values()), 3),
        "critical_path": {"seconds": round(sum(cost.get(n, 0.0) for n in path), 3),
                          "packages": path},
        "split": sorted(({"package": r["package"], "k": r["split"]["k"],
                          "gain_s": r["split"]["gain_s"], "reason": r["split"]["reason"]}
                         for r in rows if r.get("split", {}).get("k", 1) >= 2),
                        key=lambda r: -r["gain_s"]),
        "packages": rows,
        "plan_s": round(time.perf_counter() - t0, 3),
        "_graph": graph,
    }


def write_dot(path: str, plan: dict[str, Any]) -> None:
    on_path = set(plan["critical_path"]["packages"])
    split = {s["package"] for s in plan["split"]}
    cost = {r["package"]: r["cost_s"] for r in plan["packages"]}
    lines = ["digraph fgo {", "  rankdir=BT; node [shape=box, fontsize=10];"]
    for n in plan["_graph"].nodes:
        attrs = [f'label="{n}\\n{cost.get(n, 0):.2f}s"']
        if n in on_path:
            attrs.append('color=red, penwidth=2')
        if n in split:
            attrs.append('style=filled, fillcolor="#ffe08a"')
        lines.append(f'  "{n}" [{", ".join(attrs)}];')
    for a, b in plan["_graph"].edges:
        lines.append(f'  "{a}" -> "{b}";')
    lines.append("}")
    Path(path).write_text("\n".join(lines) + "\n")
