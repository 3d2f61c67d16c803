"""Item 3: `fgo build` end to end on this machine (measured).

For each corpus project: `fgo build --report R.json PROJECT -- -a ARGS` on a
local 2-worker cluster with an empty GOCACHE, against `go build -a -p 1` and
`-p 2` right after it (each with its own empty GOCACHE; -p 1 is left out of
--quick), then a no-op rebuild with fgo on
the warm cache. From the report (contract with `fgo build`): per-action
dispatch overhead (`dispatch_s`: shim request -> tool start, and back) as a
distribution, bytes sent vs unique input bytes, action counts by mode.
Skipped, with the reason printed, while `fgo build --report` does not exist.
"""

from __future__ import annotations

import json
import statistics

import pytest

from experiments import lab as labmod
from experiments.lab import CORPUS, QUICK_CORPUS
from fgo import toolchain

# Options of `fgo build` that ask for a local cluster of 2 workers, first found wins.
LOCAL_CLUSTER_OPTS = (("--local-workers", "2"), ("--workers", "2"), ("--local", "2"))


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def fgo_build(lab, name, cache, report, extra, help_text):
    p = CORPUS[name]
    out = lab.tmpdir("out")
    opts = []
    for opt, val in LOCAL_CLUSTER_OPTS:
        if opt in help_text:
            opts = [opt, val]
            break
    args = ["build", "--report", str(report), *opts, str(p.source_dir()), "--", *extra, *p.build_args(out)]
    env = p.env(GOCACHE=str(cache))
    wall, proc = labmod.run_fgo(args, env, cwd=out)
    lab.drop(out)
    if proc.returncode != 0:
        raise AssertionError(f"fgo {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, json.loads(report.read_text()), "fgo " + " ".join(args)


def go_build(lab, name, p_flag):
    p = CORPUS[name]
    cache, out = lab.tmpdir("gocache"), lab.tmpdir("out")
    env = p.env(GOCACHE=str(cache))
    import time
    t = time.perf_counter()
    toolchain.run_go(["build", "-a", "-p", str(p_flag), *p.build_args(out)], cwd=out, env=env, timeout=1800)
    wall = time.perf_counter() - t
    lab.drop(cache)
    lab.drop(out)
    return wall


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.quick] if n in QUICK_CORPUS else [])
                                  for n in CORPUS])
def test_fgo_build(benchmark, lab, name, capsys):
    if name not in lab.projects():
        pytest.skip("not in this run's corpus")
    ok, help_text = labmod.fgo_available("build", ["--report"])
    if not ok:
        with capsys.disabled():
            print(f"\n[item 3] skipped: {help_text}")
        lab.save("fgo_build", [], skipped=help_text)
        pytest.skip(help_text)
    cache = lab.tmpdir("gocache")
    tag = name.replace("/", "_")
    rep_cold = lab.raw / f"{tag}-fgo-cold.report.json"
    rep_noop = lab.raw / f"{tag}-fgo-noop.report.json"
    rows = lab.table("fgo_build")
    try:
        wall, rep, cmd = benchmark.pedantic(fgo_build, args=(lab, name, cache, rep_cold, ["-a"], help_text),
                                            rounds=1, iterations=1)
        noop_wall, noop, noop_cmd = fgo_build(lab, name, cache, rep_noop, [], help_text)
    except Exception as exc:
        rows.append({"project": name, "error": str(exc)[:3000]})
        lab.save("fgo_build", rows, what="measured: fgo build vs go build -a -p 1/-p 2 on this machine")
        raise
    finally:
        lab.drop(cache)
    # The baselines right after the fgo build: the load of this shared machine changes by the
    # minute, so item 1's builds are no fair reference. -p 1 only in the full run (--quick < 5 min).
    p2 = go_build(lab, name, 2)
    p1 = go_build(lab, name, 1) if not lab.quick else None
    acts = rep.get("actions", [])
    disp = [a["dispatch_s"] for a in acts if a.get("dispatch_s") is not None and a.get("mode") in ("remote", "split")]
    t = rep.get("totals", {})
    row = {"project": name, "fgo_cold_s": round(wall, 3), "go_p1_cold_s": round(p1, 3) if p1 else None,
           "go_p2_cold_s": round(p2, 3), "fgo_noop_s": round(noop_wall, 3),
           "speedup_vs_p1": round(p1 / wall, 3) if p1 else None, "speedup_vs_p2": round(p2 / wall, 3),
           **{f"totals_{k}": t.get(k) for k in ("actions", "remote", "local", "cached", "split",
                                               "fallbacks", "bytes_sent", "bytes_received", "unique_input_bytes",
                                               "wall_s")},
           "exit_code": rep.get("exit_code"),
           "noop_cached": noop.get("totals", {}).get("cached"),
           "noop_remote": noop.get("totals", {}).get("remote"),
           "dispatch_n": len(disp), "dispatch_p50_ms": round(1e3 * pct(disp, 50), 2) if disp else None,
           "dispatch_p90_ms": round(1e3 * pct(disp, 90), 2) if disp else None,
           "dispatch_p99_ms": round(1e3 * pct(disp, 99), 2) if disp else None,
           "dispatch_mean_ms": round(1e3 * statistics.fmean(disp), 2) if disp else None,
           "fallback_reasons": sorted({a["fallback"] for a in acts if a.get("fallback")}),
           "command": cmd, "noop_command": noop_cmd,
           "report": str(rep_cold.relative_to(labmod.REPO)) if rep_cold.is_relative_to(labmod.REPO) else str(rep_cold)}
    rows.append(row)
    lab.save("fgo_build", rows, what="measured: fgo build vs go build -a -p 1/-p 2 on this machine")
    (lab.raw / f"{tag}-fgo-dispatch.json").write_text(json.dumps(disp))
    benchmark.extra_info.update({k: v for k, v in row.items() if not isinstance(v, list)})
    assert t.get("actions", 0) > 0
