"""Command lines read as Go's flag package reads them (pure): go build's, and a tool's.

One parser for both: flags end at the first word that is not one (or at `--`); a flag
in VALUE_FLAGS takes the next word as its value unless written `-f=v`. The verbs that
take go build's arguments after `--` must tell flags from package patterns (and pass the
flags to `go list`, which has no `-o`); the head must find a compile's inputs and
outputs in its arguments (fgo.compilecall).
"""

from __future__ import annotations

from collections.abc import Collection

# go build's flags that take a value as the next word (go help build, go1.27).
GO_VALUE_FLAGS = frozenset({
    "o", "p", "C", "asmflags", "buildmode", "compiler", "gccgoflags", "gcflags",
    "installsuffix", "ldflags", "mod", "modfile", "overlay", "pgo", "pkgdir", "tags",
    "toolexec", "covermode", "coverpkg", "debug-actiongraph", "debug-trace",
    "debug-runtime-trace",
})

Flag = tuple[str, str | None, int, bool]  # name, value, index of the word holding it, -f=v form


class FlagError(ValueError):
    """A value flag at the end of the command line, without its value."""


def split_flags(args: list[str], value_flags: Collection[str]) -> tuple[list[Flag], int]:
    """The flags of ARGS, and the index of the first word after them (a file, a package
    pattern). FlagError: a flag of VALUE_FLAGS lacks its value."""
    flags: list[Flag] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return flags, i + 1
        if not word.startswith("-") or word == "-":
            break
        name, eq, value = word.lstrip("-").partition("=")
        if eq:
            flags.append((name, value, i, True))
        elif name in value_flags:
            if i + 1 >= len(args):
                raise FlagError(f"flag -{name} lacks a value")
            flags.append((name, args[i + 1], i + 1, False))
            i += 1
        else:
            flags.append((name, None, i, False))
        i += 1
    return flags, i


def split_go_args(args: list[str]) -> tuple[list[str], list[str]]:
    """go build's ARGS as (flags, package patterns)."""
    try:
        flags, first = split_flags(args, GO_VALUE_FLAGS)
    except FlagError:  # go itself will say so: all of it is flags
        return list(args), []
    end = flags[-1][2] + 1 if flags else 0
    words = args[:end] if first == 0 or args[first - 1] != "--" else args[:first - 1]
    return words, args[first:]


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of FLAG ("-p") in a tool's ARGV, given as `-p x` or `-p=x`; None if absent."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def with_flag_value(argv: list[str], flag: str, value: str) -> list[str]:
    """ARGV with the value of FLAG ("-o") replaced by VALUE, in whichever form it was given;
    KeyError when ARGV does not set FLAG."""
    out = list(argv)
    for i, a in enumerate(out):
        if a == flag and i + 1 < len(out):
            out[i + 1] = value
            return out
        if a.startswith(flag + "="):
            out[i] = f"{flag}={value}"
            return out
    raise KeyError(f"no {flag} flag")


def without_output_flag(flags: list[str]) -> list[str]:
    """FLAGS without `-o X`/`-o=X`: what `go list` accepts, or a build into a directory
    of its own."""
    out, skip = [], False
    for f in flags:
        if skip:
            skip = False
        elif f == "-o":
            skip = True
        elif not f.startswith("-o="):
            out.append(f)
    return out
