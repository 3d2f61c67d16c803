"""The analysis half of experiments/aws.py: `check` and `model` (pure Python over stored results).

    python -m experiments.aws model   -> results/aws_model.json
    python -m experiments.aws check   -> results/aws_check.json

model: the cost model before this change (results/costmodel/fit_before.json, the fit shipped
  until then) and now (fgo/planner/costmodel_fit.json) against the stock -c=1 compiles that
  `aws.py stock` measured alone (wall, and the -bench F, B, D); and both feature sets
  cross-validated on the collected corpus (old: std, ssa, etcd, gin; aws: every service).
check: the go build model of fgo.analysis.simulate (`gobuild_schedule`: go1.27.3's token pool,
  Amdahl backend speedup per package, processor sharing) on the `go build -a std cmd` graph that
  `aws.py stdcmd` measured at -p 1 -c=1, against the published figures; the same model on the
  quick subset's -c=1 graph against its measured default build; and, per graph, what fgo can
  and cannot gain over `go build` on one node with -c.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.aws import (AWS, HERE, LARGEST, PUBLISHED, RESULTS, _median, meta, pkg_path,
                             write)

COSTLOGS = RESULTS / "costmodel"
LOGS = [COSTLOGS / "old_corpus.jsonl.gz", COSTLOGS / "aws_services.jsonl.gz"]


def read_text(path: Path) -> str:
    """PATH's text, or that of PATH.gz (raw results are committed compressed)."""
    if path.exists():
        return path.read_text()
    import gzip
    with gzip.open(str(path) + ".gz", "rt") as f:
        return f.read()


def load_graph(path: Path) -> Any:
    from fgo.analysis import actiongraph as ag
    return ag.work_graph(ag.parse(read_text(path)))


# ------------------------------------------------------------------------------- model

def _model_from(path: Path) -> dict[str, dict[str, float]]:
    data = json.loads(path.read_text())
    scale = data.get("scale", {})
    return {t: {**c, "_scale": scale.get(t, 1.0)} for t, c in data["model"].items()}


STOCK_FILES = ("aws_stock.json", "aws_c2.json", "aws_c2_late.json", "aws_c2_late_ssa.json",
               "aws_c2_late_std.json")


def measured_alone(files: Sequence[str] = STOCK_FILES) -> dict[str, dict[str, float]]:
    """{package: wall, F, B, D}, each the minimum over every -c=1 run of FILES (the results
    of `aws.py stock`), as costmodel.REFERENCE is made."""
    out: dict[str, dict[str, float]] = {}
    for name in files:
        path = RESULTS / name
        if not path.exists():
            continue
        for pkg, s in json.loads(path.read_text())["summary"].items():
            c1 = s.get("c1")
            if not c1:
                continue
            new = {"wall": c1["wall_s"]["min"], "F": c1["F"]["min"], "B": c1["B"]["min"],
                   "D": c1["D"]["min"]}
            old = out.get(pkg)
            out[pkg] = {k: min(v, old[k]) for k, v in new.items()} if old else new
    return out


