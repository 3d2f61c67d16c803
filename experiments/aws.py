"""Giant generated packages: aws-sdk-go's largest services, measured (a standalone module).

    python -m experiments.aws stock  [--rounds 3] [--variants c1,c2,c1_gomaxprocs1] [--out F] [PKG...]
                                                               -> results/aws_stock.json
    python -m experiments.aws split  [--rounds 3] [--ks 2,3,4,6,8] PKG...
                                                               -> results/aws_split.json
    python -m experiments.aws quick  [--rounds 3]             -> results/aws_quick.json
    python -m experiments.aws stdcmd [--rounds 1] [--cs 1] [-p N] -> results/aws_stdcmd.json
    python -m experiments.aws deps                            -> results/aws_deps.json
    python -m experiments.aws graph [--scope all|quick] [-p N] -> results/aws_graph_SCOPE.json,
                                                                  results/aws_SCOPE/*.json.gz
    python -m experiments.aws check                           -> results/aws_check.json
    python -m experiments.aws model                           -> results/aws_model.json

PKG is a service name (ec2) or an import path. Sources: Debian's golang-github-aws-aws-sdk-go-dev
in GOPATH mode (GO111MODULE=off GOPATH=/usr/share/gocode), the pinned go (go1.27.3). Every
command writes the exact command line, the date, the machine and /proc/loadavg before and after
every run into its JSON; timings are of a shared 2-core machine, so only ratios within one
round are meant to be compared.

stock: each package's compile command is recovered from `go build -n` (fgo.compiler.harness
  .compile_command) and run with the stock compiler, variants rotated within each round
  (c1, c2, c1 GOMAXPROCS=1, c1, c2, ...): -c=1, -c=2 (GOMAXPROCS=2, i.e. go build's default on
  this machine), and -c=1 with GOMAXPROCS=1 (how the cost model collects). Each run: wall, CPU
  (wait4), max RSS, -bench phases F, B, D, the archive's sha256 (all must be equal).
split: fgo.compiler.harness.split_package(alone=True) per K, rounds rotating over K: every K's run
  has its own stock -c=1 and -c=2 compile (the pairs), the K processes side by side on this
  machine, then each shard alone and the leader alone (what K idle workers would see), the
  leader's merge time, each shard's result bytes, sha256 of every archive against stock.
quick: the proposed CI subset (QUICK): its `go list -deps` size and a cold `go build -a`
  (fresh GOCACHE each run), alternating go's default (-c from the pool) with
  -gcflags=all=-c=1; each run's action graph is kept under results/aws_quick/.
stdcmd: `go build -a std cmd` (-p N, default the core count) with -gcflags=all=-c=C -bench
  for C in --cs: every compile's F, B, D at -c=1 and the action graph (its `cpu` durations
  stand for uncontended -c=1 compiles): the input of `check`.
graph: a cold `go build -a -p N -gcflags=all=-c=1 -bench=FILE` of service/... (or the quick
  subset) with -debug-actiongraph: the action graph (compact: each command its program's name),
  every compile's F, B, D, source and archive bytes, under results/aws_SCOPE/ (gzip): the input
  of the DAS-5 simulation at scale (experiments/test_11_aws.py).
deps: `go list -deps` sizes of the quick subset and of all of service/... .
check (experiments/aws_analysis.py): the -c model of fgo.analysis.simulate (token pool +
  Amdahl + processor sharing) on the std cmd graph against the published figures (Go 1.9's
  concurrent backend, Go 1.26's pool), on the quick subset's -c=1 graph against its measured
  default build, and what fgo can gain over go build with -c on each graph.
model: the cost model (fgo.planner.costmodel) against the measured stock compiles of `stock`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GOCODE = Path("/usr/share/gocode")
AWS = "github.com/aws/aws-sdk-go"
PROJECT = GOCODE / "src" / AWS
# the largest services by source bytes (ec2 6.9 MB, sagemaker 3.9, iot 2.5, glue 2.2, ssm 2.2)
LARGEST = ("ec2", "sagemaker", "iot", "glue", "ssm")
# the --quick subset proposed for CI: the five largest services and their dependencies
QUICK = tuple(f"{AWS}/service/{s}" for s in LARGEST)
REFERENCE_PKGS = ("cmd/compile/internal/ssa",)  # measured with the aws packages, in GOROOT
PUBLISHED = {
    # Go commit f4e5bd48 (Go 1.9's concurrent backend), `go build -a std cmd`, seconds at
    # -c=1 and at -c=C: (cores, -p, C, t_c1, t_cC)
    "laptop_p1": (8, 1, 4, 40.4, 27.3),
    "laptop_p8": (8, 8, 4, 16.7, 13.2),
    "arm64_p1": (96, 1, 16, 173.0, 106.0),
    "arm64_p32": (96, 32, 16, 62.2, 30.9),
}


def pkg_path(name: str) -> str:
    """An aws-sdk-go service name (ec2) as its import path; anything else as it is."""
    if "/" in name or not (PROJECT / "service" / name).is_dir():
        return name
    return f"{AWS}/service/{name}"


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "mem_gb": round(int(mem) / 2**20, 1)}


def meta(argv: Sequence[str]) -> dict[str, Any]:
    from fgo import toolchain
    return {"command": "python -m experiments.aws " + " ".join(shlex.quote(a) for a in argv),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "go_version": toolchain.go_version(), "loadavg": loadavg()}


def gopath_env(gocache: Path) -> None:
    """Make every go this process runs (fgo.toolchain.go_env inherits ours) use GOPATH mode
    over Debian's sources and a private GOCACHE."""
    for k in list(os.environ):
        if k.startswith("GO") and k not in ("GOROOT",):
            del os.environ[k]
    os.environ.update(GO111MODULE="off", GOPATH=str(GOCODE), GOCACHE=str(gocache), GOFLAGS="")


