"""The `fgo build` verb (command-line surface only; the work is in builder.py)."""

from __future__ import annotations

import sys

import click

from fgo import builder


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("project")
@click.argument("go_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--scheduler", envvar="FGO_SCHEDULER", metavar="tcp://HOST:PORT",
              help="An existing Dask scheduler (default: an embedded LocalCluster).")
@click.option("--workers", type=click.IntRange(1), help="Embedded cluster: number of workers.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Embedded cluster: threads per worker.")
@click.option("--report", "report", metavar="FILE.json", help="Write the JSON build report.")
@click.option("--trace", metavar="FILE.json", help="Write a Chrome trace of the build (Perfetto).")
@click.option("--check", is_flag=True, help="Also build with plain go build and compare hashes.")
@click.option("--timeout", "task_timeout", type=click.FloatRange(1), default=600.0,
              show_default=True, help="Seconds before a remote compile is run locally instead.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but go build's own output.")
def build(project: str, go_args: tuple[str, ...], scheduler: str | None, workers: int | None,
          threads: int, report: str | None, trace: str | None, check: bool, task_timeout: float, quiet: bool) -> None:
    """Build the Go project in PROJECT; arguments after -- go to go build as they are."""
    opts = builder.BuildOptions(project=project, go_args=list(go_args), scheduler=scheduler,
                                workers=workers, threads=threads, report=report, trace=trace,
                                check=check, quiet=quiet, progress=sys.stdout.isatty(), task_timeout=task_timeout)
    sys.exit(builder.run(opts))