def cmd_model(argv: Sequence[str]) -> int:
    from fgo.planner import costmodel as cm
    meas = measured_alone()
    samples = cm.samples_from_logs(LOGS)
    by_pkg = {s["pkg"]: s for s in samples}
    before = _model_from(COSTLOGS / "fit_before.json")
    after = _model_from(cm.FIT_FILE)
    rows = {}
    for pkg, m in meas.items():
        s = by_pkg.get(pkg)
        if s is None:
            continue
        row: dict[str, Any] = {"measured_c1_wall_s": m["wall"],
                               "in_reference": pkg in cm.REFERENCE,
                               "measured_FBD": [round(m[k], 3) for k in "FBD"],
                               "lines": s["features"]["lines"], "funcs": s["features"]["funcs"]}
        for name, model in (("before", before), ("after", after)):
            c = cm.predict_features(s["features"], model)
            row[name] = {"FBD": [round(x, 3) for x in (c.F, c.B, c.D)], "total": round(c.total, 3),
                         "error_vs_wall_pct": round(100 * (c.total / m["wall"] - 1), 1),
                         "error_vs_FBD_pct": round(100 * (c.total / (m["F"] + m["B"] + m["D"]) - 1), 1)}
        rows[pkg] = row
    # the two feature sets, cross-validated on the same collected samples
    old = [s for s in samples if "/aws-sdk-go/" not in s["pkg"]]
    is_aws = {s["pkg"] for s in samples if "/aws-sdk-go/" in s["pkg"]}
    feats_now = {t: list(v) for t, v in cm.FEATURES.items()}
    cv: dict[str, Any] = {}
    for name, train, feats in (
            ("before: old corpus only, old features", old,
             {**feats_now, "B": [f for f in feats_now["B"] if f != "value_methods"]}),
            ("after: old corpus + aws, new features", samples, feats_now)):
        cm.FEATURES.update(feats)
        try:
            preds = cm.cross_validate(train, 5, 0.2, "lll")
        finally:
            cm.FEATURES.update(feats_now)
        o = [(s, p) for s, p in zip(train, preds) if s["pkg"] not in is_aws]
        a = [(s, p) for s, p in zip(train, preds) if s["pkg"] in is_aws]
        cv[name] = {
            "old_ge_0.3s": cm.evaluate([s for s, _ in o], preds=[p for _, p in o], min_total=0.3),
            "old_ge_1s": cm.evaluate([s for s, _ in o], preds=[p for _, p in o], min_total=1.0)}
        if a:
            cv[name]["aws_ge_0.3s"] = cm.evaluate([s for s, _ in a], preds=[p for _, p in a],
                                                  min_total=0.3)
    # the old-features model trained on the old corpus, predicting every aws service
    # (raw collected seconds: how far off it is before any scale)
    cm.FEATURES.update({**feats_now, "B": [f for f in feats_now["B"] if f != "value_methods"]})
    try:
        m_old = cm.fit([(s["features"], (s["F"], s["B"], s["D"])) for s in old], 0.2, "lll")
    finally:
        cm.FEATURES.update(feats_now)
    aws = sorted((s for s in samples if "/aws-sdk-go/service/" in s["pkg"]),
                 key=lambda s: s["features"]["funcs"])
    ratio = [(s["F"] + s["B"] + s["D"]) / cm.predict_features(s["features"], m_old).total
             for s in aws if s["F"] + s["B"] + s["D"] > 0.3]
    per_func_ms = [1000 * s["B"] / s["features"]["funcs"] for s in aws if s["features"]["funcs"] >= 50]
    xs = [math.log(s["features"]["funcs"]) for s in aws if s["features"]["funcs"] >= 50]
    ys = [math.log(v / 1000) for v in per_func_ms]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    data = {"meta": meta(["model"]), "packages": rows, "cross_validated": cv,
            "why_low": {
                "old_fit_B_per_function_s": m_old["B"].get("funcs", 0.0),
                "new_fit_B": json.loads(cm.FIT_FILE.read_text())["model"]["B"],
                "aws_B_per_source_function_ms_median": round(_median(per_func_ms), 3),
                "aws_loglog_slope_B_per_function_vs_functions": round(slope, 3),
                "aws_services_measured_over_old_fit_median": round(_median(ratio), 3),
                "n_aws_services": len(aws)},
            "fit_report": json.loads(cm.FIT_FILE.read_text())["report"]}
    write("aws_model.json", data)
    for pkg, r in rows.items():
        print(f"{pkg.split('/')[-1]:28s} wall {r['measured_c1_wall_s']:6.2f}  before "
              f"{r['before']['total']:6.2f} ({r['before']['error_vs_wall_pct']:+.0f}%)  after "
              f"{r['after']['total']:6.2f} ({r['after']['error_vs_wall_pct']:+.0f}%)")
    return 0


# ------------------------------------------------------------------------------- check

