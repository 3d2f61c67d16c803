"""Item 4: intra-package split of large compiles.

For cmd/compile/internal/ssa and the largest package of etcd (gin's own
package in --quick), all from the package's real compile command (taken from
the cold build's action graph, WORK dir kept):
- measured: phase times from `compile -bench` (frontend F, backend B,
  dumpobj D; -c=1), stock `compile -c=1` and `-c=2` wall times;
- measured: `fgo split-compile -k 2 --json` (the shard and the leader at once
  on this 2-core machine = two local workers), its wall time and whether the
  archive equals the stock one;
- measured: for K = 2 (and the K item 2 measured for the same package: 8 for
  etcd's; ssa's frontend alone takes ~14 s, so each K costs ~K times that),
  the CPU time of every shard process
  and of the leader (patched compiler, -c=1, GOMAXPROCS=1: single-threaded, so
  CPU time is its time alone; run two at a time on the two cores);
- simulated: the K-machine wall time from those times,
  max(slowest shard + merge, leader), next to the bound F + D + B/K.
The measured split parts are skipped (reason printed) while the patched
compiler / `fgo split-compile` are not available.
"""

from __future__ import annotations

import json

import pytest

from experiments import lab as labmod
from experiments.lab import CORPUS

KS = (2, 3, 4, 6, 8, 12, 16)
MEASURED_SHARDS = (2,)  # and those item 2 measured already (free); each K costs ~K frontends
QUICK_MEASURED_SHARDS = (2,)


def largest_package(lab, name: str, prefix: str) -> str:
    g = lab.cold(name, lab.sim_procs()).graph()
    rows = [(g.nodes[n]["duration"], g.nodes[n]["package"]) for n in g
            if g.nodes[n].get("mode") == "build" and str(g.nodes[n].get("package")).startswith(prefix)]
    return max(rows)[1]


TARGETS = [
    pytest.param("cmd/compile", "cmd/compile/internal/ssa", id="ssa"),
    pytest.param("etcd", "go.etcd.io/etcd/", id="etcd-largest"),
    pytest.param("gin", "github.com/gin-gonic/gin", id="gin-largest", marks=[pytest.mark.quick]),
]


def split_compile_k2(lab, build, name, pkg):
    """`fgo split-compile -k 2 --json PROJECT PKG` in the project's env, deps from the cold cache."""
    p = CORPUS[name]
    args = ["split-compile", "-k", "2", "--json", str(p.source_dir()), pkg]
    env = p.env(GOCACHE=str(build.cache_dir)) if build.cache_dir else p.env()
    _wall, proc = labmod.run_fgo(args, env, cwd=p.source_dir())
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"fgo {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-2000:]}") from None
    ent = next(e for e in doc.get("packages", []) if e.get("package") == pkg)
    return ent, "fgo " + " ".join(args)


@pytest.mark.parametrize("name,target", TARGETS)
def test_split(benchmark, lab, name, target, capsys):
    if name not in lab.projects():
        pytest.skip("not in this run's corpus")
    if lab.quick != (name == "gin"):
        pytest.skip("gin's package stands in for the big ones only in --quick")
    pkg = target if not target.endswith("/") else largest_package(lab, name, target)
    if pkg.endswith("/"):
        pkg = pkg.rstrip("/")
    build = lab.cold(name, lab.sim_procs())
    pgo = any(a.startswith("-pgoprofile=") for a in lab.compile_cmd(build, pkg))
    # All of item 4 without PGO: the split compiler refuses -pgoprofile, so the stock runs drop it too.
    ph = lab.phases(name, pkg)
    c2_wall, c2_ph = benchmark.pedantic(lab.rerun_compile, args=(build, pkg, 2),
                                        kwargs={"gomaxprocs": 2, "no_pgo": True}, rounds=1, iterations=1)
    f, b, d = ph["frontend"] + ph.get("unaccounted", 0.0), ph["backend"], ph["dumpobj"]
    row = {"project": name, "package": pkg, "stock_c1_wall_s": round(ph["wall_s"], 3),
           "stock_c2_wall_s": round(c2_wall, 3), "F_s": round(f, 3), "B_s": round(b, 3), "D_s": round(d, 3),
           "bench_total_s": round(ph["total"], 3), "c2_backend_s": round(c2_ph.get("backend", 0.0), 3),
           "compile_command": " ".join(lab.compile_cmd(build, pkg)[:1] + ["..."]),
           "pgo_dropped": pgo}
    sims = [{"package": pkg, "k": k, "bound_s": round(f + d + b / k, 3)} for k in KS]
    ok, help_text = labmod.fgo_available("split-compile", ["--json", "--shards"])
    if ok:
        try:
            ent, cmd = split_compile_k2(lab, build, name, pkg)
        except AssertionError as exc:
            if not pgo:
                raise
            ent, cmd = {"error": str(exc)[-300:]}, "fgo split-compile -k 2 --json ..."
        row.update(split2_wall_s=ent.get("leader_s"), split2_stock_s=ent.get("stock_s"),
                   split2_identical=ent.get("identical"), split2_error=ent.get("error"),
                   split2_shard_s=(ent.get("shard_s") or [None])[0], split2_merge_s=ent.get("merge_s"),
                   split_command=cmd)
        if pgo and row.get("split2_error"):
            row["split2_error"] = "(built with PGO) " + str(row["split2_error"])
        done = {k for (n, p, k) in lab.shards_cache if (n, p) == (name, pkg)}
        for k in sorted(set(QUICK_MEASURED_SHARDS if lab.quick else MEASURED_SHARDS) | done):
            alone = lab.shard_times(name, pkg, k)
            for s in sims:
                if s["k"] == k:
                    s.update(shards_measured_s=alone["k_machine_s"], slowest_shard_s=max(alone["shards_s"]),
                             leader_alone_s=alone["leader_s"], merge_s=alone["merge_s"])
    else:
        row["split_skipped"] = help_text
        with capsys.disabled():
            print(f"\n[item 4] measured split skipped: {help_text}")
    rows = lab.table("split")
    rows.append(row)
    simrows = lab.table("split_sim")
    simrows.extend(sims)
    lab.save("split", rows, what="measured: compile phases and stock -c=1/-c=2 wall; split if available")
    lab.save("split_sim", simrows, what="simulated: k-machine wall of one split package")
    benchmark.extra_info.update({k: v for k, v in row.items() if isinstance(v, (int, float, str))})
    assert b > 0 and f > 0
    if ok and not pgo:
        assert not row.get("split2_error"), row.get("split2_error")
        assert row.get("split2_identical") is True, f"{name} {pkg}: split archive differs from stock"
