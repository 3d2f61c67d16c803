"""Predicted compiles: every compile command of a build, from go's own plan (`go build -n`).

go build stays the driver of an fgo build, so it asks for a package's compile only after
its dependencies' compiles returned. To start a dependent earlier (pipelining)
fgo must know that compile's command line beforehand: `go build -n` with the same flags
prints the build's shell script, every compile in it. This module parses that script
(`parse`, pure) into one `Prediction` per compile and gives the content key that
matches a prediction to the real compile request later (`content_key`, pure): the
normalized command line, the sha256 of every source and input file, and of the export
data of every import.

Normalized, so that the prediction and the request compare equal:
  - `$WORK` of the script and the real WORK dir both become `$WORK`, and every action
    dir `$WORK/bNNN` becomes `$WORK/b` (go numbers them in its own order);
  - `-buildid ID` becomes `-buildid $BUILDID` (go rewrites the ID in place afterwards,
    as `updateBuildID` does, and so does fgo on a match);
  - `-c=N` is dropped (backend concurrency does not change the output);
  - the tool is its base name; relative source paths are made absolute against the
    compile's directory (the script's `cd`);
  - the importcfg keeps its `importmap` lines and the import path of each `packagefile`
    line, not where the file is: the key holds the import's export data instead.
Export data is hashed without its `build id` header line (`export_data_sha`): the
dependency's archive gets its final build ID only after its compile.

A prediction whose compile reads a file another action makes first (cgo's generated Go
files, `-symabis` from asm) has `work_inputs`: its key can be known only once those exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fgo import goarchive, toolchain
from fgo import compilecall

_HEADER = re.compile(r"^# (\S+)$")
_HEREDOC = re.compile(r"^cat >(\S+) << 'EOF'")
_ECHO_CFG = re.compile(r"^echo '(.*)' > (\S+)")
_ACTION_DIR = re.compile(r"\$WORK/b\d+")
_BUILD_ID_LINE = re.compile(rb"^build id \"[^\"\n]*\"\n", re.MULTILINE)

# Compile flags whose value is a file the compile reads (the importcfg and embedcfg, which
# the script writes itself, are keyed by their text).
INPUT_FLAGS = ("-symabis", "-pgoprofile", "-coveragecfg")


class PredictError(ValueError):
    """`go build -n` output that cannot be parsed."""


@dataclass(frozen=True)
class Prediction:
    """One compile of the planned build."""

    package: str                   # import path (the script's "# path" header, else -p)
    p: str                         # the -p value ("main" for a main package)
    argv: tuple[str, ...]          # normalized command line
    cwd: str
    sources: tuple[str, ...]       # absolute paths of the .go files, in command-line order
    imports: tuple[str, ...]       # import paths of the importcfg's packagefile lines
    importcfg: str                 # normalized importcfg text
    embedcfg: str | None = None    # the embedcfg text, if any
    inputs: tuple[str, ...] = ()   # other files read (INPUT_FLAGS values, embedded files), normalized
    work_inputs: tuple[str, ...] = field(default=())  # inputs made by earlier actions ($WORK)
    # where each import's archive is (normalized): "$WORK/b/..." if this build makes it,
    # else a file that exists already (GOCACHE, a GOPATH pkg dir)
    import_files: tuple[tuple[str, str], ...] = ()


def normalize_path(path: str, work: str | None = None) -> str:
    """PATH with the WORK dir as `$WORK` and its action dirs as `$WORK/b`."""
    if work:
        path = path.replace(work.rstrip("/"), "$WORK")
    return _ACTION_DIR.sub("$WORK/b", path)


def normalize_argv(argv: Sequence[str], cwd: str, work: str | None = None) -> tuple[str, ...]:
    """A compile command line as it is keyed (see the module docstring)."""
    out = [os.path.basename(argv[0])]
    skip = False
    for i, a in enumerate(argv[1:], 1):
        if skip:
            skip = False
            continue
        if a == "-buildid" and i + 1 < len(argv):
            out += ["-buildid", "$BUILDID"]
            skip = True
        elif a.startswith("-buildid="):
            out.append("-buildid=$BUILDID")
        elif re.fullmatch(r"-c=\d+", a):
            continue
        elif a.endswith(".go") and not a.startswith("-"):
            absolute = os.path.isabs(a) or a.startswith("$WORK")  # the script's spelling
            out.append(normalize_path(a if absolute else os.path.normpath(os.path.join(cwd, a)), work))
        else:
            out.append(normalize_path(a, work))
    return tuple(out)


def normalize_importcfg(text: str) -> tuple[str, tuple[str, ...]]:
    """(the importcfg without packagefile locations, the packagefile import paths in order)."""
    lines, imports = [], []
    for line in text.splitlines():
        if line.startswith("packagefile "):
            path = line[len("packagefile "):].split("=", 1)[0]
            imports.append(path)
            lines.append(f"packagefile {path}")
        elif line.strip() and not line.startswith("#"):
            lines.append(line)
    return "\n".join(lines) + "\n", tuple(imports)


def packagefiles(text: str, work: str | None = None) -> dict[str, str]:
    """An importcfg's packagefile lines: import path -> archive path (normalized)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("packagefile ") and "=" in line:
            path, file = line[len("packagefile "):].split("=", 1)
            out[path] = normalize_path(file, work)
    return out