def _bench_runs(stdcmd: Mapping[str, Any]) -> dict[int, list[dict[str, dict[str, float]]]]:
    from fgo.analysis import bench
    out: dict[int, list[dict[str, dict[str, float]]]] = {1: [], 2: []}
    for r in stdcmd["runs"]:
        p = HERE / r["bench"]
        if r["rc"] == 0:
            out[r["c"]].append(bench.summaries(read_text(p)))
    return out


def shapes_for(g: Any, dur: Mapping[Any, float], per_pkg: Mapping[str, Mapping[str, float]],
               default_parallel: float,
               fbd: Mapping[str, Mapping[str, float]] | None = None) -> dict[Any, Any]:
    """CompileShapes of g's compiles: F/B/D from PER_PKG (measured with its parallel
    fraction), else from FBD (a build's -bench summaries) with DEFAULT_PARALLEL, else
    simulate.DEFAULT_SHARES; each scaled to the node's duration."""
    from fgo.analysis import simulate as sim
    phases = {}
    for n in g:
        a = g.nodes[n]
        pkg = a.get("package")
        if a.get("mode") != "build":
            continue
        ph = per_pkg.get(pkg)
        if ph is not None:
            phases[n] = sim.CompileShape(ph["F"], ph["B"], ph["D"], ph["parallel"])
        elif fbd and pkg in fbd and pkg != "main":
            b = fbd[pkg]
            phases[n] = sim.CompileShape(b["frontend"], b["backend"], b["dumpobj"], default_parallel)
    return sim.compile_shapes(g, dur, phases, default_parallel)


def published_check(g: Any, dur: Mapping[Any, float], shapes: Mapping[Any, Any]) -> dict[str, Any]:
    """The model's T(c=C)/T(c=1) for each published configuration, with and without
    processor sharing, next to the published ratio."""
    from fgo.analysis import simulate as sim
    out = {}
    for name, (cores, p, c, t1, tc) in PUBLISHED.items():
        row: dict[str, Any] = {"cores": cores, "p": p, "c": c, "published_s": [t1, tc],
                               "published_ratio": round(tc / t1, 3)}
        for cont in (True, False):
            a = sim.gobuild_schedule(g, sim.GoBuild(cores, p, fixed_c=1, contention=cont), dur, shapes)
            b = sim.gobuild_schedule(g, sim.GoBuild(cores, p, fixed_c=c, contention=cont), dur, shapes)
            key = "model" if cont else "model_no_sharing"
            row[key] = {"s": [round(a.makespan, 2), round(b.makespan, 2)],
                        "ratio": round(b.makespan / a.makespan, 3)}
        out[name] = row
    # go1.27's token pool against the rule before it (Go <= 1.25: c = min(4, GOMAXPROCS) when
    # -p > 1), -p = cores; published (CL 724142, Sweet go-build): 3-10% faster on 16 cores,
    # 5-16% on 88
    for cores in (16, 88):
        old = sim.gobuild_schedule(g, sim.GoBuild(cores, fixed_c=min(4, cores)), dur, shapes)
        new = sim.gobuild_schedule(g, sim.GoBuild(cores), dur, shapes)
        out[f"pool_vs_min4_{cores}_cores"] = {
            "min4_s": round(old.makespan, 2), "pool_s": round(new.makespan, 2),
            "faster_pct": round(100 * (1 - new.makespan / old.makespan), 1),
            "published_pct": "3-10" if cores == 16 else "5-16"}
    return out


