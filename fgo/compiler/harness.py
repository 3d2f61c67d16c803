"""`fgo toolchain` and `fgo split-compile`: the patched compiler, and a harness that checks it.

`fgo split-compile PROJECT -- PACKAGES...` builds the packages' dependencies with plain go,
recovers each package's real compile command line, then compiles it twice with that same
command line: once with the stock compiler, once as K processes of the patched compiler
(K-1 shards and a leader that merges their results), and compares the archives' sha256.

The command line comes from `go build -n -gcflags=PKG=-c=1 PKG`: the extra flag changes
only PKG's action ID, so go prints the commands for PKG alone while its dependencies come
from the build cache; the script's lines before the compile (importcfg, embedcfg, symabis)
are run with WORK pointing at a private directory, and the compile line itself is expanded
by the shell into an argv. `-c` is then set to --c for every process.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from fgo.analysis import bench as compile_bench
from fgo.compiler import flags as fgoflags
from fgo.compiler import patched
from fgo.fileio import file_sha256
from fgo.goflags import with_flag_value
from fgo.toolchain import go_env, last_line, run, run_go, start, tool_path


class SplitError(Exception):
    """A user-facing failure of the harness (one line)."""


# --- recovering compile command lines --------------------------------------------------------

def _go(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = run_go(args, cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise SplitError(f"go {' '.join(args[:3])}: {last_line(proc.stderr or proc.stdout)}")
    return proc


def list_packages(project: Path, patterns: list[str]) -> list[str]:
    """Import paths of PATTERNS as seen from PROJECT."""
    out = _go(["list", "-e", "-f", "{{.ImportPath}}\t{{if .Error}}{{.Error}}{{end}}", *patterns], project).stdout
    pkgs = []
    for line in out.splitlines():
        path, _, err = line.partition("\t")
        if err:
            raise SplitError(f"{path}: {err.strip().splitlines()[0]}")
        pkgs.append(path)
    if not pkgs:
        raise SplitError("no packages match " + " ".join(patterns))
    return pkgs


def compile_command(project: Path, pkg: str, work: Path) -> tuple[list[str], Path]:
    """The argv of go build's compile of PKG (run from PROJECT); its inputs are made in WORK.

    PKG's dependencies must already be in the build cache.
    """
    script = _go(["build", "-n", f"-gcflags={pkg}=-c=1", pkg], project).stderr
    lines = script.splitlines()
    compile_tool = str(tool_path("compile"))
    idx = [i for i, line in enumerate(lines) if line.startswith(compile_tool + " ")]
    if len(idx) > 1:
        idx = [i for i in idx if f" -p {pkg} " in lines[i] or " -p main " in lines[i]]
    if len(idx) != 1:
        raise SplitError(f"{pkg}: cannot find its compile command in `go build -n` output")
    i = idx[0]
    work.mkdir(parents=True, exist_ok=True)
    env = go_env(WORK=str(work))
    prefix = "\n".join(lines[:i])
    proc = run(["sh", "-e", "-c", prefix], cwd=project, env=env)
    if proc.returncode != 0:
        raise SplitError(f"{pkg}: preparing its compile failed: {proc.stderr.strip()[-300:]}")
    # Let the shell expand the compile line ($WORK, quotes) into an argv.
    cwd = project
    for line in lines[:i]:
        if line.startswith("cd "):
            cwd = Path(line[3:].strip())
    expand = run(["sh", "-c", 'set -- ' + lines[i] + '; printf "%s\\0" "$@"'], cwd=cwd, env=env,
                 text=False)
    if expand.returncode != 0:
        raise SplitError(f"{pkg}: cannot parse its compile command")
    argv = expand.stdout.decode().split("\0")[:-1]
    return [a for a in argv if not a.startswith("-c=")], cwd


# --- one package -----------------------------------------------------------------------------

@dataclasses.dataclass
class PackageResult:
    package: str
    shards: int
    identical: bool
    functions: int | None = None
    stock_s: float | None = None
    leader_s: float | None = None
    shard_s: list[float] = dataclasses.field(default_factory=list)  # shards 1..K-1
    leader_backend_s: float | None = None  # leader's own backend
    leader_wait_s: float | None = None  # waiting for shard results after its own backend
    merge_s: float | None = None  # reading/injecting/replaying shard results
    stock_sha256: str | None = None
    leader_sha256: str | None = None
    error: str | None = None
    # With alone=True: each process again, one at a time (the leader with all results
    # present), stock -c=2, and the stock compile's own phase times (-bench).
    walk_s: float | None = None  # leader's per-function frontend work in the compile loop
    stock_c2_s: float | None = None
    alone_shard_s: list[float] = dataclasses.field(default_factory=list)
    alone_leader_s: float | None = None
    bench_frontend_s: float | None = None  # F (fe:*), from fgo.analysis.bench
    bench_backend_s: float | None = None  # B (be:compilefuncs, walk included)
    bench_dumpobj_s: float | None = None  # D (be:dumpobj)
    bound_s: float | None = None  # F + B/K + D


def _set_output(argv: list[str], out: Path) -> list[str]:
    try:
        return with_flag_value(argv, "-o", str(out))
    except KeyError:
        raise SplitError("compile command has no -o") from None


def _timed(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = run(argv, cwd=cwd)
    return proc, time.monotonic() - t0


@dataclasses.dataclass
class _SplitCommands:
    """The command lines of one package's compiles: stock, and the K processes of the split."""
    argv: list[str]  # go build's compile command, without -c
    cwd: Path
    k: int
    c: int
    extra: list[str]  # flags added after the tool path of every compile
    outdir: Path
    timeout: int
    patched: Path

    def stock(self, c: int | None = None, bench: Path | None = None) -> list[str]:
        """The stock compile with -c=C (default --c), optionally writing -bench phase times."""
        argv = [self.argv[0], f"-c={self.c if c is None else c}", *self.extra, *self.argv[1:]]
        return [argv[0], f"-bench={bench}", *argv[1:]] if bench is not None else argv

    @property
    def shard_files(self) -> list[Path]:
        """Shard i's result file is shard_files[i - 1]."""
        return [self.outdir / f"shard{i}.res" for i in range(1, self.k)]

    def shard(self, i: int, stats: bool = True) -> list[str]:
        """Shard I (1 <= I < K) of the patched compiler, with its stats file if STATS."""
        flags = fgoflags.shard_flags(i, self.k, self.shard_files[i - 1],
                                           stats=self.outdir / f"stats{i}.json" if stats else None)
        return fgoflags.with_flags(_set_output(self.stock(), self.outdir / f"shard{i}.unused"), flags,
                                         compiler=self.patched)

    def leader(self, out: Path) -> list[str]:
        """The leader (it compiles shard 0 and merges), writing the archive OUT."""
        flags = fgoflags.leader_flags(self.k, self.shard_files, timeout=self.timeout,
                                            stats=self.outdir / "stats0.json")
        return fgoflags.with_flags(_set_output(self.stock(), out), flags, compiler=self.patched)