def parse(script: str) -> dict[str, Prediction]:
    """Every compile in SCRIPT, keyed by import path: `go build -n` output, or the `-x`
    output of a real build (its `WORK=` line names the WORK dir to normalize; it has no
    `# path` headers, so there the key is the compile's -p, "main" for a command).
    Two compiles under one key: the later wins."""
    files: dict[str, str] = {}
    preds: dict[str, Prediction] = {}
    package, cwd, work = "", "", None
    lines = script.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("WORK=") and work is None:
            work = line[len("WORK="):].strip()
            continue
        if work:
            line = line.replace(work, "$WORK")
        if m := _HEADER.match(line):
            package = m[1]
        elif line.startswith("cd "):
            cwd = line[3:].strip()
        elif m := _HEREDOC.match(line):
            text, i = heredoc(lines, i)
            if text is None:
                raise PredictError(f"unterminated here-document for {m[1]}")
            files[m[1]] = text.replace(work, "$WORK") if work else text
        elif m := _ECHO_CFG.match(line):
            files[m[2]] = m[1] + "\n"
        else:
            argv = compile_argv(line)
            if argv is None:
                continue
            pred = _prediction(package or (compilecall.flag_value(argv, "-p") or ""), argv, cwd, files)
            preds[pred.package] = pred
            package = ""
    return preds


def heredoc(lines: Sequence[str], start: int) -> tuple[str | None, int]:
    """The text of the here-document whose body starts at LINES[START], and the index of
    the line after it (None if it never ends). go prints a file it writes as
    `cat >FILE << 'EOF' # internal`, the text, `EOF`, with no newline of its own between:
    a text without a final newline (an embedcfg, which is indented JSON) runs into its
    `EOF`, `}EOF`, which a shell would not end the document at but go means to."""
    for end in range(start, len(lines)):
        if lines[end] == "EOF":
            return "".join(f"{x}\n" for x in lines[start:end]), end + 1
        if lines[end].endswith("EOF"):
            return "\n".join([*lines[start:end], lines[end][:-len("EOF")]]), end + 1
    return None, len(lines)


_PLAIN_WORD = re.compile(r'(?:[^\s"]+|"[^"]*")+')


def compile_argv(line: str) -> list[str] | None:
    """LINE's words as the shell reads them, if it runs the compiler; else None.
    shlex.split, which reads a character at a time, only where it is needed: a script's
    other lines are skipped by their first word, and a compile's words are read by a
    pattern unless they hold what only a shell reads (single quotes, backslashes, `#`)."""
    first = line.split(None, 1)[0] if line.strip() else ""
    if first and not any(c in first for c in "'\"\\#") \
            and os.path.basename(first) != "compile":
        return None
    if any(c in line for c in "'\\#") or line.count('"') % 2:
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PredictError(f"cannot parse {line[:80]!r}: {exc}") from None
    else:
        argv = [w.replace('"', "") for w in _PLAIN_WORD.findall(line)]
    return argv if argv and os.path.basename(argv[0]) == "compile" else None


def predict_request(package: str, argv: Sequence[str], cwd: str, work: str,
                    files: Mapping[str, str]) -> Prediction:
    """A real compile request as a Prediction, to key it like one: ARGV and FILES (the
    importcfg's and embedcfg's text by path) with go build's WORK dir as `$WORK`."""
    def norm(text: str) -> str:
        return text.replace(work.rstrip("/"), "$WORK")
    return _prediction(package, [norm(a) for a in argv], cwd,
                       {norm(path): norm(text) for path, text in files.items()})


