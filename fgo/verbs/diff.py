"""`fgo diff A B`: two archives, objects or binaries compared down to the symbol."""

from __future__ import annotations

import json
import sys

import click

from fgo.errors import FgoError
from fgo.verify.diff import compare_files, render, report_dict
from fgo.verify.goobj import GoobjError


@click.command("diff")
@click.argument("a", type=str)
@click.argument("b", type=str)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--ignore-buildid", is_flag=True,
              help="Treat differences confined to the build ID (and, for binaries, the build "
                   "info) as a match.")
@click.option("--all", "show_all", is_flag=True, help="List every differing symbol.")
def diff_cmd(a: str, b: str, as_json: bool, ignore_buildid: bool, show_all: bool) -> None:
    """Compare two package archives (`go build -o x.a PKG`), Go objects or binaries.

    Names the differing members (__.PKGDEF export data, _go_.o) and symbols in Go's
    spelling, with kind, size, first differing byte and relocation differences; for
    binaries, the sections and symbols that differ and what in the link caused it.
    Exit status: 0 identical (or equivalent with --ignore-buildid), 1 different,
    2 bad input.
    """
    try:
        res = compare_files(a, b, ignore_build_id=ignore_buildid, ignore_buildinfo=ignore_buildid)
    except GoobjError as exc:
        raise FgoError(str(exc), prefix="fgo diff") from None
    if as_json:
        click.echo(json.dumps(report_dict(res), indent=1))
    else:
        click.echo(render(res, max_symbols=10 ** 9 if show_all else 20))
    sys.exit(0 if res.matched else 1)
