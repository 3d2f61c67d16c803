"""Item 1: cold and warm `go build` of the corpus, GOMAXPROCS 1 and 2 (measured).

Cold = `go build -a` with an empty temporary GOCACHE; warm = the same build
again on that cache. Each build writes -debug-actiongraph (shape: actions,
critical path, work, width) and -debug-trace (for Perfetto) under
results/raw/. Table: results/corpus_builds.{json,csv}.
"""

from __future__ import annotations

import pytest

from experiments.lab import CORPUS, PROCS, QUICK_CORPUS, QUICK_PROCS


def _cases():
    for name in CORPUS:
        for procs in PROCS:
            for kind in ("cold", "warm"):
                quick = name in QUICK_CORPUS and procs in QUICK_PROCS
                yield pytest.param(name, procs, kind, id=f"{name}-p{procs}-{kind}",
                                   marks=[pytest.mark.quick] if quick else [])


@pytest.mark.parametrize("name,procs,kind", list(_cases()))
def test_corpus_build(benchmark, lab, name, procs, kind):
    if name not in lab.projects() or procs not in lab.procs():
        pytest.skip("not in this run's corpus")
    fn = lab.cold if kind == "cold" else lab.warm
    res = benchmark.pedantic(fn, args=(name, procs), rounds=1, iterations=1)
    row = res.row()
    benchmark.extra_info.update({k: v for k, v in row.items() if k not in ("graph", "trace")})
    lab.save("corpus_builds", [b.row() for b in lab.builds.values()],
             what="measured: go build wall time and action-graph shape",
             corpus={n: {"target": p.target, "gopath_mode": p.gopath, "note": p.note}
                     for n, p in CORPUS.items()})
    s = res.summary
    assert s["work_actions"] > 0 and res.wall_s > 0
    if kind == "cold":
        assert s["cached"] == 0, "a cold -a build found cached actions"
        assert res.trace_path is not None and res.trace_path.stat().st_size > 0
    else:
        assert s["compiles"] == 0, "the warm build recompiled packages"
        assert res.wall_s < lab.cold(name, procs).wall_s
