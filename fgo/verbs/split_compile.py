"""`fgo split-compile PROJECT -- PACKAGES`: the compiler patch's harness, stock vs shards + leader."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from fgo.errors import FgoError
from fgo.compiler.harness import PackageResult, SplitError, format_result, split_compile
from fgo.toolchain import ToolchainError


@click.command("split-compile", context_settings={"ignore_unknown_options": False})
@click.option("--shards", "-k", default=2, show_default=True, type=int, help="Processes per package (K).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every package's result.")
@click.option("--c", "conc", default=1, show_default=True, type=int, help="-c (backend goroutines) of every compile.")
@click.option("--gcflags", default="", help="Extra compile flags for every compile, e.g. '-dwarf=false'.")
@click.option("--timeout", default=600, show_default=True, type=int, help="Leader's wait for shard results (s).")
@click.option("--keep", type=click.Path(file_okay=False), default=None, help="Keep work files under this directory.")
@click.option("--alone", is_flag=True, help="Also time stock -c=2 and each split process alone (bound F+B/K+D).")
@click.argument("project", type=click.Path())
@click.argument("packages", nargs=-1, required=True)
def split_compile_cmd(shards: int, as_json: bool, conc: int, gcflags: str, timeout: int, keep: str | None,
                      alone: bool, project: str, packages: tuple[str, ...]) -> None:
    """Compile PACKAGES of PROJECT stock and as shards + leader; compare (PROJECT -- PACKAGES...)."""
    def progress(r: PackageResult) -> None:
        if not as_json:
            click.echo(format_result(r))

    try:
        if conc < 1:
            raise SplitError("--c must be at least 1")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
        results = split_compile(Path(project), list(packages), shards, c=conc, extra=gcflags.split(),
                                timeout=timeout, keep=Path(keep) if keep else None, alone=alone,
                                progress=progress)
    except (SplitError, ToolchainError, ValueError, OSError) as exc:
        raise FgoError(str(exc), prefix="fgo split-compile") from None
    ok = all(r.identical and not r.error for r in results)
    if as_json:
        click.echo(json.dumps({"shards": shards, "c": conc, "gcflags": gcflags, "all_identical": ok,
                               "packages": [dataclasses.asdict(r) for r in results]}, indent=1))
    else:
        n_ok = sum(1 for r in results if r.identical and not r.error)
        click.echo(f"{n_ok}/{len(results)} packages identical")
    sys.exit(0 if ok else 1)
