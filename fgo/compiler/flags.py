"""The flags the patch series adds to `go tool compile` (patches/go1.27.3/README.md).

They must come before the source files on a compile command line (Go's flag package stops
at the first non-flag), so the helpers here return flag lists and `with_flags` inserts
them right after the tool path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

EARLY_EXPORT = "-fgoexport"


def early_export(path: str | os.PathLike[str]) -> list[str]:
    """The flags that make the patched compiler write its early export data to PATH."""
    return [f"{EARLY_EXPORT}={os.fspath(path)}"]


def shard_flags(k: int, n: int, out: str | os.PathLike[str], plan: str | os.PathLike[str] | None = None,
                stats: str | os.PathLike[str] | None = None, lead_start: int | None = None) -> list[str]:
    """Flags for shard K of N (1 <= K < N; shard 0 is the leader's) writing its result to OUT.

    A shard writes nothing but OUT (it ignores -o, -linkobj, -asmhdr, -bench).
    """
    if not 0 < k < n:
        raise ValueError(f"shard {k} of {n}: want 0 < k < n (shard 0 is the leader)")
    flags = [f"-fgoshard={k}/{n}", f"-fgoout={os.fspath(out)}"]
    if plan is not None:
        flags.append(f"-fgoplan={os.fspath(plan)}")
    if stats is not None:
        flags.append(f"-fgostats={os.fspath(stats)}")
    return flags + lead_start_flags(lead_start)


def lead_start_flags(permille: int | None) -> list[str]:
    """The leader's starting load in the function assignment, in per mille of one shard's
    even share (None: the compiler's default, a seventh of the others' share). Every
    process of a split must get the same value: the assignment is in the fingerprint."""
    return [] if permille is None else [f"-fgoleadstart={permille}"]


def leader_flags(n: int, shard_files: Sequence[str | os.PathLike[str]], plan: str | os.PathLike[str] | None = None,
                 timeout: int = 600, stats: str | os.PathLike[str] | None = None,
                 lead_start: int | None = None) -> list[str]:
    """Flags for the leader of N shards; SHARD_FILES[i] is shard i+1's result file.

    The leader compiles shard 0 while it waits (up to TIMEOUT seconds) for the files to
    appear, then merges them and writes -o as a stock compile would.
    """
    if n < 2 or len(shard_files) != n - 1:
        raise ValueError(f"{n} shards need {n - 1} shard result files (n >= 2), got {len(shard_files)}")
    if any("," in os.fspath(f) for f in shard_files):
        raise ValueError("shard result paths must not contain ','")
    flags = [f"-fgoshard=0/{n}", f"-fgoleader={','.join(os.fspath(f) for f in shard_files)}",
             f"-fgotimeout={int(timeout)}"]
    if plan is not None:
        flags.append(f"-fgoplan={os.fspath(plan)}")
    if stats is not None:
        flags.append(f"-fgostats={os.fspath(stats)}")
    return flags + lead_start_flags(lead_start)


def with_flags(argv: list[str], flags: list[str], compiler: str | os.PathLike[str] | None = None) -> list[str]:
    """ARGV (a compile command line) with FLAGS inserted after the tool path, optionally
    running COMPILER instead of argv[0]."""
    return [os.fspath(compiler) if compiler is not None else argv[0], *flags, *argv[1:]]


def format_plan(entries: Iterable[tuple[int, str, int, str]]) -> str:
    """A plan file's text (-fgoplan): (shard, file, line, name) per function. FILE may be
    a path suffix; NAME ("" for any) is the Go name (e.g. "(*T).M") or the linker symbol
    name."""
    lines = ["# fgo shard plan: shard<TAB>file:line<TAB>name"]
    for shard, file, line, name in entries:
        if "\t" in file or "\t" in name or "\n" in file + name:
            raise ValueError("plan fields must not contain tabs or newlines")
        lines.append(f"{shard}\t{file}:{line}\t{name}")
    return "\n".join(lines) + "\n"


def write_plan(path: str | os.PathLike[str], entries: Iterable[tuple[int, str, int, str]]) -> None:
    """Write format_plan(ENTRIES) to PATH."""
    Path(path).write_text(format_plan(entries))