def _prediction(package: str, argv: list[str], cwd: str, files: Mapping[str, str]) -> Prediction:
    cfg_path = compilecall.flag_value(argv, "-importcfg")
    if cfg_path is None or cfg_path not in files:
        raise PredictError(f"{package}: compile without a known importcfg")
    importcfg, imports = normalize_importcfg(files[cfg_path])
    embed_path = compilecall.flag_value(argv, "-embedcfg")
    norm = normalize_argv(argv, cwd)
    sources = tuple(a for a in norm[1:] if a.endswith(".go") and not a.startswith("-"))
    embedcfg = files.get(embed_path) if embed_path else None
    inputs = tuple(normalize_path(v) for f in INPUT_FLAGS if (v := compilecall.flag_value(argv, f))) + _embedded(embedcfg)
    work_inputs = tuple(x for x in (*sources, *inputs) if x.startswith("$WORK"))
    return Prediction(package=package, p=compilecall.flag_value(argv, "-p") or "", argv=norm, cwd=cwd,
                      sources=sources, imports=imports, importcfg=importcfg,
                      embedcfg=embedcfg,
                      inputs=inputs, work_inputs=work_inputs,
                      import_files=tuple(packagefiles(files[cfg_path]).items()))


def _embedded(embedcfg: str | None) -> tuple[str, ...]:
    """The files an embedcfg embeds (its "Files" values, sorted): their contents are inputs."""
    if not embedcfg:
        return ()
    try:
        files = json.loads(embedcfg).get("Files") or {}
    except (ValueError, AttributeError):
        raise PredictError("embedcfg is not JSON with a Files map") from None
    return tuple(sorted(normalize_path(v) for v in files.values()))


def export_data_sha(archive: bytes) -> str:
    """sha256 of an archive's export data (`__.PKGDEF`, up to its end) without the build ID
    line: the same for the early export file and the final archive of one compile."""
    end = goarchive.export_data_end(archive[:len(goarchive.MAGIC) + goarchive.HEADER_SIZE])
    if end is None:
        raise PredictError("not an archive starting with __.PKGDEF")
    return hashlib.sha256(_BUILD_ID_LINE.sub(b"", archive[:end], count=1)).hexdigest()


KEY_PARTS = ("command line", "sources", "imports' export data")
_DIFFER = ("command line differs", "sources differ", "imports' export data differs")


def key_parts(pred: Prediction, file_sha: Callable[[str], str],
              export_sha: Mapping[str, str]) -> tuple[str, str, str]:
    """The content key in its three parts (KEY_PARTS), so that a mismatch can say which
    differs. FILE_SHA(path) is the sha256 of a source or input file (for `$WORK` paths the
    caller resolves them); EXPORT_SHA[import path] the `export_data_sha` of each import."""
    missing = [p for p in pred.imports if p not in export_sha]
    if missing:
        raise KeyError(f"{pred.package}: no export data for {', '.join(missing)}")
    command, files, imports = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    for part in ("\0".join(pred.argv), pred.importcfg, pred.embedcfg or ""):
        command.update(part.encode() + b"\n\x00")
    for path in (*pred.sources, *pred.inputs):
        files.update(f"{path} {file_sha(path)}\n".encode())
    for imp in pred.imports:
        imports.update(f"import {imp} {export_sha[imp]}\n".encode())
    return command.hexdigest(), files.hexdigest(), imports.hexdigest()


def content_key(pred: Prediction, file_sha: Callable[[str], str], export_sha: Mapping[str, str]) -> str:
    """The key a real compile request must have to take a speculative result (see
    `key_parts` for the arguments)."""
    return hashlib.sha256(":".join(key_parts(pred, file_sha, export_sha)).encode()).hexdigest()


def differs(ours: Sequence[str], theirs: Sequence[str]) -> str | None:
    """Which part of two keys' `key_parts` differs first (a miss's reason), or None."""
    return next((why for why, a, b in zip(_DIFFER, ours, theirs) if a != b), None)


def plan(go_args: Sequence[str], cwd: Path | str | None = None,
         env: dict[str, str] | None = None) -> dict[str, Prediction]:
    """`go build -n GO_ARGS` (the flags of the build to come) parsed into predictions."""
    proc = toolchain.run_go(["build", "-n", *go_args], cwd=cwd, env=env or toolchain.go_env(), check=False)
    if proc.returncode != 0:
        raise PredictError(f"go build -n: {toolchain.last_line(proc.stderr, 'failed')}")
    return parse(proc.stderr)
