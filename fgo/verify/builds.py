"""`fgo verify PROJECT [-- GO_BUILD_FLAGS]`: build several ways, compare, explain differences.

Each *build variant* builds the project into its own output directory with its own
empty GOCACHE and returns the binaries and every package archive it produced.
The first variant is the baseline; every other build is compared with it (package
archives in dependency order, then binaries) using fgo.verify.diff, and the first
differing package is explained down to the symbol.

Hook for other build modes (fgo distributed, --split-large ...)::

    from fgo.verify.builds import Variant, BuildRequest, BuildOutput, register_variant, list_archives

    def build_distributed(req: BuildRequest) -> BuildOutput:
        ...  # build req.packages in req.project with req.go_flags, env=req.env
        ...  # (req.env has GOCACHE=req.gocache, an empty directory), binaries into req.out_dir
        return BuildOutput(binaries={"app": req.out_dir / "app"},
                           archives=list_archives(req))  # or your own {importpath: path}

    register_variant(Variant("fgo", build_distributed, flags_key="",
                             description="fgo build on the Dask cluster"))

Variants with the same ``flags_key`` must produce byte-identical files, build IDs
included; across different keys (e.g. ``-gcflags=all=-c=4``) build IDs and the
build info recorded in binaries legitimately differ and are ignored.

Variation variants (reprotest-style) change what must not matter and keep the flags, so
they are held to byte identity with the baseline: the project's directory
(``go-otherdir``; a variant's ``common_flags`` such as -trimpath then go to every build
of the run, since paths legitimately differ without it), GOMAXPROCS (``go-gomaxprocs1``),
go's -p (``go-p1``), fgo's workers (``fgo-workers1``, ``fgo-workers2``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from fgo.goflags import without_output_flag
from fgo.toolchain import (
    ToolchainError,
    go_binary,
    go_env,
    last_line,
    run_build,
    run_go,
)
from fgo.verify import diff as fdiff
from fgo.verify import goobj
from fgo.verify.goobj import GoobjError


class VerifyError(Exception):
    """A build variant failed or produced nothing to compare."""


# ------------------------------------------------------------------ the hook


@dataclass
class BuildRequest:
    project: Path  # directory `go build` runs in
    packages: list[str]  # package patterns (default ["."])
    go_flags: list[str]  # the user's GO_BUILD_FLAGS (after --)
    out_dir: Path  # empty directory for this build's binaries
    gocache: Path  # empty directory: this build's GOCACHE
    env: dict[str, str]  # pinned-go environment with GOCACHE=gocache (user's GOPATH etc. kept)
    timeout: float | None = None


@dataclass
class BuildOutput:
    binaries: dict[str, Path]  # name -> executable
    archives: dict[str, Path]  # import path -> package archive, in dependency order
    seconds: float = 0.0
    log: str = ""


BuildFn = Callable[[BuildRequest], BuildOutput]


@dataclass
class Variant:
    name: str
    build: BuildFn
    flags_key: str = ""  # equal keys => outputs must be byte-identical (build IDs included)
    description: str = ""
    common_flags: tuple[str, ...] = ()  # flags every build of a run with this variant gets


VARIANTS: dict[str, Variant] = {}
DEFAULT_VARIANTS = ["go", "go-c1", "go-c4"]


def register_variant(v: Variant) -> None:
    """Add (or replace) a named build variant; `fgo verify -v NAME` selects it."""
    VARIANTS[v.name] = v


def go_build(req: BuildRequest, extra_flags: list[str] | None = None) -> BuildOutput:
    """`go build -o OUT/ [extra] [user flags] PACKAGES`, then its archives from GOCACHE."""
    flags = merge_flags(extra_flags or [], req.go_flags)
    t = time.monotonic()
    req.out_dir.mkdir(parents=True, exist_ok=True)
    proc = run_build([str(go_binary()), "build"], ["-o", str(req.out_dir) + os.sep, *flags, *req.packages],
                     cwd=req.project, env=req.env, timeout=req.timeout)
    if proc.returncode != 0:
        raise VerifyError(f"{' '.join(['go build', *flags])} failed: {last_line(proc.stderr)}")
    binaries = {p.name: p for p in sorted(req.out_dir.iterdir()) if p.is_file()}
    archives = list_archives(req, extra_flags)
    return BuildOutput(binaries, archives, time.monotonic() - t, proc.stderr)


def list_archives(req: BuildRequest, extra_flags: list[str] | None = None,
                  require_cached: bool = True) -> dict[str, Path]:
    """Every package archive of PACKAGES and their deps, from req.gocache, in dependency order.

    Runs `go list -export -deps` with the same flags and GOCACHE as the build, so it
    finds what the build put in the cache. `go list` would compile whatever is
    missing, which would silently replace the build's output with a local compile:
    with REQUIRE_CACHED (default) that is an error instead.
    """
    flags = merge_flags(extra_flags or [], req.go_flags)
    before = _cache_outputs(req.gocache) if require_cached else set()
    proc = run_go(["list", "-export", "-deps", *without_output_flag(flags), "-f",
                   "{{if .Export}}{{.ImportPath}}\t{{.Export}}{{end}}", *req.packages],
                  cwd=req.project, env=req.env, check=False, timeout=req.timeout)
    if proc.returncode != 0:
        raise VerifyError(f"go list -export failed: {last_line(proc.stderr)}")
    out: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        if "\t" in line:
            path, export = line.split("\t", 1)
            out[path] = Path(export)
    if require_cached:
        fresh = {p for p, e in out.items() if e.name.endswith("-d") and e.name not in before}
        if fresh:
            raise VerifyError(f"{len(fresh)} package(s) were not in the build's GOCACHE "
                              f"(e.g. {min(fresh)}): the build and `go list` disagree "
                              "on flags or the build did not fill its GOCACHE")
    return out


def _cache_outputs(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("??/*-d")}


def merge_flags(extra: list[str], user: list[str]) -> list[str]:
    """EXTRA then USER flags; a variant's `-gcflags=all=X` is merged into the user's own
    `-gcflags=all=Y` (go keeps only the last one per pattern)."""
    user = list(user)
    out = []
    for f in extra:
        if f.startswith("-gcflags=all="):
            i = next((k for k, u in enumerate(user) if u.startswith("-gcflags=all=")), None)
            if i is not None:
                user[i] = f"{user[i]} {f.removeprefix('-gcflags=all=')}"
                continue
        out.append(f)
    return out + user


def _go_variant(name: str, extra: list[str], key: str, desc: str) -> Variant:
    return Variant(name, lambda req: go_build(req, extra), key, desc)


def variant_by_name(name: str) -> Variant | None:
    """A registered variant, or an ad-hoc `go:FLAGS` one (plain go build plus FLAGS,
    whitespace-separated, e.g. `go:-gcflags=all=-l`)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name.startswith("go:") and name[3:].strip():
        extra = name[3:].split()
        return _go_variant(name, extra, " ".join(extra), f"go build {' '.join(extra)}")
    return None


