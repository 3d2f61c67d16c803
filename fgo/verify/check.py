"""`fgo build --check`: the determinism oracle against a plain go build.

After fgo's build, the same target is built again by one plain `go build` into an empty
GOCACHE, and the outputs of the two builds are compared byte for byte, by sha256:

* every package archive either build compiled or reused. Each one is taken from that
  build's own cache through the action ID its action graph records (go's `<aa>/<action>-a`
  index naming the output, or `fgo cacheprog`'s local tier when go's cache went through
  it), so it is the very file that build produced or took from its cache, not one
  recompiled to look at it;
* every binary the build wrote (the action graph's link-install targets).

A package or binary that only one side has is a failure, never a skip: a comparison that
drops what it cannot find would pass a build that lost something. A mismatch names the
first differing member and symbol (fgo diff's engine).

The comparison itself (`compare_outputs`) is a function of two sets of files; finding
them (`graph_archives`, `cached_archive`) and building (`check_build`) are the I/O around it.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo import toolchain

# A name without a file, by (missing in fgo's build, missing in the plain one).
MISSING = {(True, False): "missing in fgo's build", (False, True): "missing on the plain side",
           (True, True): "missing on both sides"}
# go's useCache leaves this in `Built` when it reused an up-to-date binary and so never
# needed the main package's archive (cmd/go/internal/work/buildid.go).
PSEUDO_CACHE = "DO NOT USE - main build pseudo-cache"


# ------------------------------------------------------------------ the comparison (pure)

@dataclass
class Outputs:
    """One build's files of one kind: name (import path) -> file, and for names the build's
    action graph has but whose file could not be found, why."""
    files: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        return set(self.files) | set(self.missing)


def compare_outputs(what: str, fgo: Outputs, plain: Outputs, sha: Callable[[str], str],
                    explain: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """One check per name either side has: equal sha256, or a failure that says which side
    lacks it or, through EXPLAIN(fgo_file, plain_file), what differs first.

    Pure given SHA and EXPLAIN (the callers pass file hashing and fgo diff's engine)."""
    checks = []
    for name in sorted(fgo.names() | plain.names()):
        a, b = fgo.files.get(name), plain.files.get(name)
        if a is None or b is None:
            where = MISSING[(a is None, b is None)]
            why = fgo.missing.get(name) if a is None else None
            why = why or (plain.missing.get(name) if b is None else None)
            checks.append(_check(what, name, False, where + (f" ({why})" if why else "")))
            continue
        ha, hb = sha(a), sha(b)
        if ha == hb:
            checks.append(_check(what, name, True, f"sha256 {ha}"))
        else:
            checks.append(_check(what, name, False,
                                 f"sha256 {ha[:16]} (fgo) != {hb[:16]} (plain): {explain(a, b)}"))
    return checks


def _check(what: str, name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"what": what, "name": name, "ok": ok, "detail": detail}


def first_archive_difference(d: Any) -> str:
    """What differs first between two archives (an fgo.verify.diff.ArchiveDiff), in words:
    the member and the first function or symbol, else the export data, else the summary."""
    for o in d.objects:
        if o.functions:
            return f"{o.member}: first differing symbol {o.functions[0]} ({d.summary})"
        if o.symbols:
            return f"{o.member}: first differing symbol {o.symbols[0].name} ({d.summary})"
    if d.pkgdef == "differs":
        return f"__.PKGDEF: export data differs at byte {d.pkgdef_first_diff} ({d.summary})"
    return d.summary or "differs"


def first_binary_difference(d: Any) -> str:
    """What differs first between two binaries (an fgo.verify.diff.BinaryDiff): the first
    section with a symbol over a differing byte, else the first differing section."""
    for s in d.sections:
        if s.symbols:
            return f"section {s.name}: first differing symbol {s.symbols[0]}"
    for s in d.sections:
        at = f" at +{s.first_diff:#x}" if s.first_diff is not None else ""
        return f"section {s.name} {s.status}{at}"
    return (d.header or d.findings or ["differs"])[0]


# ------------------------------------------------------------------ finding the files

def graph_archives(graph: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each package an action graph compiled or took from the cache: import path -> its
    build action (which records go's action ID in HashToString form)."""
    return {n["Package"]: n for n in graph
            if n.get("Mode") == "build" and n.get("Package") and n.get("ActionID")}


def graph_binaries(graph: list[dict[str, Any]]) -> dict[str, str]:
    """Each binary an action graph wrote: main package -> its file."""
    return {n["Package"]: n["Target"] for n in graph
            if n.get("Mode") == "link-install" and n.get("Package") and n.get("Target")}


def action_hex_prefix(action_id: str) -> str | None:
    """The hex prefix of go's action hash from its HashToString form (base64 of the
    hash's first 15 bytes: cmd/internal/buildid.HashToString); the cache files by the hex."""
    if len(action_id) != 20:
        return None
    try:
        return base64.b64decode(action_id.replace("-", "+").replace("_", "/"), validate=True).hex()
    except ValueError:
        return None


def cached_archive(gocache: Path, action_id: str) -> Path | None:
    """The file go's cache holds for ACTION_ID: go's own layout (`<aa>/<action>-a`, whose
    third field is the output ID, the body `<oo>/<output>-d`), else fgo cacheprog's local
    tier (`fgo/<toolchain>/<aa>/<action>-d`, when go's cache went through it)."""
    prefix = action_hex_prefix(action_id)
    if not prefix:
        return None
    for index in sorted((gocache / prefix[:2]).glob(f"{prefix}*-a")):
        try:
            fields = index.read_text().split()
        except OSError:
            continue
        if len(fields) >= 3 and fields[0] == "v1":
            body = gocache / fields[2][:2] / f"{fields[2]}-d"
            if body.is_file():
                return body
    for body in sorted(gocache.glob(f"fgo/*/{prefix[:2]}/{prefix}*-d")):
        if body.is_file():
            return body
    return None


def archives_of(graph: list[dict[str, Any]], gocache: Path) -> Outputs:
    """The archive of every package GRAPH built, from GOCACHE; a package whose archive is
    not there is missing (with why)."""
    out = Outputs()
    for pkg, node in graph_archives(graph).items():
        path = cached_archive(gocache, node["ActionID"])
        if path is not None:
            out.files[pkg] = str(path)
        elif str(node.get("Built", "")).startswith(PSEUDO_CACHE):
            out.missing[pkg] = ("go reused the up-to-date binary and never needed this "
                                "archive, and GOCACHE does not hold it")
        else:
            out.missing[pkg] = f"GOCACHE has no archive for action ID {node['ActionID']}"
    return out


def binaries_of(graph: list[dict[str, Any]]) -> Outputs:
    out = Outputs()
    for pkg, target in graph_binaries(graph).items():
        if os.path.isfile(target):
            out.files[pkg] = target
        else:
            out.missing[pkg] = f"{target} does not exist"
    return out


# ------------------------------------------------------------------ the plain build

def _retarget_output(go_args: list[str], outdir: str, cwd: Path, binaries: bool = True) -> list[str]:
    """GO_ARGS with -o pointed into OUTDIR (the user's own outputs stay untouched), and
    without a -debug-actiongraph of the user's (the check writes its own). Without an -o
    of the user's, `-o OUTDIR/` is added only if the build wrote BINARIES: go build of
    several packages without -o writes none, and `-o DIR/` would link every main one."""
    def target(value: str) -> str:
        if value == os.devnull:
            return value
        if value.endswith("/") or (cwd / value).is_dir():  # -o DIR/: binaries go in there
            return outdir + "/"
        return os.path.join(outdir, os.path.basename(value))

    args, i, found = [], 0, False
    while i < len(go_args):
        a = go_args[i]
        if a == "-o" and i + 1 < len(go_args):
            args += ["-o", target(go_args[i + 1])]
            i, found = i + 2, True
            continue
        if a.lstrip("-") == "debug-actiongraph" and i + 1 < len(go_args):
            i += 2
            continue
        if a.lstrip("-").startswith("debug-actiongraph="):
            i += 1
            continue
        if a.startswith("-o="):
            args.append("-o=" + target(a[3:]))
            found = True
        else:
            args.append(a)
        i += 1
    return args if found or not binaries else ["-o", outdir + "/", *args]


def _sha(path: str) -> str:
    return toolchain.file_sha256(path)


def _explain_archive(a: str, b: str) -> str:
    from fgo.verify.diff import compare_archives
    try:
        return first_archive_difference(compare_archives(a, b))
    except Exception as exc:  # noqa: BLE001 - unreadable: still a mismatch, in one line
        return f"fgo diff cannot read it ({type(exc).__name__}: {exc})"


def _explain_binary(a: str, b: str) -> str:
    from fgo.verify.diff import compare_binaries
    try:
        return first_binary_difference(compare_binaries(a, b))
    except Exception as exc:  # noqa: BLE001 - as above
        return f"fgo diff cannot read it ({type(exc).__name__}: {exc})"


def _gocache(project: Path) -> Path | None:
    """The GOCACHE fgo's build used (go's own answer, as the build saw the environment)."""
    proc = toolchain.run_go(["env", "GOCACHE"], cwd=project, check=False)
    value = proc.stdout.strip()
    return Path(value) if proc.returncode == 0 and value and value != "off" else None


def check_build(project: Path, go_args: list[str], graph: list[dict[str, Any]],
                gocache: Path | None = None) -> list[dict[str, Any]]:
    """Compare the finished fgo build (its action graph GRAPH; its archives in GOCACHE,
    default go's) with one plain go build into an empty GOCACHE."""
    gocache = gocache or _gocache(project)
    if gocache is None:
        return [_check("build", str(project), False,
                       "fgo's build has no GOCACHE to take its archives from")]
    with tempfile.TemporaryDirectory(prefix="fgo-check-") as tmp:
        out, cache = os.path.join(tmp, "out"), os.path.join(tmp, "gocache")
        os.makedirs(out)
        ag = os.path.join(tmp, "actiongraph.json")
        args = _retarget_output(go_args, out, project, binaries=bool(graph_binaries(graph)))
        env = toolchain.go_env(GOCACHE=cache, GOCACHEPROG="")
        proc = toolchain.run_build([str(toolchain.go_binary()), "build", f"-debug-actiongraph={ag}"],
                                   args, cwd=project, env=env)
        if proc.returncode != 0:
            return [_check("build", "plain go build", False, toolchain.last_line(proc.stderr))]
        try:
            with open(ag) as f:
                plain = json.load(f)
        except (OSError, ValueError) as exc:
            return [_check("build", "plain go build", False, f"no action graph: {exc}")]
        return (compare_outputs("archive", archives_of(graph, gocache),
                                archives_of(plain, Path(cache)), _sha, _explain_archive)
                + compare_outputs("binary", binaries_of(graph), binaries_of(plain),
                                  _sha, _explain_binary))
