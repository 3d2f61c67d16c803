"""`fgo verify [PROJECT] [-- GO_BUILD_ARGS]`: build several ways, compare, explain differences."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from fgo.cliargs import go_args_command
from fgo.errors import FgoError
from fgo.goflags import split_go_args, without_output_flag
from fgo.toolchain import ToolchainError
from fgo.verify.builds import (
    DEFAULT_VARIANTS,
    VARIANTS,
    VerifyError,
    render,
    report_dict,
    run_verify,
    variant_by_name,
)
from fgo.verify.goobj import GoobjError

PREFIX = "fgo verify"  # its errors' lines start so (exit status 2)


def variants_table() -> str:
    """The known variants, a line each (--list-variants, and --help's epilog)."""
    width = max(map(len, VARIANTS))
    return "\n".join(f"{v.name:<{width}}  {v.description}" for v in VARIANTS.values())


# \b keeps click from rewrapping the table
EPILOG = "\b\nVariants (-v NAME):\n" + "\n".join("  " + l for l in variants_table().splitlines())


@go_args_command(name="verify", epilog=EPILOG)
@click.argument("project", type=click.Path(path_type=Path), default=".")
@click.argument("go_build_flags", nargs=-1, type=click.UNPROCESSED)
@click.option("-p", "--pkg", "packages", multiple=True, metavar="PATTERN",
              help="Package pattern(s) to build (default: .).")
@click.option("-v", "--variant", "variant_names", multiple=True, metavar="NAME",
              help=f"Build variant (repeatable, in order; the first is the baseline; "
                   f"`-v go -v go` builds twice; `go:FLAGS` is go build with FLAGS). "
                   f"Default: {' '.join(DEFAULT_VARIANTS)}.")
@click.option("--list-variants", is_flag=True, help="List the known build variants and exit.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--keep", is_flag=True, help="Keep the build directories and caches.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to build (default: a temporary directory).")
@click.option("--timeout", type=float, default=None, help="Seconds allowed per go command.")
def verify_cmd(project: Path, go_build_flags: tuple[str, ...], packages: tuple[str, ...],
               variant_names: tuple[str, ...], list_variants: bool, as_json: bool, keep: bool,
               workdir: Path | None, timeout: float | None) -> None:
    """Build PROJECT several ways and explain any difference, down to the symbol.

    Each build uses a fresh, empty GOCACHE. Every package archive and binary is
    compared with the first build; for the first differing package the report
    names the archive member and the symbols that differ. Arguments after `--` go
    to every `go build`: flags, then package patterns (as with -p). Variants that
    vary the environment (go-otherdir, go-gomaxprocs1, go-p1, fgo-workers1/2) are
    held to byte identity with the baseline; go-otherdir adds -trimpath and
    -buildvcs=false to every build. Exit status: 0 all matched, 1 differences, 2
    bad input or a failed build.
    """
    if list_variants:
        click.echo(variants_table())
        return
    if not project.is_dir():
        raise FgoError(f"{project}: not a directory", prefix=PREFIX)
    names = list(variant_names) or DEFAULT_VARIANTS
    unknown = [n for n in names if variant_by_name(n) is None]
    if unknown:
        raise FgoError(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)}, "
                       "or go:FLAGS)", prefix=PREFIX)
    if len(names) < 2:
        raise FgoError("need at least two variants to compare", prefix=PREFIX)
    own_workdir = workdir is None
    root = workdir or Path(tempfile.mkdtemp(prefix="fgo-verify-"))
    say = (lambda s: click.echo(s, err=True)) if not as_json else (lambda s: None)
    try:
        try:
            chosen = [v for v in map(variant_by_name, names) if v is not None]
            flags, patterns = split_go_args(list(go_build_flags))
            flags = without_output_flag(flags)  # each variant writes into its own directory
            report = run_verify(project.resolve(), chosen,
                                [*packages, *patterns] or None, flags, root,
                                timeout=timeout, progress=say)
        except (VerifyError, GoobjError, ToolchainError) as exc:
            raise FgoError(str(exc), prefix=PREFIX) from None
        except (OSError, subprocess.SubprocessError) as exc:  # e.g. a timeout: one line
            raise FgoError(f"{type(exc).__name__}: {exc}", prefix=PREFIX) from None
        if as_json:
            click.echo(json.dumps(report_dict(report), indent=1))
        else:
            click.echo(render(report))
    finally:
        if own_workdir and not keep:
            shutil.rmtree(root, ignore_errors=True)
        elif not as_json:
            click.echo(f"(builds kept in {root})", err=True)
    sys.exit(0 if report.matched else 1)
