"""How the verbs that wrap go build read their command line (pure; no I/O).

`fgo VERB [OPTIONS] [PROJECT] [-- GO_BUILD_ARGS...]`:
- everything after the first `--` goes to go build untouched, so a go flag
  such as `-o` is never taken for PROJECT;
- PROJECT defaults to `.`, as go build's package pattern does;
- an option with an optional value (`--split-large[=SECONDS]`) takes the next
  word only when it is a number: `--split-large PROJECT` splits PROJECT, and
  `--split-large 2.5 PROJECT` sets the threshold.
"""

from __future__ import annotations

from typing import Any

import click


def is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def bind_optional_values(args: list[str], options: frozenset[str]) -> list[str]:
    """Rewrite `--opt NEXT` as `--opt=auto NEXT` when NEXT is not a number.

    Click would otherwise take any non-option word after an option with an
    optional value as its value (`--split-large PROJECT`)."""
    out: list[str] = []
    for i, word in enumerate(args):
        nxt = args[i + 1] if i + 1 < len(args) else None
        if word in options and nxt is not None and not nxt.startswith("-") and not is_number(nxt):
            out.append(f"{word}=auto")
        else:
            out.append(word)
    return out


class GoArgsCommand(click.Command):
    """A click command shaped `[OPTIONS] [PROJECT] [-- GO_BUILD_ARGS...]`.

    The command declares `project` (optional, default ".") and a variadic
    `go_args`; the words after `--` are appended to `go_args` here, after
    click has parsed the rest."""

    optional_value_options: frozenset[str] = frozenset({"--split-large"})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head, tail = list(args), []
        if "--" in head:
            i = head.index("--")
            head, tail = head[:i], head[i + 1:]
        rest = super().parse_args(ctx, bind_optional_values(head, self.optional_value_options))
        go_param = next(p.name for p in self.params
                        if isinstance(p, click.Argument) and p.nargs == -1)
        ctx.params[go_param] = tuple(ctx.params.get(go_param) or ()) + tuple(tail)
        return rest


def go_args_command(**kwargs: Any) -> Any:
    """`@click.command` for a verb shaped like `fgo build`."""
    kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
    return click.command(cls=GoArgsCommand, **kwargs)