register_variant(_go_variant("go", [], "", "plain go build"))
register_variant(_go_variant("go-c1", ["-gcflags=all=-c=1"], "-c=1",
                             "go build -gcflags=all=-c=1 (sequential backend)"))
register_variant(_go_variant("go-c4", ["-gcflags=all=-c=4"], "-c=4",
                             "go build -gcflags=all=-c=4 (4 backend workers)"))


def fgo_build(req: BuildRequest, fgo_options: list[str], workers: int | None = None) -> BuildOutput:
    """`fgo build` (embedded cluster, or FGO_SCHEDULER's) into the request's GOCACHE.

    With WORKERS, the build's report must show that many workers and compiles run on
    them: a build that quietly ran everything on the head would make the comparison
    of worker counts vacuous."""
    t = time.monotonic()
    req.out_dir.mkdir(parents=True, exist_ok=True)
    report = req.gocache.parent / f"{req.gocache.name}-fgo-report.json"
    fgo = [sys.executable, "-m", "fgo.cli", "build", "-q", "--report", str(report),
           *fgo_options, str(req.project), "--"]
    proc = run_build(fgo, ["-o", str(req.out_dir) + os.sep, *req.go_flags, *req.packages],
                     cwd=req.project, env=req.env, timeout=req.timeout)
    if proc.returncode != 0:
        raise VerifyError(f"fgo build {' '.join(fgo_options)} failed: {last_line(proc.stderr)}")
    if workers is not None:
        try:
            problem = distribution_problem(json.loads(report.read_text()), workers)
        except (OSError, ValueError) as exc:
            problem = f"no build report ({exc})"
        if problem:
            raise VerifyError(f"fgo build {' '.join(fgo_options)}: {problem}")
    binaries = {p.name: p for p in sorted(req.out_dir.iterdir()) if p.is_file()}
    return BuildOutput(binaries, list_archives(req), time.monotonic() - t, proc.stderr)


