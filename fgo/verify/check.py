"""`fgo build --check`: the determinism oracle against a plain local go build.

The same target is built again by plain go build into an empty GOCACHE, and
the results are compared: every final binary by sha256, and every package
both builds compiled by the content half of its build ID (go's hash of the
archive's content).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from fgo import toolchain
def _retarget_output(go_args: list[str], outdir: str, cwd: Path) -> list[str]:
    """GO_ARGS with -o pointed into OUTDIR (the user's own outputs stay untouched)."""
    def target(value: str) -> str:
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
        if a.startswith("-o="):
            args.append("-o=" + target(a[3:]))
            found = True
        else:
            args.append(a)
        i += 1
    return args if found else ["-o", outdir + "/", *args]


def _content_ids(graph: list[dict[str, Any]]) -> dict[str, str]:
    return {n["Package"]: n["BuildID"].split("/")[-1] for n in graph
            if n.get("Mode") == "build" and n.get("BuildID") and n.get("Package")}


def _binaries(graph: list[dict[str, Any]]) -> dict[str, str]:
    return {n["Package"]: n["Target"] for n in graph
            if n.get("Mode") == "link-install" and n.get("Target")}


def _sha(path: str) -> str | None:
    return toolchain.file_sha256(path) if os.path.isfile(path) else None


def check_build(project: Path, go_args: list[str], graph: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare the finished fgo build (its actiongraph GRAPH) with a plain build."""
    import json
    with tempfile.TemporaryDirectory(prefix="fgo-check-") as tmp:
        out, cache = os.path.join(tmp, "out"), os.path.join(tmp, "gocache")
        os.makedirs(out)
        ag = os.path.join(tmp, "actiongraph.json")
        args = _retarget_output(go_args, out, project)
        proc = toolchain.run_build([str(toolchain.go_binary()), "build", f"-debug-actiongraph={ag}"],
                                   args, cwd=project, env=toolchain.go_env(GOCACHE=cache))
        if proc.returncode != 0:
            return [{"what": "build", "name": "plain go build", "ok": False,
                     "detail": toolchain.last_line(proc.stderr)}]
        with open(ag) as f:
            plain = json.load(f)
        checks = []
        mine, theirs = _content_ids(graph), _content_ids(plain)
        for pkg in sorted(mine.keys() & theirs.keys()):
            ok = mine[pkg] == theirs[pkg]
            checks.append({"what": "archive", "name": pkg, "ok": ok,
                           "detail": "" if ok else f"content ID {mine[pkg]} != {theirs[pkg]}"})
        mine_bin, plain_bin = _binaries(graph), _binaries(plain)
        for pkg in sorted(mine_bin.keys() & plain_bin.keys()):
            a, b = _sha(mine_bin[pkg]), _sha(plain_bin[pkg])
            ok = a is not None and a == b
            checks.append({"what": "binary", "name": pkg, "ok": ok,
                           "detail": f"sha256 {a}" if ok else f"sha256 {a} != {b}"})
        return checks
