"""fgo build end to end (experiments/test_3_fgo_build.py): against the corpus's cold
go builds, with the per-action dispatch overhead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments.sections.common import Context, label, pyplot, save, table

RESULTS = "fgo_build.json"


def render(ctx: Context) -> list[str]:
    fgo = ctx.load(RESULTS)
    if not fgo:
        return []
    if fgo.get("meta", {}).get("skipped"):
        return [f"Not measured in this run: {fgo['meta']['skipped']}.", ""]
    md = [(f"`fgo build -a` on an embedded cluster of 2 workers, empty GOCACHE and blob store, against "
           f"{ctx.ref('corpus')}'s cold "
           "`go build -a` of the same session at GOMAXPROCS=2 (so -p 2, the fair comparison on 2 "
           "cores) and GOMAXPROCS=1 (-p 1 and -c=1: one core); then a no-op rebuild with fgo. "
           "Dispatch = shim request → tool start plus tool end → reply, per remote action."),
          "",
          table(fgo["rows"], [
              ("project", "project"), ("fgo_cold_s", "fgo -a s"), ("go_p1_cold_s", "go -a, GOMAXPROCS=1 s"),
              ("go_p2_cold_s", "go -a, GOMAXPROCS=2 s"), ("speedup_vs_p2", "vs -p 2"), ("fgo_noop_s", "fgo no-op s"),
              ("totals_remote", "remote"), ("totals_local", "local"), ("totals_cached", "cached"),
              ("totals_fallbacks", "fallbacks"), ("totals_bytes_sent", "bytes sent"),
              ("totals_unique_input_bytes", "unique input bytes"), ("dispatch_p50_ms", "dispatch p50 ms"),
              ("dispatch_p90_ms", "p90 ms"), ("dispatch_p99_ms", "p99 ms")])]
    for r in fgo["rows"]:
        if r.get("error"):
            err = r["error"].strip().splitlines()
            md.append(f"- **{r['project']}: fgo build failed**: `{err[0][:300]}` … `{err[-2][:300] if len(err) > 1 else ''}`")
    md += ["", f"_{label(fgo['meta'], 'MEASURED')}_", ""]
    if any(r.get("dispatch_n") for r in fgo["rows"]):
        md += ctx.figure("fig4_dispatch.png", "dispatch",
                         f"dispatch overhead per remote action — {label(fgo['meta'], 'MEASURED')}",
                         lambda p: draw_dispatch(ctx.results, fgo, p))
    return md


def draw_dispatch(results: Path, doc: dict[str, Any], out: Path) -> None:
    """Figure 4: a histogram of each project's dispatch times, from the samples in raw/.
    Without them (raw/ is not committed) OUT is left as it is."""
    data = {}
    for r in doc["rows"]:
        f = results / "raw" / f"{r['project'].replace('/', '_')}-fgo-dispatch.json"
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if d:
            data[r["project"]] = [1e3 * float(x) for x in d]
    if not data:
        return
    fig, ax = pyplot().subplots(figsize=(8, 4))
    ax.hist(list(data.values()), bins=40, label=list(data), histtype="step")
    ax.set_xlabel("dispatch overhead per remote action (ms): shim request → tool start, and back")
    ax.set_ylabel("actions")
    ax.legend(fontsize=8)
    ax.set_title("fgo build: per-action dispatch overhead — MEASURED", fontsize=10)
    save(fig, out, doc["meta"], "measured")
