"""go build's own command-line arguments, read as go reads them (pure).

Several verbs take go build's arguments after `--` and must tell flags from
package patterns, or pass the flags to `go list`, which has no `-o`.
"""

from __future__ import annotations

# go build's flags that take a value as the next word (go help build, go1.27).
GO_VALUE_FLAGS = frozenset({
    "o", "p", "C", "asmflags", "buildmode", "compiler", "gccgoflags", "gcflags",
    "installsuffix", "ldflags", "mod", "modfile", "overlay", "pgo", "pkgdir", "tags",
    "toolexec", "covermode", "coverpkg", "debug-actiongraph", "debug-trace",
    "debug-runtime-trace",
})


def split_go_args(args: list[str]) -> tuple[list[str], list[str]]:
    """go build's ARGS as (flags, package patterns), the way go's flag package reads them:
    flags end at the first word that is not one (or at `--`)."""
    flags: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return flags, args[i + 1:]
        if not word.startswith("-") or word == "-":
            break
        flags.append(word)
        name = word.lstrip("-")
        if "=" not in name and name in GO_VALUE_FLAGS and i + 1 < len(args):
            flags.append(args[i + 1])
            i += 1
        i += 1
    return flags, args[i:]


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
