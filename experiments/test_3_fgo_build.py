"""Item 3: `fgo build` end to end on this machine (measured).

For each corpus project: `fgo build --report R.json PROJECT -- -a ARGS` on a
local 2-worker cluster with an empty GOCACHE and an empty blob store, against item 1's cold builds of
this session (`go build -a`, empty GOCACHE, at GOMAXPROCS=2, which is -p 2,
and GOMAXPROCS=1, which is -p 1 with -c=1; not in --quick), then a no-op
rebuild with fgo on the warm cache. From the report (contract with `fgo build`): per-action
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

# Options of `fgo build` that ask for a local cluster of 2 workers, first found wins.
LOCAL_CLUSTER_OPTS = (("--local-workers", "2"), ("--workers", "2"), ("--local", "2"))


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q / 100 * (len(xs) - 1)))]


def fgo_build(lab, name, cache, store, report, extra, help_text):
    p = CORPUS[name]
    out = lab.tmpdir("out")
    opts = []
    for opt, val in LOCAL_CLUSTER_OPTS:
        if opt in help_text:
            opts = [opt, val]
            break
    args = ["build", "--report", str(report), *opts, str(p.source_dir()), "--", *extra, *p.build_args(out)]
    env = p.env(GOCACHE=str(cache), FGO_STORE=str(store))
    wall, proc = labmod.run_fgo(args, env, cwd=out)
    lab.drop(out)
    if proc.returncode != 0:
        raise AssertionError(f"fgo {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, json.loads(report.read_text()), "fgo " + " ".join(args)


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
    cache, store = lab.tmpdir("gocache"), lab.tmpdir("store")  # cold: every input must travel
    tag = name.replace("/", "_")
    rep_cold = lab.raw / f"{tag}-fgo-cold.report.json"
    rep_noop = lab.raw / f"{tag}-fgo-noop.report.json"
    rows = lab.table("fgo_build")
    try:
        wall, rep, cmd = benchmark.pedantic(fgo_build, args=(lab, name, cache, store, rep_cold, ["-a"], help_text),
                                            rounds=1, iterations=1)
        noop_wall, noop, noop_cmd = fgo_build(lab, name, cache, store, rep_noop, [], help_text)
    except Exception as exc:
        rows.append({"project": name, "error": str(exc)[:3000]})
        lab.save("fgo_build", rows, what="measured: fgo build vs go build -a -p 1/-p 2 on this machine")
        raise
    finally:
        lab.drop(cache)
        lab.drop(store)
    # The baselines are item 1's cold builds (the same go build -a, plus -debug-actiongraph and
    # -debug-trace, whose files cost go well under a second): building them again here would
    # take a third of the whole run. Their load averages are in the row, to judge the machine.
    base = {p: lab.cold(name, p) for p in lab.procs()}
    p2, p1 = base[2].wall_s, (base[1].wall_s if 1 in base else None)
    acts = rep.get("actions", [])
    disp = [a["dispatch_s"] for a in acts if a.get("dispatch_s") is not None and a.get("mode") in ("remote", "split")]
    t = rep.get("totals", {})
    row = {"project": name, "fgo_cold_s": round(wall, 3), "go_p1_cold_s": round(p1, 3) if p1 else None,
           "go_p2_cold_s": round(p2, 3), "fgo_noop_s": round(noop_wall, 3),
           "go_baselines": {str(p): b.row()["command"] + f" (GOMAXPROCS={p})" for p, b in base.items()},
           "load1_before_go": {str(p): b.load_before[0] if b.load_before else None for p, b in base.items()},
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
    # Correctness: every package both builds compiled has the same content ID (go's hash of
    # the archive) as in item 1's plain cold build of the same target.
    plain = {n["Package"]: n["BuildID"].split("/")[-1] for n in json.loads(base[2].graph_path.read_text())
             if n.get("Mode") == "build" and n.get("BuildID") and n.get("Package")}
    ours = {a["package"]: a["build_id"].split("/")[-1] for a in acts
            if a.get("tool") == "compile" and a.get("build_id")}
    differ = sorted(p for p in ours if p in plain and ours[p] != plain[p])
    assert len(set(ours) & set(plain)) > 0.9 * len(plain) and not differ, (len(ours), len(plain), differ[:5])
