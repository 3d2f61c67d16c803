"""Re-run item 2's simulations from stored results, without building anything.

    .venv/bin/python -m experiments.resim [--results DIR] [--shards SHARDS.json]
        [--shard-cost results/shard_cost.json [--series after|before]] [--project NAME ...]

Reads results/simulate_<project>.json (the input graph's path and the measured
F/B/D and measured shard times of the split packages), loads the raw action
graph, and writes the simulate_<project>[_cpu] files again, then re-renders
the report. SHARDS.json adds or replaces shard measurements for (c) measured:
{"package": {"K": [shard 0 .. K-1 seconds]}} (shard 0 = the leader less its
dumpobj; scaled to the action's duration like F/B/D). --shard-cost takes, for
the packages item 10 measured, both F/B/D and the shard times of the whole
patch series from that one run (results/shard_cost.json). --project limits the
re-simulation to those projects. The results say they were re-simulated, and
from which run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import lab, report, split_sweep
from fgo.analysis import actiongraph as ag
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=lab.HERE / "results")
    ap.add_argument("--shards", type=Path, help="measured shard times: {package: {K: [s, ...]}}")
    ap.add_argument("--shard-cost", type=Path, help="item 10's results: F/B/D and shard times per package")
    ap.add_argument("--series", default="after", help="with --shard-cost: the patch series whose shards to use")
    ap.add_argument("--project", action="append", help="re-simulate only this project (repeatable)")
    args = ap.parse_args(argv)
    extra = {}
    if args.shards:
        extra = {p: {int(k): v for k, v in ks.items()} for p, ks in json.loads(args.shards.read_text()).items()}
    cost_specs: dict = {}
    if args.shard_cost:
        cost_specs, cost_shards = split_sweep.from_shard_cost(json.loads(args.shard_cost.read_text())["rows"],
                                                                 args.series)
        extra = {**extra, **cost_shards}
    for f in sorted(args.results.glob("simulate_*.json")):
        doc = json.loads(f.read_text())
        m = doc["meta"]
        if m.get("durations", "wall") != "wall" or (args.project and m["project"] not in args.project):
            continue
        gp = Path(m["input_build"]["graph"])
        gp = gp if gp.is_absolute() else lab.REPO / gp
        if not gp.exists():
            print(f"{m['project']}: {gp} is gone; cannot re-simulate")
            continue
        g = ag.work_graph(ag.load(gp))
        specs = split_sweep.specs_from_rows(m.get("split_packages", []))
        specs.update({p: s for p, s in cost_specs.items() if p in specs})
        shards = {**split_sweep.shards_from_rows(m.get("split_packages", [])),
                  **{p: t for p, t in extra.items() if p in specs}}
        measured = split_sweep.measured_specs(specs, shards)
        # the shard counts measured for every measured package
        shard_ks = sorted(set.intersection(*(set(sp.shard_s or ()) for sp in measured.values()))) if measured else []
        walls = {r["package"]: r.get("compile_c1_wall_s", 0.0) for r in m.get("split_packages", [])}
        tag = m["project"].replace("/", "_")
        for source in split_sweep.SOURCES:
            dur = split_sweep.durations(g, source)
            rows = split_sweep.best_k_sweep(g, lab.SIM_KS, specs, dur)
            if shard_ks:
                split_sweep.add_measured(rows, g, lab.SIM_KS, measured, dur, shard_ks)
            meta = split_sweep.simulation_meta(m["project"], source, g, dur, m["input_build"],
                                               split_sweep.spec_rows(g, specs, dur, walls, shards),
                                               shard_ks)
            full = {**lab.machine_meta(command="python -m experiments.resim"
                                       + (f" --shards {args.shards}" if args.shards else "")
                                       + (f" --shard-cost {args.shard_cost} --series {args.series}" if args.shard_cost else "")
                                       + "".join(f" --project {p}" for p in args.project or ()),
                                       quick=m.get("quick", False)),
                    "resimulated_from": {"command": m.get("command"), "date": m.get("date")},
                    **meta}
            out = lab.save_results(args.results, f"simulate_{tag}" + ("" if source == "wall" else f"_{source}"),
                                   rows, full)
            print(out)
    quick = args.results.name == "quick"
    print(report.write_report(args.results, args.results / "REPORT.md" if quick else lab.HERE / "REPORT.md",
                              quick=quick))


if __name__ == "__main__":
    main()