def distribution_problem(report: dict, workers: int) -> str | None:
    """Why an fgo build report does not show a build on WORKERS workers, or None."""
    have = report.get("cluster", {}).get("workers")
    remote = report.get("totals", {}).get("remote", 0) + report.get("totals", {}).get("split", 0)
    if have != workers:
        return f"the build had {have} worker(s), not {workers}"
    if not remote:
        return f"no compile ran on a worker ({report.get('totals', {}).get('fallback_reasons') or 'all local'})"
    return None


def _fgo_variant(name: str, options: list[str], desc: str, workers: int | None = None) -> Variant:
    # same flags_key as plain go: fgo must be byte-identical to it, build IDs included
    return Variant(name, lambda req: fgo_build(req, options, workers), "", desc)


register_variant(_fgo_variant("fgo", [], "fgo build on the Dask cluster"))
register_variant(_fgo_variant("fgo-pipelined", ["--pipeline"],
                              "fgo build --pipeline (dependents compiled from early export data)"))
for _k in (2, 3):
    register_variant(_fgo_variant(f"fgo-split{_k}", ["--split-large=0", "--shards", str(_k)],
                                  f"fgo build --split-large=0 --shards {_k} (every package split)"))


# ------------------------------------------------------------------ variation (reprotest-style)
#
# The same build under a changed environment must give the same bytes: these variants
# change one thing that must not matter (where the project lives, how many threads go and
# its compilers get, how many processes go runs at once, how many workers fgo has) and
# keep the flags, so each is compared with the baseline byte for byte, build IDs included.


def with_env(req: BuildRequest, **env: str) -> BuildRequest:
    """REQ with ENV added to its environment (for the build and for collecting archives)."""
    return replace(req, env={**req.env, **env})


VCS_DIRS = (".git", ".hg", ".svn", ".bzr", ".fossil")


def relocate(req: BuildRequest, dest: Path) -> BuildRequest:
    """REQ for a copy of its project under DEST: in module mode the whole module (go.mod's
    directory) is copied, in GOPATH mode the project's directory to DEST/gopath/src/<the
    same import path>, with DEST/gopath first on GOPATH so the copy is what go builds.

    VCS directories are not copied (the build runs with -buildvcs=false: a copy is not a
    checkout). The request's project is the copy's counterpart of the original directory."""
    project = req.project.resolve()
    gomod = run_go(["env", "GOMOD"], cwd=project, env=req.env, check=False).stdout.strip()
    ignore = shutil.ignore_patterns(*VCS_DIRS)
    if gomod and gomod != os.devnull:
        root = Path(gomod).parent
        copy = dest / "module"
        shutil.copytree(root, copy, symlinks=True, ignore=ignore)
        return replace(req, project=copy / project.relative_to(root))
    gopath = run_go(["env", "GOPATH"], cwd=project, env=req.env, check=False).stdout.strip()
    for entry in filter(None, gopath.split(os.pathsep)):
        src = Path(entry).resolve() / "src"
        if project.is_relative_to(src):
            copy = dest / "gopath" / "src" / project.relative_to(src)
            shutil.copytree(project, copy, symlinks=True, ignore=ignore)
            new_gopath = os.pathsep.join([str(dest / "gopath"), gopath])
            return replace(req, project=copy, env={**req.env, "GOPATH": new_gopath})
    raise VerifyError(f"{project} is in no module and under no GOPATH entry's src: "
                      "nothing to copy to another directory")


def build_elsewhere(req: BuildRequest) -> BuildOutput:
    """Plain go build of a copy of the project in another directory (longer path, other
    parent): the -trimpath the run adds keeps the paths out of the output."""
    moved = relocate(req, req.out_dir.parent / "elsewhere" / "a-longer-directory-name")
    return go_build(replace(moved, out_dir=req.out_dir))


def _env_variant(name: str, env: dict[str, str], desc: str) -> Variant:
    return Variant(name, lambda req: go_build(with_env(req, **env)), "", desc)


register_variant(Variant("go-otherdir", build_elsewhere, "",
                         "go build of a copy of the project elsewhere "
                         "(adds -trimpath -buildvcs=false to every build)",
                         common_flags=("-trimpath", "-buildvcs=false")))
