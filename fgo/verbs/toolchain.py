"""`fgo toolchain`: build (once) and print the patched compiler."""

from __future__ import annotations

import json

import click

from fgo.errors import FgoError
from fgo.compiler import patched as compiler_patch
from fgo.toolchain import ToolchainError


@click.command("toolchain")
@click.option("--json", "as_json", is_flag=True, help="Print path, series hash and build time as JSON.")
def toolchain_cmd(as_json: bool) -> None:
    """Build the patched compiler if needed and print its path."""
    try:
        p = compiler_patch.ensure_compiler(log=lambda m: click.echo(m, err=True))
    except (ToolchainError, OSError) as exc:
        raise FgoError(str(exc), code=1, prefix="fgo toolchain") from None
    if as_json:
        click.echo(json.dumps({"compile": str(p.path), "series": p.series, "built": p.built,
                               "seconds": round(p.seconds, 2)}))
    else:
        click.echo(str(p.path))
