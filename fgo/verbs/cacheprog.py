"""`fgo cacheprog`: the program GOCACHEPROG runs (go's build cache, shared by the cluster).
The serving is fgo.cache.helper's; fgo build starts that directly (no command line)."""

from __future__ import annotations

from pathlib import Path

import click

from fgo import settings


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@settings.click_options(settings.CACHEPROG)
@click.option("-v", "--verbose", "print_counters", is_flag=True,
              help="Print the counters on stderr at close.")
def cacheprog_cmd(print_counters: bool, **flags: object) -> None:
    """Serve go's build cache over stdin/stdout (GOCACHEPROG): a local tier beside GOCACHE,
    in front of a tier held by the cluster's workers. For plain go:

        GOCACHEPROG="fgo cacheprog --scheduler tcp://HEAD:8786" go build ./...
    """
    from fgo.cache.helper import serve
    from fgo.report.record import cache_summary
    resolved = settings.resolve(Path.cwd(), flags, verb=settings.CACHEPROG)
    serve(resolved["scheduler"], settings.tls(resolved), resolved["cache_timeout"],
          resolved["cache_size"], resolved["cache_key"], resolved["tls_key"],
          resolved["cache_recheck"], service=_compile_service,
          summary=cache_summary if print_counters else None)


def _compile_service() -> object:
    """fgo's worker service, for a helper that connects itself (imports Dask: only then)."""
    from fgo.worker.service import CompileService
    return CompileService()
