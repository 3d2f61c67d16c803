"""What a `compile` call reads and writes, and how it runs on another root (pure).

go build hands the compiler absolute paths: sources, -importcfg (which names
the archives of every import), -embedcfg (which names embedded files),
-symabis, -o, -asmhdr. To run the same call on a worker we place every input
under a sandbox directory at its original absolute path, point the path
arguments there, and extend -trimpath so that no sandbox path reaches the
output. Pure functions; tested without processes.

Anything this module does not understand (profiling outputs, -I search
directories, coverage configs, ...) makes the call "not remote-safe": it then
runs locally, exactly as go build asked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from fgo import goflags
from fgo.goflags import Flag, flag_value

# Flags of cmd/compile that take a value (cmd/compile/internal/base/flag.go).
VALUE_FLAGS = {
    "I", "o", "p", "c", "d", "D", "asmhdr", "bench", "blockprofile", "buildid", "cpuprofile",
    "embedcfg", "env", "gendwarfinl", "goversion", "importcfg", "installsuffix", "json", "lang",
    "linkobj", "memprofile", "memprofilerate", "mutexprofile", "coveragecfg", "spectre",
    "symabis", "traceprofile", "trimpath", "pgoprofile",
}
# Value flags naming a file the compiler reads or writes.
INPUT_FLAGS = {"importcfg", "embedcfg", "symabis", "pgoprofile"}
OUTPUT_FLAGS = {"o", "asmhdr", "linkobj"}
# Flags whose effect reaches outside what we ship and bring back: run locally.
LOCAL_ONLY_FLAGS = {"I", "bench", "blockprofile", "cpuprofile", "json", "memprofile",
                    "mutexprofile", "traceprofile", "coveragecfg"}
# Boolean/count flags we know (anything else is treated as unknown -> local).
KNOWN_BOOL_FLAGS = {
    "%", "+", "B", "C", "E", "K", "L", "N", "S", "W", "e", "h", "j", "l", "m", "r", "t", "u",
    "v", "w", "asan", "complete", "clobberdead", "clobberdeadreg", "dwarf", "dwarfbasentries",
    "dwarflocationlists", "dynlink", "linkshared", "live", "msan", "nolocalimports", "pack",
    "race", "shared", "smallframes", "std", "wb", "errorurl", "compiling-runtime",
}


class NotRemoteSafe(Exception):
    """This call must run locally; the message says why (it goes in the report)."""


@dataclass
class CompileCall:
    """One parsed compile invocation."""

    args: list[str]                  # the tool's arguments, as go build gave them
    cwd: str
    outputs: list[str]               # absolute paths the tool writes
    inputs: list[str]                # absolute paths the tool reads, configs included
    importcfg: str | None = None
    embedcfg: str | None = None
    package: str = ""                # -p import path
    # archive paths named by importcfg: shipped as export data only
    archives: list[str] = field(default_factory=list)


def absolute(cwd: str, path: str) -> str:
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(cwd, path))


def split_flags(args: list[str]) -> tuple[list[Flag], int]:
    """compile's flags, and the index of its first file (NotRemoteSafe: malformed)."""
    try:
        return goflags.split_flags(args, VALUE_FLAGS)
    except goflags.FlagError as exc:
        raise NotRemoteSafe(str(exc)) from None


def buildid_of(call: CompileCall) -> str:
    """The compile's -buildid value (go's action ID / content ID placeholder), or ""."""
    return flag_value(call.args, "-buildid") or ""


def parse(args: list[str], cwd: str,
          read_file: Callable[[str], bytes] = lambda p: open(p, "rb").read()) -> CompileCall:
    """Parse compile's ARGS (without the tool path). Raises NotRemoteSafe."""
    flags, first_file = split_flags(args)
    call = CompileCall(args=list(args), cwd=cwd, outputs=[], inputs=[])
    for name, value, _, _ in flags:
        if name in LOCAL_ONLY_FLAGS:
            raise NotRemoteSafe(f"flag -{name}")
        if name not in VALUE_FLAGS and name not in KNOWN_BOOL_FLAGS:
            raise NotRemoteSafe(f"unknown flag -{name}")
        if value is None:
            continue
        if name in OUTPUT_FLAGS:
            call.outputs.append(absolute(cwd, value))
        elif name in INPUT_FLAGS:
            call.inputs.append(absolute(cwd, value))
        if name == "p":
            call.package = value
        elif name == "importcfg":
            call.importcfg = absolute(cwd, value)
        elif name == "embedcfg":
            call.embedcfg = absolute(cwd, value)
    files = args[first_file:]
    if not files:
        raise NotRemoteSafe("no source files")
    call.inputs += [absolute(cwd, f) for f in files]
    if call.importcfg:
        call.archives = importcfg_archives(read_file(call.importcfg).decode())
    if call.embedcfg:
        call.inputs += embedcfg_files(read_file(call.embedcfg))
    if not call.outputs:
        raise NotRemoteSafe("no -o output")
    return call