def measured_split_specs() -> dict[str, Any]:
    """SplitSpecs with the shard times measured by `aws.py split` (medians per K of each
    process alone, relative to the same round's stock -c=1 compile): shard 0 is the leader
    alone less its merge and D, which stay with the merge node. Scaled to a graph's duration
    by `split_graph` (scale_to_action) through F + B + D = 1."""
    from fgo.analysis import simulate as sim
    path = RESULTS / "aws_split.json"
    if not path.exists():
        return {}
    runs = [r for c in json.loads(path.read_text())["campaigns"] for r in c["runs"]
            if not r.get("error") and r.get("alone_leader_s") and r.get("stock_s")]
    out = {}
    for pkg in sorted({r["package"] for r in runs}):
        shard_s: dict[int, list[float]] = {}
        tails = []
        for k in sorted({r["shards"] for r in runs if r["package"] == pkg}):
            rs = [r for r in runs if r["package"] == pkg and r["shards"] == k]
            tail = [((r["merge_s"] or 0) + (r["bench_dumpobj_s"] or 0)) / r["stock_s"] for r in rs]
            lead = _median([r["alone_leader_s"] / r["stock_s"] for r in rs]) - _median(tail)
            others = [_median([sorted(r["alone_shard_s"])[i] / r["stock_s"] for r in rs])
                      for i in range(k - 1)]
            shard_s[k] = [lead, *others]
            tails.append(_median(tail))
        # F + B + D = 1 (the stock compile); merge_s = the leader's merge + D
        out[pkg] = sim.SplitSpec(0.0, 1.0 - _median(tails), _median(tails), shard_s=shard_s)
    return out