SUBSET_MAIN = "fgo-aws-subset"  # the import path of the program subset_program writes


def subset_program(root: Path) -> Path:
    """A GOPATH entry at ROOT holding SUBSET_MAIN: a main package that imports the QUICK
    subset, so that building it builds the subset and yields one binary (what experiment 8's
    identity check compares). Returns ROOT, to go in front of Debian's GOPATH."""
    src = root / "src" / SUBSET_MAIN
    src.mkdir(parents=True, exist_ok=True)
    imports = "".join(f'\t_ "{pkg}"\n' for pkg in QUICK)
    (src / "main.go").write_text(
        "// Command fgo-aws-subset links aws-sdk-go's five largest services: a wide build\n"
        "// of giant generated packages with one output.\n"
        f"package main\n\nimport (\n{imports})\n\nfunc main() {{}}\n")
    return root


def write(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / name
    p.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print("->", p, file=sys.stderr)
    return p


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def timed(argv: Sequence[str], cwd: Path | str | None = None,
          env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ARGV; wall, CPU (user + sys of it and its waited-for children) and max RSS."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errtext = err.read().decode(errors="replace")
    return {"rc": proc.returncode, "wall_s": round(wall, 3),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "maxrss_mb": round(ru.ru_maxrss / 1024),
            "stderr": errtext[-400:] if proc.returncode else ""}


# ------------------------------------------------------------------------------- stock

def prepare(pkg: str, work: Path) -> tuple[list[str], Path]:
    """PKG's dependencies built (plain go, our GOCACHE) and its compile command (no -c)."""
    from fgo import toolchain
    from fgo.compiler import harness
    if pkg.startswith(AWS):
        toolchain.run_go(["build", pkg], cwd=PROJECT, timeout=3600)
        return harness.compile_command(PROJECT, pkg, work)
    saved = os.environ.pop("GO111MODULE", None)  # GOROOT's own packages: module mode
    try:
        toolchain.run_go(["build", pkg], cwd=toolchain.goroot() / "src", timeout=3600)
        return harness.compile_command(toolchain.goroot() / "src", pkg, work)
    finally:
        if saved is not None:
            os.environ["GO111MODULE"] = saved


def stock_argv(argv: Sequence[str], c: int, out: Path, bench: Path | None) -> list[str]:
    args = [argv[0], f"-c={c}"] + ([f"-bench={bench}"] if bench else []) + list(argv[1:])
    i = args.index("-o")
    args[i + 1] = str(out)
    return args


STOCK_VARIANTS = {"c1": (1, None), "c2": (2, None), "c1_gomaxprocs1": (1, "1")}


def run_stock(pkg: str, argv: list[str], cwd: Path, variant: str, outdir: Path) -> dict[str, Any]:
    from fgo.analysis import bench
    c, gmp = STOCK_VARIANTS[variant]
    out, bf = outdir / f"{variant}.a", outdir / f"{variant}.bench"
    bf.unlink(missing_ok=True)
    env = dict(os.environ)
    if gmp:
        env["GOMAXPROCS"] = gmp
    before = loadavg()
    r = timed(stock_argv(argv, c, out, bf), cwd, env)
    ph = bench.last_run(bf.read_text()) if bf.exists() else {}
    f, b, d = bench.fbd(ph) if ph else (None, None, None)
    r.update(package=pkg, variant=variant, c=c, gomaxprocs=int(gmp) if gmp else os.cpu_count(),
             F=f, B=b, D=d, bench_total=ph.get("total"), loadavg_before=before,
             loadavg_after=loadavg(), sha256=sha256(out) if r["rc"] == 0 else None,
             archive_bytes=out.stat().st_size if r["rc"] == 0 else None)
    return r


def cmd_stock(args: argparse.Namespace, argv: Sequence[str]) -> int:
    pkgs = [pkg_path(p) for p in (args.pkgs or LARGEST)] + (
        [] if args.pkgs else list(REFERENCE_PKGS))
    tmp = Path(tempfile.mkdtemp(prefix="fgo-aws-stock-"))
    gopath_env(tmp / "gocache")
    data: dict[str, Any] = {"meta": meta(argv), "runs": [], "summary": {}}
    try:
        for pkg in pkgs:
            d = tmp / hashlib.sha1(pkg.encode()).hexdigest()[:8]
            a, cwd = prepare(pkg, d / "work")
            d.mkdir(parents=True, exist_ok=True)
            variants = args.variants.split(",")
            for rnd in range(args.rounds):
                for v in variants[rnd % len(variants):] + variants[:rnd % len(variants)]:
                    r = run_stock(pkg, a, cwd, v, d)
                    r["round"] = rnd
                    data["runs"].append(r)
                    print(f"{pkg} r{rnd} {v}: wall {r['wall_s']} cpu {r['cpu_s']} F/B/D "
                          f"{r['F'] and round(r['F'], 2)}/{r['B'] and round(r['B'], 2)}/"
                          f"{r['D'] and round(r['D'], 2)} rss {r['maxrss_mb']}MB "
                          f"load {r['loadavg_before']}", file=sys.stderr)
            data["summary"][pkg] = stock_summary([r for r in data["runs"] if r["package"] == pkg])
            write(args.out, data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["meta"]["loadavg_end"] = loadavg()
    write(args.out, data)
    return 0


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def stock_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per variant min/median wall, CPU, F, B, D; the paired ratios c2/c1 (and GOMAXPROCS=1/c1)
    within each round; the backend speedup B(c1)/B(c2); whether every archive is identical."""
    ok = [r for r in runs if r["rc"] == 0]
    out: dict[str, Any] = {"identical": len({r["sha256"] for r in ok}) == 1 and len(ok) == len(runs)}
    for v in STOCK_VARIANTS:
        rs = [r for r in ok if r["variant"] == v]
        if not rs:
            continue
        out[v] = {k: {"min": round(min(r[k] for r in rs), 3),
                      "median": round(_median([r[k] for r in rs]), 3)}
                  for k in ("wall_s", "cpu_s", "F", "B", "D", "maxrss_mb") if rs[0][k] is not None}
    rounds = sorted({r["round"] for r in ok})
    for v in ("c2", "c1_gomaxprocs1"):
        ratios, bratio = [], []
        for rnd in rounds:
            a = [r for r in ok if r["round"] == rnd and r["variant"] == "c1"]
            b = [r for r in ok if r["round"] == rnd and r["variant"] == v]
            if a and b:
                ratios.append(b[0]["wall_s"] / a[0]["wall_s"])
                if a[0]["B"] and b[0]["B"]:
                    bratio.append(a[0]["B"] / b[0]["B"])
        if ratios:
            out[f"wall_{v}_over_c1"] = [round(x, 3) for x in ratios]
            out[f"backend_c1_over_{v}"] = [round(x, 3) for x in bratio]
    if out.get("backend_c1_over_c2"):
        from fgo.analysis import simulate as sim
        s2 = _median(out["backend_c1_over_c2"])
        out["backend_speedup_c2"] = round(s2, 3)
        out["parallel_fraction"] = round(sim.parallel_fraction(s2, 2), 3)
    return out


# ------------------------------------------------------------------------------- split

def cmd_split(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from fgo.compiler import harness
    from fgo.compiler import patched as compiler_patch
    pkgs = [pkg_path(p) for p in args.pkgs]
    ks = [int(k) for k in args.ks.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="fgo-aws-split-"))
    gopath_env(tmp / "gocache")
    compiler_patch.ensure_compiler()
    path = RESULTS / "aws_split.json"
    data = json.loads(path.read_text()) if path.exists() else {"campaigns": []}
    camp: dict[str, Any] = {"meta": meta(argv), "ks": ks, "runs": [], "summary": {}}
    data["campaigns"].append(camp)
    try:
        for pkg in pkgs:
            d = tmp / hashlib.sha1(pkg.encode()).hexdigest()[:8]
            a, cwd = prepare(pkg, d / "work")
            for rnd in range(args.rounds):
                order = ks[rnd % len(ks):] + ks[:rnd % len(ks)]
                for k in order:
                    out = d / f"k{k}"
                    before = loadavg()
                    t0 = time.perf_counter()
                    res = harness.split_package(a, cwd, pkg, k, out, alone=True,
                                                timeout=args.timeout)
                    row = dict(res.__dict__)
                    row.update(round=rnd, loadavg_before=before, loadavg_after=loadavg(),
                               campaign_s=round(time.perf_counter() - t0, 1),
                               result_bytes=[(out / f"shard{i}.res").stat().st_size
                                             if (out / f"shard{i}.res").exists() else None
                                             for i in range(1, k)],
                               stock_bytes=(out / "stock.a").stat().st_size
                               if (out / "stock.a").exists() else None)
                    row["alone_identical"] = res.alone_leader_s is not None
                    camp["runs"].append(row)
                    print(harness.format_result(res), "load", before, file=sys.stderr)
                    shutil.rmtree(out, ignore_errors=True)
                    write("aws_split.json", data)
            camp["summary"][pkg] = split_summary([r for r in camp["runs"] if r["package"] == pkg])
            write("aws_split.json", data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    camp["meta"]["loadavg_end"] = loadavg()
    write("aws_split.json", data)
    return 0


def alone_estimate(r: Mapping[str, Any]) -> float | None:
    """The split's wall on K idle workers from the processes timed alone: the leader alone
    (its frontend, its share, the merge of results already there, D) plus however much
    longer the slowest other shard runs than the leader's part before the merge (results
    taken as arriving instantly)."""
    lead, shards = r.get("alone_leader_s"), r.get("alone_shard_s") or []
    if lead is None:
        return None
    tail = (r.get("merge_s") or 0.0) + (r.get("bench_dumpobj_s") or 0.0)
    return round(lead + max(0.0, max(shards, default=0.0) - (lead - tail)), 3)


def split_summary(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per K: medians of stock -c=1, stock -c=2, the split side by side here, the slowest
    shard alone, the leader alone, the K-worker estimate; the paired ratios
    estimate / stock -c=2 per round; bytes; identity."""
    out: dict[str, Any] = {}
    for k in sorted({r["shards"] for r in runs}):
        rs = [r for r in runs if r["shards"] == k and not r.get("error")]
        if not rs:
            out[str(k)] = {"error": [r.get("error") for r in runs if r["shards"] == k][:1]}
            continue
        est = [alone_estimate(r) for r in rs]

        def med(key: str) -> float | None:
            xs = [r[key] for r in rs if r.get(key) is not None]
            return round(_median(xs), 3) if xs else None

        out[str(k)] = {
            "n": len(rs),
            "identical": all(r["identical"] and r["alone_identical"] for r in rs),
            "stock_c1_s": med("stock_s"), "stock_c2_s": med("stock_c2_s"),
            "side_by_side_here_s": med("leader_s"),
            "slowest_shard_alone_s": round(_median([max(r["alone_shard_s"] or [0.0]) for r in rs]), 3),
            "leader_alone_s": med("alone_leader_s"),
            "k_workers_estimate_s": round(_median([e for e in est if e is not None]), 3),
            "F": med("bench_frontend_s"), "B": med("bench_backend_s"), "D": med("bench_dumpobj_s"),
            "merge_s": med("merge_s"), "walk_s": med("walk_s"),
            "leader_own_backend_s": med("leader_backend_s"),
            "bound_F_B/K_D": med("bound_s"),
            "result_bytes_per_shard": round(_median([b for r in rs for b in r["result_bytes"] if b])),
            "stock_bytes": med("stock_bytes"),
            "estimate_over_stock_c1": [round(e / r["stock_s"], 3) for e, r in zip(est, rs) if e],
            "estimate_over_stock_c2": [round(e / r["stock_c2_s"], 3) for e, r in zip(est, rs)
                                       if e and r.get("stock_c2_s")],
        }
    return out


# ------------------------------------------------------------------------------- quick

def go_build_timed(args: Sequence[str], graph: Path, gocache: Path, cwd: Path) -> dict[str, Any]:
    from fgo import toolchain
    env = toolchain.go_env(GOCACHE=str(gocache))
    before = loadavg()
    r = timed([str(toolchain.go_binary()), "build", f"-debug-actiongraph={graph}", *args],
              cwd, env)
    r.update(loadavg_before=before, loadavg_after=loadavg())
    return r


def cmd_quick(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from fgo import toolchain
    from fgo.analysis import actiongraph as ag
    tmp = Path(tempfile.mkdtemp(prefix="fgo-aws-quick-"))
    gopath_env(tmp / "gocache0")
    raw = RESULTS / "aws_quick"
    raw.mkdir(parents=True, exist_ok=True)
    deps = toolchain.run_go(["list", "-deps", *QUICK], cwd=PROJECT).stdout.split()
    nonstd = [p for p in deps if "." in p.split("/")[0]]
    data: dict[str, Any] = {"meta": meta(argv), "packages": list(QUICK),
                            "deps": len(deps), "deps_non_std": len(nonstd), "runs": []}
    variants = {"default": [], "c1": ["-gcflags=all=-c=1"]}
    try:
        for rnd in range(args.rounds):
            names = list(variants) if rnd % 2 == 0 else list(variants)[::-1]
            for v in names:
                gc = tmp / f"gocache-{rnd}-{v}"
                graph = raw / f"quick-r{rnd}-{v}.actiongraph.json"
                r = go_build_timed(["-a", *variants[v], *QUICK], graph, gc, PROJECT)
                s = ag.summarize(ag.work_graph(ag.load(graph)))
                r.update(round=rnd, variant=v, compiles=s["compiles"],
                         span_s=round(s["span_s"], 3), work_s=round(s["work_s"], 3))
                data["runs"].append(r)
                print(f"quick r{rnd} {v}: wall {r['wall_s']} cpu {r['cpu_s']} load "
                      f"{r['loadavg_before']}", file=sys.stderr)
                shutil.rmtree(gc, ignore_errors=True)
                write("aws_quick.json", data)
        w = {v: [r["wall_s"] for r in data["runs"] if r["variant"] == v] for v in variants}
        data["summary"] = {
            "wall_median_s": {v: round(_median(x), 2) for v, x in w.items()},
            "default_over_c1": [round(a / b, 3) for a, b in zip(w["default"], w["c1"])]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["meta"]["loadavg_end"] = loadavg()
    write("aws_quick.json", data)
    return 0


def cmd_deps(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """`go list -deps` sizes: the quick subset and the whole service/... (the full run)."""
    from fgo import toolchain
    gopath_env(Path(tempfile.gettempdir()) / "fgo-aws-deps-gocache")
    out: dict[str, Any] = {"meta": meta(argv)}
    for name, pats in (("quick", list(QUICK)), ("service_all", [f"{AWS}/service/..."])):
        listed = toolchain.run_go(["list", *pats], cwd=PROJECT).stdout.split()
        deps = toolchain.run_go(["list", "-deps", *pats], cwd=PROJECT).stdout.split()
        out[name] = {"patterns": pats, "packages": len(listed), "with_deps": len(deps),
                     "non_std_with_deps": len([p for p in deps if "." in p.split("/")[0]])}
    shutil.rmtree(Path(tempfile.gettempdir()) / "fgo-aws-deps-gocache", ignore_errors=True)
    write("aws_deps.json", out)
    return 0


# ------------------------------------------------------------------------------- std cmd

def cmd_stdcmd(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """go build -a -p P std cmd with -gcflags=all=-c=C -bench=FILE, for C in --cs (alternating
    order per round): every compile's F, B, D and the action graph (whose `cpu` durations
    stand for uncontended -c=1 compiles)."""
    from fgo import toolchain
    from fgo.analysis import bench
    tmp = Path(tempfile.mkdtemp(prefix="fgo-aws-stdcmd-"))
    raw = RESULTS / "aws_stdcmd"
    raw.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"meta": meta(argv), "runs": []}
    src = toolchain.goroot() / "src"
    try:
        cs = [int(c) for c in args.cs.split(",")]
        for rnd in range(args.rounds):
            for c in (cs if rnd % 2 == 0 else cs[::-1]):
                bf = raw / f"stdcmd-r{rnd}-c{c}.bench"
                bf.unlink(missing_ok=True)
                graph = raw / f"stdcmd-r{rnd}-c{c}.actiongraph.json"
                env = toolchain.go_env(GOCACHE=str(tmp / f"gc{rnd}{c}"), GOFLAGS="",
                                       GO111MODULE="")
                before = loadavg()
                r = timed([str(toolchain.go_binary()), "build", "-a", "-p", str(args.p),
                           f"-debug-actiongraph={graph}", f"-gcflags=all=-c={c} -bench={bf}",
                           "std", "cmd"], src, env)
                r.update(round=rnd, c=c, p=args.p, loadavg_before=before, loadavg_after=loadavg(),
                         bench=str(bf.relative_to(HERE)), graph=str(graph.relative_to(HERE)),
                         compiles=len(bench.by_package(bf.read_text())) if bf.exists() else 0)
                data["runs"].append(r)
                print(f"stdcmd r{rnd} c={c}: wall {r['wall_s']} cpu {r['cpu_s']} load {before}",
                      file=sys.stderr)
                shutil.rmtree(tmp / f"gc{rnd}{c}", ignore_errors=True)
                write("aws_stdcmd.json", data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["meta"]["loadavg_end"] = loadavg()
    write("aws_stdcmd.json", data)
    return 0


# ------------------------------------------------------------------------------- graph

SCOPES = {"all": (f"{AWS}/service/...",), "quick": QUICK}
KEEP = ("ID", "Mode", "Package", "Deps", "Priority", "NeedBuild", "CmdReal", "CmdUser",
        "CmdSys", "TimeReady", "TimeStart", "TimeDone", "Failed", "BuildID")


def compact_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """go's actionJSON records with what the analysis reads (fgo.analysis.actiongraph): each
    command shortened to its program's base name (the compile lines of service/... list
    thousands of files), go's work directories and targets dropped."""
    out = []
    for r in records:
        c = {k: r[k] for k in KEEP if k in r}
        if r.get("Cmd"):
            c["Cmd"] = [Path(cmd.split(" ", 1)[0].strip('"')).name for cmd in r["Cmd"]]
        out.append(c)
    return out


def package_sizes(patterns: Sequence[str], flags: Sequence[str]) -> dict[str, dict[str, int]]:
    """{import path: source bytes (its Go files), archive bytes (go's export file, from the
    cache the build left: FLAGS must be the build's, or go compiles again)}."""
    from fgo import toolchain
    fmt = "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{.Export}}"
    out = toolchain.run_go(["list", "-deps", "-export", *flags, "-f", fmt, *patterns],
                           cwd=PROJECT, timeout=3600).stdout
    sizes: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        pkg, d, files, export = (line.split("\t") + ["", "", ""])[:4]
        src = sum((Path(d) / f).stat().st_size for f in files.split(",") if f)
        sizes[pkg] = {"source_bytes": src,
                      "archive_bytes": Path(export).stat().st_size if export else 0}
    return sizes


def cmd_graph(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """A cold `go build -a -p P -gcflags=all=-c=1 -bench=FILE` of SCOPE (service/..., or the
    quick subset) with its action graph: every compile's -c=1 duration (its CPU time, steady
    under others' load) and F, B, D; kept compact under results/aws_<scope>/."""
    import gzip

    from fgo import toolchain
    from fgo.analysis import actiongraph as ag
    from fgo.analysis import bench
    patterns = SCOPES[args.scope]
    tmp = Path(tempfile.mkdtemp(prefix="fgo-aws-graph-"))
    gopath_env(tmp / "gocache")
    raw = RESULTS / f"aws_{args.scope}"
    raw.mkdir(parents=True, exist_ok=True)
    graph, bf = tmp / "actiongraph.json", tmp / "bench.txt"
    flags = [f"-gcflags=all=-c=1 -bench={bf}"]
    try:
        before = loadavg()
        r = timed([str(toolchain.go_binary()), "build", "-a", "-p", str(args.p),
                   f"-debug-actiongraph={graph}", *flags, *patterns], PROJECT,
                  toolchain.go_env())
        r.update(loadavg_before=before, loadavg_after=loadavg())
        if r["rc"] != 0:
            raise SystemExit(f"go build failed: {r['stderr']}")
        records = json.loads(graph.read_text())
        with gzip.open(raw / "actiongraph.json.gz", "wt") as f:
            json.dump(compact_records(records), f, separators=(",", ":"))
        phases = bench.summaries(bf.read_text())
        sizes = package_sizes(patterns, flags)
        pkgs = {p: {**sizes.get(p, {}),
                    **({k: round(phases[p][x], 4) for k, x in (("F", "frontend"), ("B", "backend"),
                                                               ("D", "dumpobj"))}
                       if p in phases else {})}
                for p in sorted(set(sizes) | set(phases))}
        with gzip.open(raw / "packages.json.gz", "wt") as f:
            json.dump(pkgs, f, separators=(",", ":"), sort_keys=True)
        g = ag.work_graph(ag.parse_records(records))
        s = ag.summarize(ag.parse_records(records))
        from fgo.analysis import graph as gr
        cpu = gr.node_weights(g, "cpu")
        data = {"meta": {**meta(argv), "loadavg_end": loadavg()}, "scope": args.scope,
                "patterns": list(patterns), "flags": [f"-gcflags=all=-c=1 -bench=FILE"],
                "p": args.p, "build": r, "compiles": s["compiles"], "actions": s["actions"],
                "work_actions": g.number_of_nodes(), "work_wall_s": round(s["work_s"], 2),
                "span_wall_s": round(s["span_s"], 2), "work_cpu_s": round(gr.work(g, cpu), 2),
                "span_cpu_s": round(gr.span(g, cpu), 2), "bench_packages": len(phases),
                "graph": str((raw / "actiongraph.json.gz").relative_to(HERE)),
                "packages": str((raw / "packages.json.gz").relative_to(HERE))}
        write(f"aws_graph_{args.scope}.json", data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m experiments.aws", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stock")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--variants", default=",".join(STOCK_VARIANTS))
    p.add_argument("--out", default="aws_stock.json")
    p.add_argument("pkgs", nargs="*")
    p = sub.add_parser("split")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ks", default="2,3,4,6,8")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("pkgs", nargs="+")
    p = sub.add_parser("quick")
    p.add_argument("--rounds", type=int, default=3)
    p = sub.add_parser("stdcmd")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--cs", default="1")
    p.add_argument("-p", type=int, default=os.cpu_count() or 1)
    p = sub.add_parser("graph")
    p.add_argument("--scope", choices=sorted(SCOPES), default="all")
    p.add_argument("-p", type=int, default=os.cpu_count() or 1)
    sub.add_parser("deps")
    sub.add_parser("check")
    sub.add_parser("model")
    a = ap.parse_args(argv)
    if a.cmd == "check":
        from experiments import aws_analysis
        return aws_analysis.cmd_check(argv)
    if a.cmd == "model":
        from experiments import aws_analysis
        return aws_analysis.cmd_model(argv)
    return {"stock": cmd_stock, "split": cmd_split, "quick": cmd_quick,
            "stdcmd": cmd_stdcmd, "deps": cmd_deps, "graph": cmd_graph}[a.cmd](a, argv)


if __name__ == "__main__":
    sys.exit(main())