def with_outputs(args: list[str], cwd: str, aside: dict[str, str],
                 names: frozenset[str] | set[str] = OUTPUT_FLAGS) -> list[str]:
    """ARGS with each output (-o, -asmhdr, -linkobj; or the flags NAMES) named in ASIDE
    (absolute path -> another path) written (or read) there instead. The compiler never
    records where it writes, nor where its configs are, so the bytes are the same."""
    out = list(args)
    flags, _ = split_flags(out)
    for name, value, idx, inline in flags:
        if name in names and value is not None:
            target = aside.get(absolute(cwd, value))
            if target is not None:
                out[idx] = f"-{name}={target}" if inline else target
    return out


def importcfg_archives(text: str) -> list[str]:
    """The files named by `packagefile path=file` lines."""
    out = []
    for line in text.splitlines():
        verb, _, rest = line.strip().partition(" ")
        if verb == "packagefile":
            _, _, file = rest.partition("=")
            out.append(file.strip())
    return out


def embedcfg_files(data: bytes) -> list[str]:
    return sorted(set(json.loads(data).get("Files", {}).values()))


# --- on the worker: the same call under a sandbox root ---

def in_sandbox(sandbox: str, path: str) -> str:
    return sandbox + path if os.path.isabs(path) else path


def sandbox_trimpath(rules: str, sandbox: str, goroot: str, tops: list[str]) -> str:
    """Re-point go build's -trimpath rules at the sandbox and add rules that remove it.

    objabi.AbsFile applies the rules (first match wins); when none matched and
    the path is under GOROOT it writes "$GOROOT/...". We keep that order: the
    original rules, then GOROOT, then one rule per top-level directory of the
    original paths, so every sandbox path maps back to its original spelling.
    Paths the sandbox does not prefix (cgo's //line directives name the head's
    source files) under the head's GOROOT become "$GOROOT/..." too: this worker's
    compiler knows only its own GOROOT, which may live elsewhere.
    """
    out = []
    for rule in filter(None, rules.split(";")):
        prefix, arrow, repl = rule.rpartition("=>")
        if not arrow:
            prefix, repl = rule, ""
        out.append(f"{in_sandbox(sandbox, prefix)}=>{repl}")
    out.append(f"{sandbox}{goroot}=>$GOROOT")
    out += [f"{sandbox}/{top}=>/{top}" for top in sorted(set(tops))]
    out.append(f"{goroot}=>$GOROOT")
    return ";".join(out)


def sandbox_args(call: CompileCall, sandbox: str, goroot: str) -> list[str]:
    """CALL's arguments for a run under SANDBOX (paths prefixed, -trimpath extended)."""
    args = list(call.args)
    flags, first_file = split_flags(args)
    tops = [p.split("/")[1] for p in call.inputs + call.outputs if p.startswith("/")]
    has_trimpath = False
    for name, value, idx, inline in flags:
        if value is None:
            continue
        if name == "trimpath":
            value, has_trimpath = sandbox_trimpath(value, sandbox, goroot, tops), True
        elif name in INPUT_FLAGS or name in OUTPUT_FLAGS:
            value = in_sandbox(sandbox, value)
        else:
            continue
        args[idx] = f"-{name}={value}" if inline else value
    args[first_file:] = [in_sandbox(sandbox, f) for f in args[first_file:]]
    if not has_trimpath:
        args.insert(0, "-trimpath=" + sandbox_trimpath("", sandbox, goroot, tops))
    return args


def sandbox_importcfg(text: str, sandbox: str, where: dict[str, str] | None = None) -> str:
    """importcfg with every packagefile pointing into the sandbox, or where WHERE (archive
    path -> another path, e.g. the blob in a store) says it is. The compiler records no
    archive path in its output: it reads the export data, whose positions are its own."""
    where = where or {}
    lines = []
    for line in text.splitlines():
        verb, _, rest = line.strip().partition(" ")
        if verb == "packagefile":
            pkg, _, file = rest.partition("=")
            file = file.strip()
            line = f"packagefile {pkg}={where.get(file) or in_sandbox(sandbox, file)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def sandbox_embedcfg(data: bytes, sandbox: str) -> bytes:
    cfg = json.loads(data)
    cfg["Files"] = {k: in_sandbox(sandbox, v) for k, v in cfg.get("Files", {}).items()}
    return json.dumps(cfg).encode()