register_variant(_env_variant("go-gomaxprocs1", {"GOMAXPROCS": "1"},
                              "go build with GOMAXPROCS=1 (go and its compilers on one thread)"))
register_variant(_go_variant("go-p1", ["-p", "1"], "",
                             "go build -p 1 (one action at a time)"))
for _n in (1, 2):
    register_variant(_fgo_variant(f"fgo-workers{_n}", ["--workers", str(_n), "--local-slots", "0"],
                                  f"fgo build --workers {_n} --local-slots 0 "
                                  f"({_n} worker{'s' if _n > 1 else ''}, no local slots)",
                                  workers=_n))


def run_flags(variants: list[Variant], go_flags: list[str]) -> tuple[list[str], list[str]]:
    """The flags every build of a run gets: GO_FLAGS plus what a chosen variant needs in
    all of them for its comparison to mean something (go-otherdir: -trimpath), and the
    flags added that way."""
    added = []
    for v in variants:
        for f in v.common_flags:
            if f not in go_flags and f not in added and f"{f}=true" not in go_flags:
                added.append(f)
    return [*go_flags, *added], added


# ------------------------------------------------------------------ comparison core


@dataclass
class BuildResult:
    variant: str
    flags_key: str
    output: BuildOutput


@dataclass
class PackageResult:
    importpath: str
    status: str  # "identical", "equivalent", "differs", "only-a", "only-b"
    summary: str = ""
    functions: list[str] = field(default_factory=list)


@dataclass
class BinaryResult:
    name: str
    status: str  # "identical", "equivalent", "differs", "skipped", "only-a", "only-b"
    against: str = ""  # variant it was compared with
    note: str = ""
    diff: fdiff.BinaryDiff | None = None


@dataclass
class BuildComparison:
    a: str  # variant names
    b: str
    strict: bool  # same flags_key: build IDs must match too
    matched: bool = True
    packages_compared: int = 0
    packages_identical: int = 0
    packages_equivalent: int = 0
    differing_packages: list[str] = field(default_factory=list)  # dependency order
    packages: list[PackageResult] = field(default_factory=list)  # the non-identical ones
    first_difference: fdiff.ArchiveDiff | None = None  # full diff of the first differing package
    binaries: list[BinaryResult] = field(default_factory=list)
    link: list[str] = field(default_factory=list)  # when binaries differ but no archive does
    flags: list[str] = field(default_factory=list)  # flags that would make the build reproducible


def compare_builds(a: BuildResult, b: BuildResult, strict: bool | None = None,
                   binary_reference: BuildResult | None = None) -> BuildComparison:
    """Compare two builds: every package archive (dependency order), then binaries.

    STRICT (default: same flags_key) requires byte identity, build IDs included;
    otherwise differences confined to build IDs (and build info in binaries) are
    accepted. BINARY_REFERENCE, if given, is the build B's binaries are compared
    with instead of A (one whose binaries are layout-compatible)."""
    if strict is None:
        strict = a.flags_key == b.flags_key
    c = BuildComparison(a.variant, b.variant, strict)
    pa, pb = a.output.archives, b.output.archives
    for path in pa:
        if path not in pb:
            c.packages.append(PackageResult(path, "only-a", f"package only built by {a.variant}"))
            c.differing_packages.append(path)
            continue
        c.packages_compared += 1
        d = fdiff.compare_archives(str(pa[path]), str(pb[path]), ignore_build_id=not strict,
                                   pkgpath=path)
        if d.identical:
            c.packages_identical += 1
            continue
        if d.matched:
            c.packages_equivalent += 1
            continue
        c.packages.append(PackageResult(path, "differs", d.summary, d.functions))
        c.differing_packages.append(path)
        if c.first_difference is None:
            c.first_difference = d
    for path in pb:
        if path not in pa:
            c.packages.append(PackageResult(path, "only-b", f"package only built by {b.variant}"))
            c.differing_packages.append(path)
    ref = binary_reference or a
    ref_strict = ref.flags_key == b.flags_key
    for name, p in ref.output.binaries.items():
        q = b.output.binaries.get(name)
        if q is None:
            c.binaries.append(BinaryResult(name, "only-a", ref.variant))
            continue
        c.binaries.append(_compare_binary(name, p, q, ref.variant, ref_strict))
    for name in b.output.binaries:
        if name not in ref.output.binaries:
            c.binaries.append(BinaryResult(name, "only-b", ref.variant))
    bad_bins = [r for r in c.binaries if r.status in ("differs", "only-a", "only-b")]
    if bad_bins and not c.differing_packages:
        for r in bad_bins:
            if r.diff is not None:
                c.link.extend(r.diff.findings)
                c.flags.extend(r.diff.flags)
        c.link = fdiff._uniq(["no package archive differs: the difference comes from the link"] + c.link)
        c.flags = fdiff._uniq(c.flags)
    c.matched = not c.differing_packages and not bad_bins
    return c


