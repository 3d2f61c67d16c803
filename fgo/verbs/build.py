"""The `fgo build` verb (command-line surface only; the work is in fgo.head)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from fgo import settings
from fgo.cliargs import go_args_command


@go_args_command()
@click.argument("project", default=".")
@click.argument("go_args", nargs=-1, type=click.UNPROCESSED)
@settings.click_options(settings.BUILD)
def build(project: str, go_args: tuple[str, ...], **flags: object) -> None:
    """Build the Go project in PROJECT (default: the current directory); arguments
    after -- go to go build as they are (package patterns, -o, -a, ...).

    Settings come from flags, else FGO_<NAME> environment variables (e.g.
    FGO_SCHEDULER), else [tool.fgo] in a pyproject.toml at or above PROJECT.
    """
    from fgo.head import driver
    from fgo.head.options import BuildOptions
    resolved = settings.resolve(Path(project).resolve(), flags)
    resolved["verbose"] = resolved["verbose"] and not resolved["quiet"]
    opts = BuildOptions.of(project, list(go_args), resolved, progress=sys.stdout.isatty())
    code = driver.run(opts)
    sys.stdout.flush()
    sys.stderr.flush()
    # everything is closed by now; the interpreter's own teardown, with Dask's modules and
    # threads loaded, would add ~0.1 s to every build (a no-op's third of go's own time)
    os._exit(code)
