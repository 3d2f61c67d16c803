"""`fgo build --trace FILE.json`: the build as a Chrome Trace Event file (opens in Perfetto).

One process per worker with a lane per thread, one for the head node (local
compiles, links, everything go ran itself), a span per action, and flow
arrows from an action to the actions it unblocks (from go's action graph).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from fgo.report.record import node_times

HEAD = "head node"


def _lanes(spans: list[dict[str, Any]]) -> None:
    """Give each span a tid: the lowest lane of its process free at its start."""
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in spans:
        by_pid[s["pid"]].append(s)
    for group in by_pid.values():
        free_at: list[float] = []
        for s in sorted(group, key=lambda s: s["ts"]):
            lane = next((i for i, t in enumerate(free_at) if t <= s["ts"]), len(free_at))
            if lane == len(free_at):
                free_at.append(0.0)
            free_at[lane] = s["ts"] + s["dur"]
            s["tid"] = lane + 1


def build_trace(report: dict[str, Any], graph: list[dict[str, Any]]) -> dict[str, Any]:
    remote = {a["package"]: a for a in report["actions"] if a["mode"] in ("remote", "split")}
    pids = {HEAD: 1}
    for a in remote.values():
        pids.setdefault(a["worker"], len(pids) + 1)
    t0 = min([t for n in graph for t in node_times(n) if t] +
             [a["start"] for a in remote.values() if a.get("start")] or [0.0])

    def us(t: float) -> float:
        return round((t - t0) * 1e6, 1)

    spans, span_of = [], {}
    for node in graph:
        start, end = node_times(node)
        if start is None or end is None or not node.get("Cmd"):
            continue  # cache hits and no-op actions ran nothing
        pkg, mode = node.get("Package", ""), node.get("Mode", "")
        a = remote.get(pkg) if mode == "build" else None
        if a and a.get("start") and a.get("end"):
            start, end = a["start"], a["end"]
            where = a["worker"]
            args = {"mode": a["mode"], "bytes_in": a["bytes_in"], "bytes_out": a["bytes_out"],
                    "dispatch_ms": round((a["dispatch_s"] or 0) * 1e3, 2)}
            split = a.get("split") or {}
            if a["mode"] == "split":  # the leader's lane; its shards ran on the other workers
                args.update(shards=split.get("k"), shard_workers=split.get("workers"))
            elif split.get("fallback"):
                args["split_fallback"] = split["fallback"]
        else:
            where = HEAD
            fallback = next((r["fallback"] for r in report["actions"]
                             if r["package"] == pkg and r.get("fallback")), None)
            args = {"mode": "local", **({"fallback": fallback} if fallback else {})}
        span = {"name": f"{mode} {pkg}", "cat": mode, "ph": "X", "pid": pids[where],
                "ts": us(start), "dur": max(1.0, us(end) - us(start)), "args": args}
        spans.append(span)
        span_of[node["ID"]] = span
    for spec in (report.get("speculation") or {}).get("speculations", []):
        if spec.get("start") and spec.get("end"):  # pipelining: compiles ahead of go build
            pid = pids.setdefault(spec["worker"], len(pids) + 1)
            spans.append({"name": f"speculate {spec['package']}", "cat": "speculation",
                          "ph": "X", "pid": pid, "ts": us(spec["start"]),
                          "dur": max(1.0, us(spec["end"]) - us(spec["start"])),
                          "args": {k: spec[k] for k in ("outcome", "why", "head_start_s")}})
    _lanes(spans)
    events: list[dict[str, Any]] = []
    for name, pid in pids.items():
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                       "args": {"name": name if name == HEAD else f"worker {name}"}})
    events += spans
    flow = 0
    for node in graph:
        dst = span_of.get(node["ID"])
        for dep in node.get("Deps") or []:
            src = span_of.get(dep)
            if dst is None or src is None:
                continue
            flow += 1
            events.append({"ph": "s", "id": flow, "name": "unblocks", "cat": "dep",
                           "pid": src["pid"], "tid": src["tid"], "ts": src["ts"] + src["dur"] - 0.5})
            events.append({"ph": "f", "bp": "e", "id": flow, "name": "unblocks", "cat": "dep",
                           "pid": dst["pid"], "tid": dst["tid"], "ts": max(dst["ts"], src["ts"] + src["dur"])})
    other = {"fgo_version": report.get("fgo_version"), "go_version": report.get("go_version")}
    if cache := report.get("shared_cache"):  # hits ran nothing: one marker says what they saved
        other["shared_cache"] = cache
        end = max([s["ts"] + s["dur"] for s in spans] or [0.0])
        events.append({"ph": "i", "s": "p", "name": "shared cache", "pid": pids[HEAD], "tid": 0,
                       "ts": end, "args": cache})
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_trace(path: str, report: dict[str, Any], graph: list[dict[str, Any]]) -> None:
    with open(path, "w") as f:
        json.dump(build_trace(report, graph), f)