def _run_stock(res: PackageResult, cmds: _SplitCommands, alone: bool) -> bool:
    """Compile with the stock compiler (with -bench if ALONE); False if it failed."""
    stock_out = cmds.outdir / "stock.a"
    bench = cmds.outdir / "stock.bench"
    bench.unlink(missing_ok=True)
    proc, res.stock_s = _timed(_set_output(cmds.stock(bench=bench if alone else None), stock_out), cmds.cwd)
    if proc.returncode != 0:
        res.error = "stock compile failed: " + proc.stderr.strip()[-500:]
        return False
    res.stock_sha256 = file_sha256(stock_out)
    return True


def _read_bench(res: PackageResult, bench: Path, k: int) -> None:
    """The stock compile's F, B and D phase times, and the bound F + B/K + D."""
    phases = compile_bench.last_run(bench.read_text())
    if phases:
        fe, be, do = compile_bench.fbd(phases)
        res.bench_frontend_s, res.bench_backend_s, res.bench_dumpobj_s = fe, be, do
        res.bound_s = round(fe + be / k + do, 3)


def _run_stock_c2(res: PackageResult, cmds: _SplitCommands) -> bool:
    """Time stock -c=2 and check its archive is the -c=1 one; False if not."""
    proc, t = _timed(_set_output(cmds.stock(c=2), cmds.outdir / "stock2.a"), cmds.cwd)
    if proc.returncode != 0 or file_sha256(cmds.outdir / "stock2.a") != res.stock_sha256:
        res.error = "stock -c=2 failed or differs from -c=1"
        return False
    res.stock_c2_s = round(t, 3)
    return True


def _last_error(stderr: str) -> str:
    """The last line of a failed process's stderr ("failed" if it printed nothing)."""
    return (stderr.strip().splitlines() or ["failed"])[-1]


def _run_split(res: PackageResult, cmds: _SplitCommands, leader_out: Path) -> bool:
    """Run the K-1 shards and the leader at once, timing each; False if one failed."""
    for f in cmds.shard_files:
        f.unlink(missing_ok=True)
    leader_out.unlink(missing_ok=True)
    procs = []
    starts = []
    for i in range(1, cmds.k):
        a = cmds.shard(i)
        starts.append(time.monotonic())
        procs.append(start(a, cwd=cmds.cwd))
    la = cmds.leader(leader_out)
    t0 = time.monotonic()
    lp = start(la, cwd=cmds.cwd)
    # Wait for the shards; if one fails the leader would only time out, so stop it.
    errors = []
    for i, p in enumerate(procs):
        _, err = p.communicate()
        res.shard_s.append(round(time.monotonic() - starts[i], 3))
        if p.returncode != 0:
            errors.append(f"shard {i + 1}: " + _last_error(err))
    if errors:
        lp.kill()
        lp.communicate()
        res.error = "; ".join(errors)
        return False
    _, lerr = lp.communicate()
    res.leader_s = round(time.monotonic() - t0, 3)
    if lp.returncode != 0:
        res.error = "leader: " + _last_error(lerr)
        return False
    return True


