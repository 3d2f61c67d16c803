"""Item 5: what the default verification costs, measured (not simulated).

etcd, cold `fgo build -a` on the embedded 2-worker cluster with every compile remote
(`--local-slots 0`: the checks are of remote compiles), an empty GOCACHE and store for every run:

- whole compiles: the default `--verify-rate` (one of each worker's first compiles plus a 3%
  sample drawn from the build's secret, compiled again on the head node when it has a core
  free, else on another worker: a cross-check) against `--verify-rate 0` (the first check of
  each worker only), alternating, PAIRS pairs, the median of the per-pair ratios; each run's
  share of remote compiles checked (target >= 3% whatever the load, at <= 3% of the wall);
- splits (`--split-large=0 --shards 2`, every package split in two): `--verify-splits=first`
  on a cold ledger (every split compiled stock on the head node as well), on the warm ledger
  that run left (nothing to re-verify), and `off`.

Every run must succeed with no mismatch (a mismatch fails the experiment). The head-node
seconds spent verifying and the link's wait come from each build's report. Results:
results/verification.json (each row with its command).
"""

from __future__ import annotations

import json
import statistics

import pytest

from experiments import lab as labmod
from experiments.lab import CORPUS

PROJECTS = {"etcd": 3}          # project -> pairs (full run only: ~15 min on 2 cores)


def build(lab, name: str, opts: list[str], ledger=None) -> dict:
    p = CORPUS[name]
    cache, store, out = lab.tmpdir("gocache"), lab.tmpdir("store"), lab.tmpdir("out")
    report = out / "report.json"
    ledger = ledger or (lab.tmpdir("ledger") / "ledger.json")
    args = ["build", "--workers", "2", "--local-slots", "0", "--report", str(report), *opts,
            str(p.source_dir()),
            "--", "-a", *p.build_args(out)]
    env = p.env(GOCACHE=str(cache), FGO_STORE=str(store), FGO_LEDGER=str(ledger))
    try:
        wall, proc = labmod.run_fgo(args, env, cwd=out)
        assert proc.returncode == 0, f"fgo {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}"
        rep = json.loads(report.read_text())
    finally:
        for d in (cache, store, out):
            lab.drop(d)
    v = rep["verification"]
    assert not v["mismatched"], v["mismatched"]
    split_checks = [c for c in v["checks"] if c["kind"] == "split" and c["matched"] is not None]
    return {"wall_s": round(wall, 3), "checked": v["checked"], "matched": v["matched"],
            "split_checked": len(split_checks),
            "unverifiable": v["unverifiable"], "verify_s": v["seconds"], "wait_s": v["wait_s"],
            "cross_checks": v.get("cross_checks", 0),
            "checked_share": round(v["checked"] / rep["totals"]["remote"], 4)
            if rep["totals"]["remote"] else None,
            "remote": rep["totals"]["remote"], "split": rep["totals"]["split"],
            "command": "fgo " + " ".join(args)}


@pytest.mark.parametrize("name", list(PROJECTS))
def test_verification_cost(benchmark, lab, name: str) -> None:
    lab.require(name)
    ok, help_text = labmod.fgo_available("build", ["--verify-rate", "--verify-splits"])
    if not ok:
        pytest.skip(help_text)
    pairs = PROJECTS[name]
    rows = [r for r in lab.table("verification") if r.get("project") != name]

    def measure() -> list[dict]:
        out = []
        for i in range(pairs):  # alternate the two sides, the default one first in odd pairs
            sides = [("default", []), ("rate 0", ["--verify-rate", "0"])]
            for label, opts in (sides if i % 2 == 0 else sides[::-1]):
                out.append({"project": name, "pair": i, "run": label, **build(lab, name, opts)})
        ledger = lab.tmpdir("ledger") / "ledger.json"
        split = ["--split-large=0", "--shards", "2"]
        out.append({"project": name, "run": "split, cold ledger",
                    **build(lab, name, [*split, "--verify-splits", "first"], ledger)})
        out.append({"project": name, "run": "split, warm ledger",
                    **build(lab, name, [*split, "--verify-splits", "first"], ledger)})
        out.append({"project": name, "run": "split, off",
                    **build(lab, name, [*split, "--verify-splits", "off"])})
        return out

    runs = benchmark.pedantic(measure, rounds=1, iterations=1)
    by_pair = {}
    for r in runs:
        if "pair" in r:
            by_pair.setdefault(r["pair"], {})[r["run"]] = r["wall_s"]
    ratios = [p["default"] / p["rate 0"] for p in by_pair.values()]
    split = {r["run"]: r for r in runs if "pair" not in r}
    summary = {"project": name, "run": "summary",
               "default_over_rate0_median": round(statistics.median(ratios), 3),
               "ratios": [round(x, 3) for x in ratios],
               "split_cold_over_off": round(split["split, cold ledger"]["wall_s"]
                                            / split["split, off"]["wall_s"], 3),
               "split_warm_over_off": round(split["split, warm ledger"]["wall_s"]
                                            / split["split, off"]["wall_s"], 3)}
    rows += [*runs, summary]
    lab.save("verification", rows, what="measured: fgo build -a wall with and without the default "
                                         "verification; splits with a cold and a warm ledger")
    benchmark.extra_info.update({k: v for k, v in summary.items() if not isinstance(v, list)})
    # the warm ledger re-checks a sample of its splits (a key proves what matched once), not all
    warm = split["split, warm ledger"]
    assert warm["split_checked"] <= 0.1 * warm["split"], warm
    # every default build checks its share of its remote compiles, whatever the head's load
    assert all(r["checked_share"] >= 0.03 for r in runs if r.get("run") == "default"), runs
    assert split["split, cold ledger"]["split_checked"] > 0