def what_fgo_can_gain(g: Any, dur: Mapping[Any, float], shapes: Mapping[Any, Any],
                      ks: Sequence[int] = (2, 4, 8, 16, 32, 64),
                      measured: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Work, span, parallelism; the largest compile and its F + D (what a split cannot
    divide); per k: DistGo levels, list scheduling, list with every compile >= 1 s split
    (best K <= 16; F + B/K each, D after: no repeated walk, no merge, no transfer), each
    against go build on one node of k cores with -c. With MEASURED (measured_split_specs),
    also split_measured: only the packages measured, with their measured shard times."""
    from fgo.analysis import graph
    from fgo.analysis import simulate as sim
    w, sp = graph.work(g, dur), graph.span(g, dur)
    comp = [n for n in g if g.nodes[n].get("mode") == "build"]
    big = max(comp, key=lambda n: dur[n])
    s = shapes[big]
    specs = {g.nodes[n]["package"]: sim.SplitSpec(shapes[n].F, shapes[n].B, shapes[n].D)
             for n in comp if dur[n] >= 1.0}
    meas = {p: v for p, v in (measured or {}).items()
            if any(g.nodes[n].get("package") == p for n in comp)}
    rows = []
    for k in ks:
        best = None
        for kk in (2, 4, 8, 16):
            if kk > k:
                continue
            h, hd = sim.split_graph(g, specs, kk, dur)
            t = sim.list_schedule(h, k, hd).makespan
            if best is None or t < best[0]:
                best = (t, kk)
        row = {"k": k, "levels": sim.level_schedule(g, k, dur).makespan,
               "cp_list": sim.list_schedule(g, k, dur).makespan,
               "split_cp_list": best[0] if best else None, "split_K": best[1] if best else None,
               "go_build_c": sim.gobuild_schedule(g, sim.GoBuild(k), dur, shapes).makespan,
               "go_build_c1": sim.gobuild_schedule(g, sim.GoBuild(k, fixed_c=1), dur, shapes).makespan,
               "lower_bound": max(w / k, sp)}
        if meas:
            bm = None
            for kk in sorted({kk for v in meas.values() for kk in (v.shard_s or {})}):
                if kk > k:
                    continue
                h, hd = sim.split_graph(g, meas, lambda p, kk=kk: kk if kk in (meas[p].shard_s or {}) else 1, dur)
                t = sim.list_schedule(h, k, hd).makespan
                if bm is None or t < bm[0]:
                    bm = (t, kk)
            if bm:
                row["split_measured"], row["split_measured_K"] = bm
        rows.append({a: (round(b, 2) if isinstance(b, float) else b) for a, b in row.items()})
    path = graph.critical_path(g, dur)[1]
    on_path = sorted((n for n in path if g.nodes[n].get("mode") == "build"), key=lambda n: -dur[n])
    return {"compiles": len(comp), "work_s": round(w, 2), "span_s": round(sp, 2),
            "parallelism": round(w / sp, 2) if sp else None,
            "largest_compile": {"package": g.nodes[big]["package"], "s": round(dur[big], 2),
                                "F": round(s.F, 2), "B": round(s.B, 2), "D": round(s.D, 2),
                                "F_plus_D": round(s.F + s.D, 2), "parallel": s.parallel},
            "critical_path_compiles": [(g.nodes[n]["package"], round(dur[n], 2)) for n in on_path[:6]],
            "sweep": rows}


# The one quiet -c=1 / -c=2 pair of this machine type on record (docs/compiler-sharding.md,
# cmd/compile/internal/ssa, each process alone on 2 cores, an earlier session): wall 15.97 s at
# -c=1 (F 4.39, B 10.96, D 0.53) and 13.29 s at -c=2, so B at -c=2 = 10.96 - 2.68 s.
DOCS_SSA = {"c1": 15.97, "c2": 13.29, "F": 4.39, "B": 10.96, "D": 0.53}
QUIET_C2 = ("aws_c2_late.json", "aws_c2_late_ssa.json", "aws_c2_late_std.json")
LOADED_C2 = ("aws_c2.json",)


def docs_parallel_fraction() -> float:
    from fgo.analysis import simulate as sim
    b2 = DOCS_SSA["B"] - (DOCS_SSA["c1"] - DOCS_SSA["c2"])
    return sim.parallel_fraction(DOCS_SSA["B"] / b2, 2)


def fit_fraction(g: Any, dur: Mapping[Any, float], fbd: Mapping[str, Mapping[str, float]],
                 target: tuple[int, int, int, float, float]) -> float:
    """The uniform parallel fraction that makes the model give TARGET's published ratio."""
    from fgo.analysis import simulate as sim
    cores, p, c, t1, tc = target
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        sh = shapes_for(g, dur, {}, mid, fbd)
        a = sim.gobuild_schedule(g, sim.GoBuild(cores, p, fixed_c=1), dur, sh).makespan
        b = sim.gobuild_schedule(g, sim.GoBuild(cores, p, fixed_c=c), dur, sh).makespan
        lo, hi = (mid, hi) if b / a > tc / t1 else (lo, mid)
    return round((lo + hi) / 2, 3)


def cmd_check(argv: Sequence[str]) -> int:
    from fgo.analysis import graph
    from fgo.analysis import simulate as sim
    out: dict[str, Any] = {"meta": meta(["check"])}
    # -c=1 against -c=2, each package 3 pairs: QUIET_C2 while others' load was ~1 (the second
    # core mostly free), LOADED_C2 while it was 2-4 (-c=2 could not help: kept to show that)
    def pairs(files: Sequence[str]) -> dict[str, dict[str, Any]]:
        got: dict[str, dict[str, Any]] = {}
        for name in files:
            path = RESULTS / name
            if not path.exists():
                continue
            for pkg, s in json.loads(path.read_text())["summary"].items():
                if "parallel_fraction" in s:
                    got[pkg] = {"F": s["c1"]["F"]["min"], "B": s["c1"]["B"]["min"],
                                "D": s["c1"]["D"]["min"], "parallel": s["parallel_fraction"],
                                "speedup_c2": s["backend_speedup_c2"],
                                "B_c1_over_c2_pairs": s["backend_c1_over_c2"],
                                "wall_c2_over_c1_pairs": s["wall_c2_over_c1"], "file": name}
        return got

    per_pkg = pairs(QUIET_C2)
    f_docs = docs_parallel_fraction()
    gopkgs = {p: v for p, v in per_pkg.items() if not p.startswith(AWS)}
    wb = sum(v["B"] for v in gopkgs.values())
    f_std = sum(v["parallel"] * v["B"] for v in gopkgs.values()) / wb if wb else f_docs
    out["backend_parallel_fraction"] = {
        "measured_quiet": per_pkg, "measured_under_load": pairs(LOADED_C2),
        "std_cmd_default_B_weighted": round(f_std, 3),
        "docs_ssa_quiet": round(f_docs, 3), "docs_ssa_pair": DOCS_SSA}
    fbd_aws: dict[str, dict[str, float]] = {}
    stock = json.loads((RESULTS / "aws_stock.json").read_text())
    for pkg, s in stock["summary"].items():
        if s.get("c1"):
            fbd_aws[pkg] = {"F": s["c1"]["F"]["min"], "B": s["c1"]["B"]["min"],
                            "D": s["c1"]["D"]["min"], "parallel": f_std}
    fbd_aws.update(per_pkg)

    stdcmd_path = RESULTS / "aws_stdcmd.json"
    stdcmd = json.loads(stdcmd_path.read_text()) if stdcmd_path.exists() else None
    if stdcmd:
        runs = _bench_runs(stdcmd)
        r0 = [r for r in stdcmd["runs"] if r["c"] == 1 and r["rc"] == 0][0]
        g = load_graph(HERE / r0["graph"])
        # at -p 1 a compile's wall is its uncontended time; at -p > 1 its CPU time stands in
        dur = graph.node_weights(g, "cpu" if r0.get("p", 1) > 1 else "duration")
        fbd = runs[1][0]
        f_fit = fit_fraction(g, dur, fbd, PUBLISHED["laptop_p1"])
        sh = shapes_for(g, dur, per_pkg, f_std, fbd)
        tot = [sum(getattr(sh[n], k) for n in sh) for k in "FBD"]
        out["std_cmd"] = {
            "build": {k: r0.get(k) for k in ("wall_s", "cpu_s", "p", "compiles", "loadavg_before")},
            "work_s": round(graph.work(g, dur), 2), "span_s": round(graph.span(g, dur), 2),
            "compile_FBD_share": [round(x / sum(tot), 3) for x in tot],
            "published_with_measured_fractions": published_check(g, dur, sh),
            "published_with_docs_fraction": published_check(g, dur, shapes_for(g, dur, {}, f_docs, fbd)),
            "fraction_fitted_to_laptop_p1": f_fit,
            "published_with_fitted_fraction": published_check(g, dur, shapes_for(g, dur, {}, f_fit, fbd)),
            "fgo": what_fgo_can_gain(g, dur, sh)}
    quick_path = RESULTS / "aws_quick.json"
    if quick_path.exists():
        quick = json.loads(quick_path.read_text())
        q: dict[str, Any] = {"measured": quick.get("summary"),
                             "deps": quick.get("deps")}
        c1runs = [r for r in quick["runs"] if r["variant"] == "c1" and r["rc"] == 0]
        if c1runs:
            gq = load_graph(RESULTS / "aws_quick" / f"quick-r{c1runs[0]['round']}-c1.actiongraph.json")
            dq = graph.node_weights(gq, "cpu")
            shq = shapes_for(gq, dq, fbd_aws, f_std)
            a = sim.gobuild_schedule(gq, sim.GoBuild(2, fixed_c=1), dq, shq).makespan
            b = sim.gobuild_schedule(gq, sim.GoBuild(2), dq, shq).makespan
            q["model_2_cores"] = {"c1_s": round(a, 2), "default_s": round(b, 2),
                                  "ratio": round(b / a, 3)}
            q["fgo"] = what_fgo_can_gain(gq, dq, shq, measured=measured_split_specs())
        out["quick"] = q
    etcd = RESULTS / "scaleout" / "etcd-pair0-go.actiongraph.json"
    if etcd.exists():
        ge = load_graph(etcd)
        de = graph.node_weights(ge, "cpu")
        out["etcd_cpu_durations"] = what_fgo_can_gain(ge, de, shapes_for(ge, de, per_pkg, f_std))
    write("aws_check.json", out)
    print(json.dumps({k: v for k, v in out.items() if k != "meta"}, indent=1)[:8000])
    return 0