def _compare_binary(name: str, p: Path, q: Path, against: str, strict: bool) -> BinaryResult:
    d = fdiff.compare_binaries(str(p), str(q), ignore_build_id=not strict, ignore_buildinfo=not strict)
    if d.identical:
        return BinaryResult(name, "identical", against)
    if d.matched:
        return BinaryResult(name, "equivalent", against,
                            "only the build ID and the flags recorded in the build info differ", d)
    if not strict and _buildinfo_sizes_differ(d):
        return BinaryResult(name, "skipped", against,
                            "not comparable byte for byte: the build info records different flags "
                            "and its length shifts the data layout (archives compared instead)", None)
    return BinaryResult(name, "differs", against, "", d)


def _buildinfo_sizes_differ(d: fdiff.BinaryDiff) -> bool:
    return any(s.name == ".go.buildinfo" and s.size_a != s.size_b for s in d.sections)


def _binary_reference(results: list[BuildResult], i: int) -> BuildResult:
    """For build I: the baseline if same flags, else an earlier build with the same flags,
    else an earlier one whose binaries have build info of the same size, else the baseline."""
    b = results[i]
    if results[0].flags_key == b.flags_key:
        return results[0]
    for r in results[1:i]:
        if r.flags_key == b.flags_key:
            return r
    for r in results[:i]:
        if _same_buildinfo_size(r, b):
            return r
    return results[0]


def _same_buildinfo_size(r: BuildResult, b: BuildResult) -> bool:
    common = set(r.output.binaries) & set(b.output.binaries)
    if not common:
        return False
    try:
        for n in common:
            x = goobj.read_elf(r.output.binaries[n]).section(".go.buildinfo")
            y = goobj.read_elf(b.output.binaries[n]).section(".go.buildinfo")
            if x is None or y is None or x.size != y.size:
                return False
    except GoobjError:
        return False
    return True


@dataclass
class VerifyReport:
    project: str
    packages: list[str]
    go_flags: list[str]
    builds: list[dict]  # variant, description, seconds, binaries, archives
    comparisons: list[BuildComparison]
    matched: bool
    workdir: str = ""
    added_flags: list[str] = field(default_factory=list)  # go_flags a variant added (run_flags)