def _read_leader_stats(res: PackageResult, path: Path) -> None:
    """The leader's -fgostats: function count, backend, wait, merge and walk times."""
    try:
        st = json.loads(path.read_text())
        res.functions = st.get("funcs")
        res.leader_backend_s = st.get("backend_s")
        res.leader_wait_s = st.get("wait_s")
        res.merge_s = st.get("inject_s")
        res.walk_s = st.get("walk_s")
    except (OSError, ValueError):
        pass


def _run_alone(res: PackageResult, cmds: _SplitCommands) -> None:
    """Time every shard, then the leader (all results present), one at a time."""
    for i in range(1, cmds.k):
        proc, t = _timed(cmds.shard(i, stats=False), cmds.cwd)
        if proc.returncode != 0:
            res.error = f"shard {i} alone failed"
            return
        res.alone_shard_s.append(round(t, 3))
    alone_out = cmds.outdir / "leader-alone.a"
    proc, t = _timed(cmds.leader(alone_out), cmds.cwd)
    if proc.returncode != 0 or file_sha256(alone_out) != res.stock_sha256:
        res.identical = False
        res.error = "leader alone failed or differs"
        return
    res.alone_leader_s = round(t, 3)


def split_package(argv: list[str], cwd: Path, pkg: str, k: int, outdir: Path, c: int = 1,
                  extra: list[str] | None = None, timeout: int = 600, stock: bool = True,
                  alone: bool = False) -> PackageResult:
    """Compile ARGV stock and as K shard processes; compare the archives.

    With ALONE, also time stock -c=2 and every process of the split alone.
    """
    cmds = _SplitCommands(argv, cwd, k, c, extra or [], outdir, timeout, patched.patched_compiler())
    outdir.mkdir(parents=True, exist_ok=True)
    res = PackageResult(package=pkg, shards=k, identical=False)
    if stock:
        if not _run_stock(res, cmds, alone):
            return res
        if alone:
            _read_bench(res, outdir / "stock.bench", k)
            if not _run_stock_c2(res, cmds):
                return res
    leader_out = outdir / "leader.a"
    if not _run_split(res, cmds, leader_out):
        return res
    _read_leader_stats(res, outdir / "stats0.json")
    res.leader_sha256 = file_sha256(leader_out)
    res.identical = res.leader_sha256 == res.stock_sha256
    if res.stock_s is not None:
        res.stock_s = round(res.stock_s, 3)
    if alone and res.identical:
        _run_alone(res, cmds)
    return res


def split_compile(project: Path, patterns: list[str], k: int, c: int = 1, extra: list[str] | None = None,
                  timeout: int = 600, keep: Path | None = None, alone: bool = False,
                  progress=None) -> list[PackageResult]:
    """The harness: see the module docstring."""
    if k < 2:
        raise SplitError("--shards must be at least 2")
    project = project.resolve()
    if not project.is_dir():
        raise SplitError(f"{project}: not a directory")
    pkgs = list_packages(project, patterns)
    _go(["build", *pkgs], project)  # dependencies (and the packages) with plain go
    patched.ensure_compiler()
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="fgo-split-", dir=keep)) if keep else Path(tempfile.mkdtemp(prefix="fgo-split-"))
    try:
        for n, pkg in enumerate(pkgs):
            d = tmp / f"p{n}"
            try:
                argv, cwd = compile_command(project, pkg, d / "work")
                r = split_package(argv, cwd, pkg, k, d / "out", c=c, extra=extra, timeout=timeout, alone=alone)
            except SplitError as exc:
                r = PackageResult(package=pkg, shards=k, identical=False, error=str(exc))
            results.append(r)
            if progress:
                progress(r)
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def format_result(r: PackageResult) -> str:
    if r.error:
        return f"{r.package}: FAILED ({r.error})"
    shards = " ".join(f"{s:.2f}" for s in r.shard_s)
    line = (f"{r.package}: {'identical' if r.identical else 'DIFFERENT'}  funcs={r.functions}  K={r.shards}  "
            f"stock={r.stock_s:.2f}s  leader={r.leader_s:.2f}s (own backend {r.leader_backend_s or 0:.2f}s, "
            f"wait {r.leader_wait_s or 0:.2f}s, merge {r.merge_s or 0:.3f}s)  shards=[{shards}]s")
    if r.alone_leader_s is not None:
        alone = " ".join(f"{s:.2f}" for s in r.alone_shard_s)
        line += (f"\n    alone: shards=[{alone}]s leader={r.alone_leader_s:.2f}s  bound F+B/K+D="
                 f"{r.bound_s}s (F={r.bench_frontend_s:.2f} B={r.bench_backend_s:.2f} D={r.bench_dumpobj_s:.2f}, "
                 f"walk {r.walk_s or 0:.2f}s)  stock -c=2={r.stock_c2_s:.2f}s")
    return line
