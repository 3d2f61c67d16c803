"""The experiments' I/O: the corpus, running builds, re-running compiles, storing results.

Analysis lives in fgo.analysis.actiongraph and fgo.analysis.simulate; this module only runs
things and writes files. One `Lab` per pytest session (see conftest.py): it
memoizes builds so that the simulation and the split benchmarks reuse the
graphs of the corpus builds instead of building again, and it deletes its
temporary GOCACHE/WORK directories at the end.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo.analysis import actiongraph as ag
from fgo.analysis import bench as bench_phases
from fgo import toolchain
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOCODE = Path("/usr/share/gocode")  # Debian's Go sources, GOPATH mode
# fgo as installed beside the running interpreter (its venv's bin/), whichever venv that is
FGO = Path(sys.executable).parent / "fgo"


@dataclass(frozen=True)
class Project:
    """One corpus entry: what `go build` is asked to build, and in which mode."""

    name: str
    target: str            # import path given to go build
    gopath: bool           # Debian sources: GO111MODULE=off GOPATH=/usr/share/gocode
    binary: bool           # a main package: built with -o
    note: str = ""
    # GOPATH mode only: a GOPATH entry in front of Debian's holding TARGET (a main package
    # written by the experiment that imports library packages: one binary to compare)
    overlay: Path | None = None

    def source_dir(self) -> Path:
        if self.overlay is not None:
            return self.overlay / "src" / self.target
        if self.gopath:
            return GOCODE / "src" / self.target
        return toolchain.goroot() / "src" / self.target

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GO", "CGO_"))}
        env = toolchain.go_env(base, GOFLAGS="", **extra)
        if self.gopath:
            gopath = [str(self.overlay)] if self.overlay is not None else []
            env.update(GO111MODULE="off", GOPATH=os.pathsep.join([*gopath, str(GOCODE)]))
        else:
            env.setdefault("GOPATH", str(Path(tempfile.gettempdir()) / "fgo-exp-gopath"))
        return env

    def build_args(self, out_dir: Path) -> list[str]:
        if self.binary:
            return ["-o", str(out_dir / self.name.replace("/", "_")), self.target]
        return [self.target]


CORPUS: dict[str, Project] = {p.name: p for p in [
    Project("etcd", "go.etcd.io/etcd", gopath=True, binary=True, note="etcd server binary (main.go at the repo root)"),
    Project("gin", "github.com/gin-gonic/gin", gopath=True, binary=False, note="library package"),
    Project("cmd/go", "cmd/go", gopath=False, binary=True, note="the go command"),
    Project("cmd/compile", "cmd/compile", gopath=False, binary=True, note="the Go compiler"),
]}
QUICK_CORPUS = ("gin",)
PROCS = (1, 2)
QUICK_PROCS = (2,)
SIM_KS = (1, 2, 4, 8, 16, 32, 64)


def sh(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(list(cmd), check=False, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"uname_m": sh(["uname", "-m"]) or platform.machine(), "cores": os.cpu_count(),
            "cpu": cpu, "kernel": platform.release()}


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def write_bytecode() -> None:
    """fgo's modules compiled to bytecode, as a user's Python writes them at their first
    import. This sandbox sets PYTHONDONTWRITEBYTECODE=1: no fgo process here ever writes
    them, so each compiled every module it imported from source at its start, which no
    user's fgo does after its first run."""
    import compileall
    import fgo
    compileall.compile_dir(str(Path(fgo.__file__).parent), quiet=1)


