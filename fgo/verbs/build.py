"""The `fgo build` verb (command-line surface only; the work is in builder.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fgo import config

from fgo.build import driver as builder
from fgo.cliargs import go_args_command


@go_args_command()
@click.argument("project", default=".")
@click.argument("go_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="An existing Dask scheduler (default: an embedded LocalCluster).")
@click.option("--workers", type=click.IntRange(1), help="Embedded cluster: number of workers.")
@click.option("--threads", type=click.IntRange(1), help="Embedded cluster: threads per worker [1].")
@click.option("--report", metavar="FILE.json", help="Write the JSON build report.")
@click.option("--trace", metavar="FILE.json", help="Write a Chrome trace of the build (Perfetto).")
@click.option("--check", is_flag=True, help="Also build with plain go build and compare hashes.")
@click.option("--timeout", type=click.FloatRange(1),
              help="Seconds before a remote compile is run locally instead [600].")
@click.option("--fallback-local", is_flag=True, default=None,
              help="If the scheduler cannot be reached, build locally instead of failing.")
@click.option("--tls-ca-file", metavar="PEM", help="TLS: CA certificate of the cluster.")
@click.option("--tls-cert", metavar="PEM", help="TLS: this client's certificate.")
@click.option("--tls-key", metavar="PEM", help="TLS: this client's private key.")
@click.option("--split-large", is_flag=False, flag_value="auto", metavar="[=SECONDS]",
              help="Split large packages' compiles into shards on several workers; SECONDS: "
                   "predicted compile time above which to split (0: every package; bare: "
                   "when the cost model predicts a gain). The next word is read as SECONDS "
                   "only when it is a number.")
@click.option("--shards", default="auto", show_default=True, metavar="K|auto",
              help="Shards per split package.")
@click.option("--verify-rate", type=float, default=None, metavar="R",
              help="Share of remote compiles also compiled on the head node and compared "
                   "while it has a core free (besides one early compile of each worker) "
                   "[0.03].")
@click.option("--verify-splits", type=click.Choice(["first", "always", "off"]), default=None,
              help="Compile a split package stock on the head node and compare: the first "
                   "time its inputs are seen, always, or never [first].")
@click.option("--shared-cache/--no-shared-cache", default=None,
              help="With --scheduler: go's build cache through fgo cacheprog, a local tier in "
                   "front of one held by the workers; verified builds publish to it [on].")
@click.option("--cache-size", metavar="BYTES", help="Local tier size limit, e.g. 5G [5G].")
@click.option("--cache-timeout", type=float, metavar="SECONDS",
              help="A cluster-tier request slower than this turns that tier off [2].")
@click.option("--pipeline/--no-pipeline", default=None,
              help="Start a package's dependents from its export data while its backend "
                   "still runs (speculative compiles, matched by content) [on with more "
                   "than one worker host].")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but go build's own output.")
@click.option("-v", "--verbose", is_flag=True, help="Print a line per compile fgo ran.")
def build(project: str, go_args: tuple[str, ...], report: str | None, trace: str | None,
          check: bool, split_large: str | None, shards: str, quiet: bool, verbose: bool,
          **flags: object) -> None:
    """Build the Go project in PROJECT (default: the current directory); arguments
    after -- go to go build as they are (package patterns, -o, -a, ...).

    Settings come from flags, else FGO_<NAME> environment variables (e.g.
    FGO_SCHEDULER), else [tool.fgo] in a pyproject.toml at or above PROJECT.
    """
    settings = config.resolve(Path(project).resolve(), flags)
    opts = builder.BuildOptions(
        project=project, go_args=list(go_args), scheduler=settings["scheduler"],
        workers=settings["workers"], threads=settings["threads"], report=report, trace=trace,
        check=check, quiet=quiet, verbose=verbose and not quiet,
        progress=sys.stdout.isatty(), task_timeout=settings["timeout"],
        fallback_local=settings["fallback_local"],
        tls=(settings["tls_ca_file"], settings["tls_cert"], settings["tls_key"]),
        split_large=split_large, shards=shards, verify_rate=settings["verify_rate"],
        verify_splits=settings["verify_splits"], shared_cache=settings["shared_cache"],
        cache_size=settings["cache_size"], cache_timeout=settings["cache_timeout"],
        pipeline=settings["pipeline"])
    sys.exit(builder.run(opts))
