"""What fgo costs on one machine (experiments/test_9_overhead.py): fgo build against go
build at the same -p, cold and no-op, its targets; one compile message as a Dask task
against one RPC; dispatch over TCP."""

from __future__ import annotations

from typing import Any

from experiments.sections.common import Context, label, table

RESULTS = "overhead.json"


def render(ctx: Context) -> list[str]:
    doc = ctx.load(RESULTS)
    if not doc:
        return []
    rows = doc["rows"]
    md = [(f"{label(doc['meta'], 'measured')}. `go build -a -p 2` into an empty GOCACHE against "
           "`fgo build -a` on the embedded 2-worker cluster (go build then runs with -p 2), empty "
           "GOCACHE and store, alternating, then no-op rebuilds on each side's warm cache "
           "(`pytest experiments/test_9_overhead.py --benchmark`). Head CPU: user+sys of the fgo "
           "process itself (imports and cluster start included; `build`: while go build ran) per "
           "remote compile. Every fgo build's outputs are asserted equal to the go side's."), "",
          table([r for r in rows if isinstance(r.get("pair"), int)], [
              ("project", "project"), ("pair", "pair"), ("first", "first"),
              ("go_cold_s", "go s"), ("fgo_cold_s", "fgo s"), ("ratio", "fgo/go"),
              ("go_noop_s", "go no-op s"), ("fgo_noop_s", "fgo no-op s"),
              ("dispatch_median_ms", "dispatch ms"),
              ("head_cpu_per_remote_ms", "head CPU ms/compile"),
              ("head_build_cpu_per_remote_ms", "during build"), ("load1", "load")]),
          ""]
    md += [_median(s) for s in rows if s.get("pair") == "median"]
    md += [_rpc(r) for r in rows if r.get("pair") == "rpc"]
    md += [_tcp(t) for t in rows if t.get("pair") == "tcp"]
    return md + [""]


def _median(s: dict[str, Any]) -> str:
    met = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in s["targets"].items())
    return (f"- {s['project']}, medians of {s['pairs']} pairs: fgo/go **{s['ratio']}×**, "
            f"no-op +{s['noop_extra_s']} s, dispatch {s['dispatch_median_ms']} ms, head CPU "
            f"{s['head_cpu_per_remote_ms']} ms per remote compile "
            f"({s['head_build_cpu_per_remote_ms']} ms while go build ran). Targets: {met}.")


def _rpc(r: dict[str, Any]) -> str:
    return (f"- One compile message, {r['calls']} calls × {r['rounds']} rounds to 2 worker "
            f"processes (`test_a_task_against_one_rpc`): as a Dask task "
            f"{r['task_head_cpu_ms']} ms of head CPU and {r['task_wall_ms']} ms each; as "
            f"one RPC to fgo's handler {r['rpc_head_cpu_ms']} ms and {r['rpc_wall_ms']} ms.")


def _tcp(t: dict[str, Any]) -> str:
    return (f"- {t['project']} on `dask scheduler` + 2 `dask worker` processes over TCP "
            f"(`{t['fgo_command']}`): median dispatch **{t['dispatch_median_ms']} ms** "
            f"({'met' if t['targets']['dispatch <= 15 ms'] else 'NOT met'}: <= 15 ms), head "
            f"CPU {t['head_cpu_per_remote_ms']} ms per remote compile.")
