"""Item 2: scheduling simulation on measured action durations (simulated).

Input: the action graph of the cold build at the lowest GOMAXPROCS of the run
(1 in the full run: no parallelism between actions; each compile with -c=1),
reduced to its work actions (`actiongraph.work_graph`), with two duration
sources (recorded wall time, and CPU time; see experiments/split_sweep.py).
Policies (fgo.analysis.simulate): (a) DistGo-style levels with barriers, (b) DAG list
scheduling with critical-path priority, go build's own post-order priority for
reference, and (c) = (b) with the large packages on the critical path split
into K shards. The split packages' phase times F/B/D are *measured* with
`compile -bench` (the package's own compile command re-run, -c=1); in the
modelled (c) the shards take F + B/K each and the merge D, scaled to the
action's duration in the graph (`SplitSpec`), K = the best of {1, 2, 4, 8, 16}
<= k. For the projects of split_sweep.MEASURED_SHARDS (etcd; gin in --quick), (c)
measured uses the CPU times of the patched compiler's real shard processes
(single-threaded: their time alone), K from the measured counts only.
`python -m experiments.resim` re-runs this from the stored results without
building.
"""

from __future__ import annotations

import pytest

from experiments import split_sweep
from experiments.lab import CORPUS, QUICK_CORPUS, SIM_KS
from fgo.analysis import actiongraph as ag
@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.quick] if n in QUICK_CORPUS else [])
                                  for n in CORPUS])
def test_simulation(benchmark, lab, name):
    if name not in lab.projects():
        pytest.skip("not in this run's corpus")
    procs = lab.sim_procs()
    build = lab.cold(name, procs)
    g = ag.work_graph(build.graph())
    wall = split_sweep.durations(g, "wall")
    specs = split_sweep.choose_splits(g, lambda pkgs: lab.phases_many(name, pkgs), wall,
                                      max_n=split_sweep.QUICK_MAX_SPLIT if lab.quick else split_sweep.MAX_SPLIT)
    walls = {pkg: lab.phases_cache[(name, pkg)]["wall_s"] for pkg in specs}
    shard_ks = (split_sweep.QUICK_MEASURED_SHARDS if lab.quick else split_sweep.MEASURED_SHARDS).get(name, ())
    shards = split_sweep.measure_shards(specs, shard_ks, lambda pkg, k: lab.shard_times(name, pkg, k)) if shard_ks else {}
    measured = split_sweep.measured_specs(specs, shards)
    tag = name.replace("/", "_")
    for source in split_sweep.SOURCES:
        dur = split_sweep.durations(g, source)
        if source == "wall":
            rows = benchmark.pedantic(split_sweep.best_k_sweep, args=(g, SIM_KS, specs, dur), rounds=1, iterations=1)
        else:
            rows = split_sweep.best_k_sweep(g, SIM_KS, specs, dur)
        if measured:
            split_sweep.add_measured(rows, g, SIM_KS, measured, dur, shard_ks)
        meta = split_sweep.simulation_meta(name, source, g, dur, build.row(),
                                           split_sweep.spec_rows(g, specs, dur, walls, shards), shard_ks if measured else ())
        lab.save(f"simulate_{tag}" + ("" if source == "wall" else f"_{source}"), rows, **meta)
        one = rows[0]
        assert one["k"] == 1 and abs(one["cp_list"] - one["work"]) < 1e-3 * max(1.0, one["work"])
        for r in rows:
            for pol in ("levels", "cp_list", "go_list"):
                assert r[pol] >= r["lower_bound"] - 1e-3
            assert r["split_cp_list"] >= r["lower_bound_split"] - 1e-3
            assert r["split_cp_list"] <= r["cp_list"] + 1e-3  # K=1 is always a choice
            if measured:
                assert r["measured_lower_bound_split"] - 1e-3 <= r["measured_cp_list"] <= r["cp_list"] + 1e-3
    if shard_ks:  # every measured split package has a time for each shard at each K
        assert measured, f"no split package could be measured: {shards}"
        assert all(len(t) == k for sh in shards.values() if isinstance(sh, dict) for k, t in sh.items())
    benchmark.extra_info.update(project=name, splits=len(specs), measured_splits=len(measured))
