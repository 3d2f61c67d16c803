"""Early export data (`compile -fgoexport=FILE`, patch 0013): is it the final archive's?

The patched compiler writes the package's export data to FILE before its backend runs
(an archive holding only the `__.PKGDEF` member, as `-linkobj` writes to `-o`), then
carries on. A dependent may start from FILE only if FILE is byte for byte the start of
the final archive, up to the end of its `__.PKGDEF` member: then the dependent's output
cannot differ from one compiled against the final archive.

`compare` is the check (pure). `check_build` runs a real `go build -a -toolexec` with
this module as the wrapper (`python -m fgo.compiler.early_export wrap LOG [--stock] TOOL
ARGS...`): every compile runs the patched compiler with -fgoexport, and one JSON line
per compile goes to LOG: the package, whether the early export data is identical, where
it first differs, when it appeared (as a fraction of the compile's wall time) and, with
--stock, whether the archive equals the stock compiler's for the same command line
(the flag must not change the object).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fgo import goarchive, toolchain
from fgo.compiler import flags as fgoflags
from fgo.compiler import patched
from fgo.goflags import flag_value, with_flag_value


def when_written(proc: Any, path: str, poll_s: float = 0.005) -> tuple[bytes, float] | None:
    """PATH's bytes and mtime once the compile PROC (a Popen) has written it, while PROC
    still runs (after it the archive says as much); None if PROC ended first. The compiler
    renames the file into place: it is whole or absent."""
    while proc.poll() is None:
        if os.path.exists(path):
            return Path(path).read_bytes(), os.stat(path).st_mtime
        time.sleep(poll_s)
    return None


@dataclass(frozen=True)
class Verdict:
    """Early export data against the final archive."""

    identical: bool
    early_size: int
    final_size: int            # the final archive's prefix up to the end of __.PKGDEF
    first_diff: int | None     # offset of the first differing byte (None: identical)
    why: str = ""


def compare(early: bytes, archive: bytes) -> Verdict:
    """Whether EARLY equals ARCHIVE's prefix up to the end of its `__.PKGDEF` member."""
    end = goarchive.export_data_end(archive[:len(goarchive.MAGIC) + goarchive.HEADER_SIZE])
    if end is None:
        return Verdict(False, len(early), 0, 0, "the archive does not start with __.PKGDEF")
    final = archive[:end]
    if early == final:
        return Verdict(True, len(early), len(final), None)
    n = min(len(early), len(final))
    diff = next((i for i in range(n) if early[i] != final[i]), n)
    return Verdict(False, len(early), len(final), diff,
                   "sizes differ" if len(early) != len(final) else "contents differ")


def _wrap_compile(log: str, stock: bool, argv: list[str]) -> int:
    """Run the compile ARGV with the patched compiler and -fgoexport; append a record to LOG.

    Mismatching early files are kept next to LOG (in LOG.mismatch/) for a look."""
    out = flag_value(argv[1:], "-o")
    if out is None or any(a.startswith("-V") for a in argv[1:]):
        return toolchain.run(argv, capture=False).returncode
    early = out + ".fgoexport"
    rec: dict = {"pkg": flag_value(argv[1:], "-p") or "", "out": out}
    if stock:
        ref = out + ".stock"
        proc = toolchain.run([argv[0], *with_flag_value(argv[1:], "-o", ref)])
        rec["stock_rc"] = proc.returncode
    t0 = time.time()
    rc, wall, _cpu = toolchain.run_timed(
        fgoflags.with_flags(argv, fgoflags.early_export(early), compiler=patched.patched_compiler()))
    rec.update(rc=rc, wall_s=round(wall, 4))
    if rc == 0:
        archive = Path(out).read_bytes()
        if os.path.exists(early):
            got = Path(early).read_bytes()
            rec["export_ready_frac"] = round(min(1.0, max(0.0, (os.stat(early).st_mtime - t0) / wall)), 4) if wall > 0 else None
            rec.update(asdict(compare(got, archive)))
            if not rec["identical"]:
                keep = Path(log + ".mismatch") / rec["pkg"].replace("/", "_")
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(early, keep / "early.a")
                shutil.copyfile(out, keep / "final.a")
            os.unlink(early)
        else:
            rec.update(identical=False, why="no early export data written")
        if stock:
            rec["stock_identical"] = rec.get("stock_rc") == 0 and Path(ref).read_bytes() == archive
    if stock and os.path.exists(out + ".stock"):
        os.unlink(out + ".stock")
    with open(log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return rc


def check_build(targets: Sequence[str], log: Path | str, gocache: Path | str,
                env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                stock: bool = False, procs: int | None = None, timeout: float = 7200) -> list[dict]:
    """`go build -a -toolexec <wrapper> TARGETS` into GOCACHE; the records it logged.

    -toolexec changes every action ID, hence the separate GOCACHE. Binaries are discarded
    (`-o DIR/`, or no -o when TARGETS hold no main package: `toolchain.run_build`).
    """
    log = Path(log).resolve()
    log.unlink(missing_ok=True)
    wrapper = Path(tempfile.mkdtemp(prefix="fgo-early-export-")) / "wrap.sh"
    wrapper.write_text("#!/bin/sh\n"
                       "case \"$1\" in */compile) exec " + shlex.quote(sys.executable)
                       + " -m fgo.compiler.early_export wrap " + shlex.quote(str(log))
                       + (" --stock" if stock else "") + " \"$@\";; esac\n"
                       "exec \"$@\"\n")
    wrapper.chmod(0o755)
    e = toolchain.go_env(dict(env) if env is not None else None, GOCACHE=str(gocache), GOFLAGS="")
    (wrapper.parent / "bin").mkdir()  # binaries go here, not into CWD
    args = (["build", "-a", "-toolexec", str(wrapper), "-o", f"{wrapper.parent / 'bin'}/"]
            + (["-p", str(procs)] if procs else []))
    try:
        proc = toolchain.run_build([toolchain.go_binary()], [*args, *targets], cwd=cwd, env=e, timeout=timeout)
        if proc.returncode != 0:
            raise toolchain.ToolchainError(f"go build -a -toolexec: {toolchain.last_line(proc.stderr, 'failed')}")
    finally:
        shutil.rmtree(wrapper.parent, ignore_errors=True)
    return read_log(log)


def read_log(log: Path | str) -> list[dict]:
    p = Path(log)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def main(argv: list[str]) -> int:  # pragma: no cover - the toolexec entry point
    if len(argv) >= 2 and argv[0] == "wrap":
        rest = argv[2:]
        stock = rest[:1] == ["--stock"]
        return _wrap_compile(argv[1], stock, rest[1:] if stock else rest)
    print("usage: python -m fgo.compiler.early_export wrap LOG [--stock] TOOL ARGS...", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