def machine_meta(command: str, quick: bool, **extra: Any) -> dict[str, Any]:
    """What labels every result: machine, Go version, date, the exact command, the load."""
    return {"machine": machine(), "go_version": toolchain.go_version(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command, "quick": quick, "loadavg": loadavg(), **extra}


@dataclass
class BuildResult:
    """A measured `go build` (cold or warm) and the summary of its action graph."""

    project: str
    kind: str              # "cold" | "warm"
    procs: int             # GOMAXPROCS
    args: list[str]
    wall_s: float
    graph_path: Path
    trace_path: Path | None
    summary: dict[str, Any]
    load_before: list[float]
    work_dir: Path | None = None   # kept go WORK dir (cold GOMAXPROCS=1 builds only)
    cache_dir: Path | None = None

    def graph(self) -> Any:
        return ag.load(self.graph_path)

    def row(self) -> dict[str, Any]:
        s = self.summary
        return {"project": self.project, "kind": self.kind, "gomaxprocs": self.procs,
                "wall_s": round(self.wall_s, 3), "actions": s["actions"],
                "work_actions": s["work_actions"], "compiles": s["compiles"], "cached": s["cached"],
                "work_s": round(s["work_s"], 3), "span_s": round(s["span_s"], 3),
                "avg_width": round(s["avg_width_recorded"], 3),
                "peak_width": s["peak_width_recorded"],
                "avg_width_unbounded": round(s["avg_width_unbounded"], 3),
                "peak_width_unbounded": s["peak_width_unbounded"], "levels": s["levels"],
                "load1_before": self.load_before[0] if self.load_before else None,
                "command": "go build " + " ".join(self.args),
                "graph": str(self.graph_path.relative_to(REPO)) if self.graph_path.is_relative_to(REPO) else str(self.graph_path),
                "trace": (str(self.trace_path.relative_to(REPO)) if self.trace_path and self.trace_path.is_relative_to(REPO) else str(self.trace_path))}


@dataclass
class Lab:
    """Session state: where results go, what was built, what to clean up."""

    quick: bool
    command: str
    results: Path
    builds: dict[tuple[str, str, int], BuildResult] = field(default_factory=dict)
    phases_cache: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    shards_cache: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    temps: list[Path] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    t0: float = field(default_factory=time.perf_counter)

    @property
    def raw(self) -> Path:
        p = self.results / "raw"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def projects(self) -> tuple[str, ...]:
        return QUICK_CORPUS if self.quick else tuple(CORPUS)

    def procs(self) -> tuple[int, ...]:
        return QUICK_PROCS if self.quick else PROCS

    def sim_procs(self) -> int:
        """GOMAXPROCS of the build whose durations feed the simulation (1 = uncontended)."""
        return min(self.procs())

    def meta(self, **extra: Any) -> dict[str, Any]:
        return machine_meta(self.command, self.quick, **extra)

    def tmpdir(self, prefix: str) -> Path:
        p = Path(tempfile.mkdtemp(prefix=f"fgo-exp-{prefix}-"))
        self.temps.append(p)
        return p

    def drop(self, p: Path | None) -> None:
        if p is not None:
            shutil.rmtree(p, ignore_errors=True)
            if p in self.temps:
                self.temps.remove(p)

    def table(self, name: str) -> list[dict[str, Any]]:
        """Rows of results NAME collected so far in this session (saved one test at a time)."""
        return self.tables.setdefault(name, [])

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def save_session(self, name: str) -> Path:
        """results/NAME: this session's command, start and wall time so far. The report
        reads it from there, so that REPORT.md depends on the results files alone."""
        path = self.results / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"command": self.command, "started": self.started,
                                    "wall_s": round(self.elapsed(), 1), "quick": self.quick},
                                   indent=1) + "\n")
        return path

    def cleanup(self) -> None:
        for p in list(self.temps):
            self.drop(p)

    # ------------------------------------------------------------ builds

    def require(self, name: str, src: Path | None = None) -> None:
        """Skip the calling test when the project's sources (SRC, else its CORPUS entry's) are
        not installed (fail under FGO_REQUIRE_CORPORA=1: CI installs them, so missing ones are
        a broken setup)."""
        src = src or CORPUS[name].source_dir()
        if not src.exists():
            import pytest

            why = f"{name}: {src} is missing (Debian package not installed?)"
            if os.environ.get("FGO_REQUIRE_CORPORA") == "1":
                pytest.fail(why)
            pytest.skip(why)

    def cold(self, name: str, procs: int) -> BuildResult:
        """`go build -a` with an empty GOCACHE (kept for the warm build)."""
        key = (name, "cold", procs)
        if key not in self.builds:
            self.require(name)
            keep_work = procs == self.sim_procs()
            self.builds[key] = self._build(name, "cold", procs, self.tmpdir("gocache"), keep_work)
        return self.builds[key]

    def warm(self, name: str, procs: int) -> BuildResult:
        """The same build again with the cold build's cache (no -a)."""
        key = (name, "warm", procs)
        if key not in self.builds:
            c = self.cold(name, procs)
            assert c.cache_dir is not None and c.cache_dir.exists(), "cold cache already dropped"
            self.builds[key] = self._build(name, "warm", procs, c.cache_dir, False)
            if c.work_dir is None:  # nothing else needs this cache
                self.drop(c.cache_dir)
        return self.builds[key]

    def _build(self, name: str, kind: str, procs: int, cache: Path, keep_work: bool) -> BuildResult:
        p = CORPUS[name]
        out = self.tmpdir("out")
        tag = f"{name.replace('/', '_')}-{kind}-p{procs}"
        graph, trace = self.raw / f"{tag}.actiongraph.json", self.raw / f"{tag}.trace.json"
        args = (["-a"] if kind == "cold" else []) + (["-work"] if keep_work else []) + p.build_args(out)
        env = p.env(GOCACHE=str(cache), GOMAXPROCS=str(procs))
        load = loadavg()
        run = ag.run_build(args, graph, trace, cwd=out, env=env, timeout=1800)
        work_dir = None
        m = re.search(r"^WORK=(\S+)", run.stderr, re.MULTILINE)
        if m:
            work_dir = Path(m.group(1))
            self.temps.append(work_dir)
        self.drop(out)
        shown = [a if not a.startswith(str(out)) else "OUT/" + Path(a).name for a in args]
        return BuildResult(name, kind, procs, shown, run.wall_s, graph, trace,
                           ag.summarize(run.graph()), load, work_dir, cache)

    def bench_build(self, name: str, procs: int = 2) -> tuple[BuildResult, str]:
        """A cold `go build -a -gcflags=all=-bench=FILE` (every compile's phase times appended
        to FILE, one write per compile); the build and FILE's text. Its own GOCACHE, dropped."""
        self.require(name)
        p = CORPUS[name]
        out, cache = self.tmpdir("out"), self.tmpdir("gocache")
        tag = f"{name.replace('/', '_')}-bench-p{procs}"
        graph, benchf = self.raw / f"{tag}.actiongraph.json", self.raw / f"{tag}.bench.txt"
        benchf.unlink(missing_ok=True)
        args = ["-a", f"-gcflags=all=-bench={benchf}", *p.build_args(out)]
        load = loadavg()
        run = ag.run_build(args, graph, None, cwd=out,
                           env=p.env(GOCACHE=str(cache), GOMAXPROCS=str(procs)), timeout=1800)
        self.drop(out)
        self.drop(cache)
        shown = [a if not a.startswith(str(out)) else "OUT/" + Path(a).name for a in args]
        shown = [a.replace(str(REPO) + "/", "") for a in shown]
        return (BuildResult(name, "cold", procs, shown, run.wall_s, graph, None, ag.summarize(run.graph()), load),
                benchf.read_text())

    def release(self, name: str, procs: int) -> None:
        """Drop the cold build's WORK and GOCACHE dirs (after phases were measured)."""
        c = self.builds.get((name, "cold", procs))
        if c is not None:
            self.drop(c.work_dir)
            self.drop(c.cache_dir)
            c.work_dir = None

    # ------------------------------------------------------------ compile phases

    def compile_cmd(self, build: BuildResult, package: str, no_pgo: bool = False) -> list[str]:
        """The compile command go build ran for PACKAGE (from the action graph).

        NO_PGO drops -pgoprofile (cmd/ is built with its default.pgo; the patched
        compiler refuses to split a PGO compile).
        """
        g = build.graph()
        n = ag.find_action(g, package, "build")
        for c in g.nodes[n]["action"].cmd:
            argv = shlex.split(c)
            if Path(argv[0]).name == "compile":
                return [a for a in argv if not (no_pgo and a.startswith("-pgoprofile="))]
        raise KeyError(f"no compile command for {package}")

    def rerun_compile(self, build: BuildResult, package: str, c: int, bench: bool = True,
                      gomaxprocs: int | None = None, no_pgo: bool = False) -> tuple[float, dict[str, float]]:
        """Run PACKAGE's compile again (needs the kept WORK dir) with -c=C; (wall, phases)."""
        if build.work_dir is None or not build.work_dir.exists():
            raise RuntimeError(f"{build.project}: WORK dir not kept; cannot re-run compiles")
        argv = self.compile_cmd(build, package, no_pgo)
        tmp = self.tmpdir("compile")
        out = []
        skip = False
        for i, a in enumerate(argv):
            if skip:
                skip = False
                continue
            if a == "-o":
                out += ["-o", str(tmp / "_pkg_.a")]
                skip = True
            elif re.match(r"^-c=\d+$", a):
                continue
            else:
                out.append(a)
        benchf = tmp / "bench.txt"
        out[1:1] = [f"-c={c}"] + ([f"-bench={benchf}"] if bench else [])
        env = toolchain.go_env(GOMAXPROCS=str(gomaxprocs or max(c, 1)))
        t = time.perf_counter()
        proc = subprocess.run(out, check=False, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"compile {package}: exit {proc.returncode}: {proc.stderr[-500:]}")
        phases: dict[str, float] = {}
        if bench:
            parsed = bench_phases.summaries(benchf.read_text())
            phases = next(iter(parsed.values()), {})
        self.drop(tmp)
        return wall, phases

    def split_processes(self, build: BuildResult, package: str, k: int) -> dict[str, Any]:
        """PACKAGE's compile split K ways with the patched compiler: each process's CPU time.

        Shards 1..K-1, then the leader (shard 0 + merge), as many at once as this
        machine has cores; each is single-threaded (-c=1, GOMAXPROCS=1), so its
        CPU time (user+sys) is what it would take alone on a machine of its own,
        and a leader waiting for the last shard's file spends no CPU on it.
        The simulated K-machine wall time is max(slowest shard + merge, leader).
        Without -pgoprofile (not splittable), like the no_pgo stock runs it is compared with.
        """
        if build.work_dir is None or not build.work_dir.exists():
            raise RuntimeError(f"{build.project}: WORK dir not kept; cannot re-run compiles")
        argv = self.compile_cmd(build, package, no_pgo=True)
        tmp = self.tmpdir("split")
        try:
            r = split_cpu(argv, tmp, tmp, k, os.cpu_count() or 1)
        except RuntimeError as exc:
            raise RuntimeError(f"split {package} K={k}: {exc}") from None
        self.drop(tmp)
        return {key: r[key] for key in ("k", "shards_s", "leader_s", "merge_s", "leader_stats", "k_machine_s")}

    def shard_times(self, name: str, package: str, k: int) -> dict[str, Any]:
        """`split_processes` of PACKAGE from the simulation's input build, once per session
        (items 2 and 4 share it)."""
        key = (name, package, k)
        if key not in self.shards_cache:
            self.shards_cache[key] = self.split_processes(self.cold(name, self.sim_procs()), package, k)
        return self.shards_cache[key]

    def phases(self, name: str, package: str) -> dict[str, float]:
        """F/B/D of PACKAGE's compile, -c=1, as in the simulation's input build but without
        -pgoprofile: a split compile cannot use PGO (cmd/ builds with it), so what a split
        would cost is compared with the compile it would replace. Items 2 and 4 share it."""
        key = (name, package)
        if key not in self.phases_cache:
            b = self.cold(name, self.sim_procs())
            wall, ph = self.rerun_compile(b, package, c=1, gomaxprocs=1, no_pgo=True)
            ph["wall_s"] = wall
            self.phases_cache[key] = ph
        return self.phases_cache[key]

    def phases_many(self, name: str, packages: Sequence[str]) -> dict[str, dict[str, float]]:
        """`phases` of PACKAGES, the missing ones measured at once, one per core: each compile
        is single-threaded (-c=1, GOMAXPROCS=1), and the simulation uses only the proportions
        of F, B and D (scaled to the action's recorded duration)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return dict(zip(packages, pool.map(lambda pkg: self.phases(name, pkg), packages), strict=True))

    # ------------------------------------------------------------ results

    def save(self, name: str, rows: list[dict[str, Any]], **meta: Any) -> Path:
        return save_results(self.results, name, rows, self.meta(**meta))


def cpu_times(cmds: Sequence[Sequence[str]], cwd: Path, env: Mapping[str, str], slots: int,
              timeout: float = 900) -> list[float]:
    """Run CMDS in order, at most SLOTS at once; the CPU time (user+sys, seconds) of each."""
    pending = list(enumerate(cmds))
    running: dict[int, tuple[int, subprocess.Popen[bytes], Any]] = {}
    out = [0.0] * len(cmds)
    deadline = time.monotonic() + timeout
    try:
        while pending or running:
            while pending and len(running) < slots:
                i, cmd = pending.pop(0)
                err = tempfile.TemporaryFile()
                p = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=err)
                running[p.pid] = (i, p, err)
            for pid in list(running):
                done, status, usage = os.wait4(pid, os.WNOHANG)
                if done == 0:
                    continue
                i, p, err = running.pop(pid)
                p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
                err.seek(0)
                msg = err.read().decode(errors="replace")[-500:]
                err.close()
                if p.returncode != 0:
                    raise RuntimeError(f"exit {p.returncode}: {msg}")
                out[i] = usage.ru_utime + usage.ru_stime
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s")
            time.sleep(0.02)
    finally:
        for _, p, err in running.values():
            p.kill()
            p.wait()
            err.close()
    return out


def split_cpu(argv: Sequence[str], cwd: Path, tmp: Path, k: int, slots: int,
              compiler: Path | None = None) -> dict[str, Any]:
    """ARGV (a compile command) split K ways with the patched COMPILER (default: the
    series' own), its processes run in TMP from CWD, at most SLOTS at once: each
    process's CPU time (-c=1, GOMAXPROCS=1), -fgostats and result size.

    shards_s are shards 1..K-1, leader_s the leader's (shard 0 + merge); stats[i]
    is process i's -fgostats (0 = the leader), result_bytes shard i's result file.
    """
    from fgo.compiler import flags as fgoflags
    from fgo.compiler import patched as compiler_patch
    argv = [a for a in argv if not re.match(r"^-c=\d+$", a)]
    i_o = argv.index("-o")
    base = [argv[0], "-c=1", *argv[1:i_o], "-o", "OUT", *argv[i_o + 2:]]

    def with_out(out: Path) -> list[str]:
        a = list(base)
        a[a.index("-o") + 1] = str(out)
        return a

    patched = compiler or compiler_patch.patched_compiler()
    files = [tmp / f"shard{i}.res" for i in range(1, k)]
    stats = [tmp / f"stats{i}.json" for i in range(k)]
    for f in [*files, *stats]:
        f.unlink(missing_ok=True)
    cmds = [fgoflags.with_flags(with_out(tmp / f"shard{i}.unused"),
                                fgoflags.shard_flags(i, k, files[i - 1], stats=stats[i]), compiler=patched)
            for i in range(1, k)]
    cmds.append(fgoflags.with_flags(with_out(tmp / "leader.a"),
                                    fgoflags.leader_flags(k, files, stats=stats[0]), compiler=patched))
    *shards, leader = cpu_times(cmds, cwd, toolchain.go_env(GOMAXPROCS="1"), slots)
    st = [json.loads(f.read_text()) if f.exists() else {} for f in stats]
    merge = float(st[0].get("inject_s") or 0.0)
    return {"k": k, "shards_s": [round(x, 3) for x in shards], "leader_s": round(leader, 3),
            "merge_s": round(merge, 3), "leader_stats": st[0], "stats": st,
            "result_bytes": [f.stat().st_size for f in files], "archive": tmp / "leader.a",
            "k_machine_s": round(max(max(shards, default=0.0) + merge, leader), 3)}


@contextlib.contextmanager
def pinned_loop(core: int, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None,
                fresh_cache: bool = False) -> Iterator[None]:
    """ARGV (a go build) over and over, pinned to CORE (taskset), in a GOCACHE of its own,
    emptied before each round when FRESH_CACHE (each round then compiles everything, -a or
    not); stopped, and its files removed, on exit."""
    import signal
    work = Path(tempfile.mkdtemp(prefix="fgo-loop-"))
    (work / "gocache").mkdir()
    empty = 'rm -rf "$GOCACHE"; mkdir -p "$GOCACHE"; ' if fresh_cache else ""
    script = f'while :; do {empty}"$@" >/dev/null 2>&1; done'
    proc = subprocess.Popen(["taskset", "-c", str(core), "bash", "-c", script, "loop", *argv],
                            start_new_session=True, cwd=cwd,
                            env={**env, "GOCACHE": str(work / "gocache")})
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def competing_load(core: int = 1) -> Iterator[str]:
    """Another build beside the measured one, as on a shared build machine: `go build -a -p 1
    std` over and over, pinned to CORE (taskset), in a GOCACHE of its own; stopped on exit.
    Yields how, for the results."""
    with pinned_loop(core, [str(toolchain.go_binary()), "build", "-a", "-p", "1", "std"],
                     toolchain.go_env()):
        yield f"`go build -a -p 1 std` in a loop pinned to core {core} (taskset), own GOCACHE"


def save_results(results: Path, name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """results/NAME.json ({"meta", "rows"}) and results/NAME.csv (the rows)."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    csv_path = results / f"{name}.csv"
    if rows:
        cols: list[str] = []
        for r in rows:
            cols += [k for k in r if k not in cols and not isinstance(r[k], (dict, list))]
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    elif csv_path.exists():
        csv_path.unlink()
    return path


# ------------------------------------------------------------ fgo availability

def fgo_available(verb: str = "build", needs: Iterable[str] = ("--report",)) -> tuple[bool, str]:
    """Whether `fgo VERB` exists and its --help mentions NEEDS; (ok, reason or help text)."""
    if not FGO.exists():
        return False, f"{FGO} does not exist (pip install -e . into {sys.prefix} first)"
    try:
        proc = subprocess.run([str(FGO), verb, "--help"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"fgo {verb} --help failed: {exc}"
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        return False, f"fgo {verb} is not available yet: {msg[-1] if msg else 'exit ' + str(proc.returncode)}"
    missing = [n for n in needs if n not in proc.stdout]
    if missing:
        return False, f"fgo {verb} has no {', '.join(missing)} option yet"
    return True, proc.stdout


def run_fgo(args: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 1800) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run([str(FGO), *args], check=False, env=dict(env), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    return time.perf_counter() - t, proc


def python_cmdline() -> str:
    """The exact command of this pytest run, as typed (argv[0] shortened to 'pytest')."""
    argv = [shlex.quote(a) for a in sys.argv]
    if argv and (argv[0].endswith("pytest") or argv[0].endswith("py.test") or "pytest" in Path(argv[0]).name):
        argv[0] = "pytest"
    elif argv and argv[0].endswith("__main__.py"):
        argv[0] = "python -m pytest"
    return " ".join(argv)