def run_verify(project: Path, variants: list[Variant], packages: list[str] | None = None,
               go_flags: list[str] | None = None, workdir: Path | None = None,
               base_env: dict[str, str] | None = None, timeout: float | None = None,
               progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Build PROJECT with each variant (fresh GOCACHE each) and compare every build with the first."""
    if len(variants) < 2:
        raise VerifyError("need at least two build variants to compare")
    packages = packages or ["."]
    say = progress or (lambda s: None)
    go_flags, added = run_flags(variants, go_flags or [])
    if added:
        needs = sorted({v.name for v in variants if set(v.common_flags) & set(added)})
        say(f"every build gets {' '.join(added)} (for {', '.join(needs)})")
    root = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix="fgo-verify-"))
    results: list[BuildResult] = []
    builds = []
    names = [v.name for v in variants]
    for i, v in enumerate(variants):
        vdir = root / f"{i}-{v.name}"
        if vdir.exists():
            shutil.rmtree(vdir)
        (vdir / "out").mkdir(parents=True)
        (vdir / "gocache").mkdir()
        env = go_env(base_env, GOCACHE=str(vdir / "gocache"))
        req = BuildRequest(project, list(packages), list(go_flags), vdir / "out", vdir / "gocache",
                           env, timeout)
        say(f"building {v.name} ({v.description or v.name}) ...")
        t = time.monotonic()
        try:
            out = v.build(req)
        except ToolchainError as exc:
            raise VerifyError(f"variant {v.name}: {exc}") from None
        except VerifyError as exc:
            raise VerifyError(f"variant {v.name}: {exc}") from None
        if not out.seconds:
            out.seconds = time.monotonic() - t
        if not out.archives:
            raise VerifyError(f"variant {v.name} produced no package archives")
        label = v.name if names.count(v.name) == 1 else f"{v.name}#{names[:i + 1].count(v.name)}"
        results.append(BuildResult(label, v.flags_key, out))
        builds.append({"variant": label, "description": v.description, "flags_key": v.flags_key,
                       "seconds": round(out.seconds, 1),
                       "binaries": {k: str(p) for k, p in out.binaries.items()},
                       "archives": len(out.archives)})
        say(f"  {v.name}: {len(out.archives)} archives, {len(out.binaries)} binaries in {out.seconds:.1f} s")
    comparisons = []
    for i in range(1, len(results)):
        say(f"comparing {results[i].variant} with {results[0].variant} ...")
        comparisons.append(compare_builds(results[0], results[i],
                                          binary_reference=_binary_reference(results, i)))
    return VerifyReport(str(project), packages, go_flags, builds, comparisons,
                        all(c.matched for c in comparisons), str(root), added)


# ------------------------------------------------------------------ output


def report_dict(r: VerifyReport) -> dict:
    d = asdict(r)
    for c, cd in zip(r.comparisons, d["comparisons"]):
        if c.first_difference is not None:
            cd["first_difference"] = fdiff.report_dict(c.first_difference)
        for b, bd in zip(c.binaries, cd["binaries"]):
            if b.diff is not None:
                bd["diff"] = fdiff.report_dict(b.diff)
    return d


def render(r: VerifyReport) -> str:
    lines = [f"fgo verify {r.project} (packages: {' '.join(r.packages)}"
             + (f"; flags: {' '.join(r.go_flags)}" if r.go_flags else "")
             + (f" ({' '.join(r.added_flags)} added for the variants)" if r.added_flags else "")
             + ")"]
    width = max([10, *(len(bd["variant"]) for bd in r.builds)])
    for bd in r.builds:
        lines.append(f"  build {bd['variant']:<{width}} {bd['seconds']:>6.1f} s  {bd['archives']} archives, "
                     f"{len(bd['binaries'])} binaries  ({bd['description']})")
    for c in r.comparisons:
        mode = "byte for byte" if c.strict else "ignoring build IDs (flags differ)"
        head = "match" if c.matched else "DIFFER"
        lines.append(f"{c.b} vs {c.a}: {head} ({mode})")
        lines.append(f"  archives: {c.packages_compared} compared, {c.packages_identical} identical"
                     + (f", {c.packages_equivalent} equal apart from build IDs" if c.packages_equivalent else "")
                     + (f", {len(c.differing_packages)} differ" if c.differing_packages else ""))
        for b in c.binaries:
            vs = f" (vs {b.against})" if b.against != c.a else ""
            lines.append(f"  binary {b.name}: {b.status}{vs}" + (f" - {b.note}" if b.note else ""))
        if c.first_difference is not None:
            lines.append(f"  first differing package (dependency order): {c.differing_packages[0]}")
            lines.append(_indent(fdiff.render_archive(c.first_difference), "    "))
            others = [p for p in c.packages if p.importpath != c.differing_packages[0]]
            if others:
                lines.append(f"  other differing packages ({len(others)}):")
                for p in others[:20]:
                    lines.append(f"    {p.importpath}: {p.summary}")
                if len(others) > 20:
                    lines.append(f"    ... {len(others) - 20} more (--json for all)")
        elif c.packages:
            for p in c.packages:
                lines.append(f"    {p.importpath}: {p.summary}")
        for b in c.binaries:
            if b.status != "differs" or b.diff is None:
                continue
            if c.differing_packages:  # explained by the archives: just where it shows
                for s in b.diff.sections:
                    if s.status == "changed" and s.symbols:
                        lines.append(f"  binary {b.name}: {s.name} differs in {', '.join(s.symbols[:6])}"
                                     + (" ..." if len(s.symbols) > 6 else ""))
            else:
                lines.append(_indent(fdiff.render_binary(b.diff), "    "))
        for l in c.link:
            lines.append(f"  link: {l}")
        if c.flags:
            lines.append(f"  to make the build reproducible: {' '.join(c.flags)}")
    lines.append("OK: all builds matched" if r.matched else "FAIL: the builds differ")
    return "\n".join(lines)


def _indent(text: str, ind: str) -> str:
    return "\n".join(ind + l for l in text.splitlines())
