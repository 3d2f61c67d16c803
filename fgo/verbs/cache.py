"""`fgo cache stats|trim|clear`: the local tier of this GOCACHE, and the cluster tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fgo import settings
from fgo.errors import FgoError

TIMEOUT_S = 30.0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cache_cmd() -> None:
    """The shared build cache (what `fgo cacheprog` serves): the local tier beside this
    GOCACHE, and with --scheduler the tier held by the cluster's workers."""


_options = settings.click_options(settings.CACHE, only=("scheduler", "tls_ca_file", "tls_cert",
                                                       "tls_key"))


def _local() -> tuple[Any, str]:
    from fgo import toolchain
    from fgo.cache.local import namespace
    from fgo.cache.local import DiskTier, local_root
    gocache = toolchain.run_go(["env", "GOCACHE"], check=False).stdout.strip()
    if not gocache or gocache == "off":
        raise FgoError("go has no build cache here (GOCACHE is off)")
    ns = namespace(toolchain.identity())
    return DiskTier(local_root(Path(gocache), ns)), ns


def _cluster(flags: dict[str, Any]) -> Any:
    """The cluster's client when --scheduler (or FGO_SCHEDULER...) names one, else None."""
    resolved = settings.resolve(Path.cwd(), flags, verb=settings.CACHE)
    if not resolved["scheduler"]:
        return None
    from fgo.cluster.connect import ClusterError, connect, tls_security
    security = tls_security(settings.tls(resolved))
    try:
        return connect(resolved["scheduler"], security=security)
    except ClusterError as exc:
        raise FgoError(str(exc)) from None


def _on_workers(cluster: Any, fn: Any, *args: Any) -> dict[str, Any]:
    try:
        return cluster.client.run(fn, *args, on_error="return", callback_timeout=TIMEOUT_S)
    finally:
        cluster.close()


@cache_cmd.command("stats")
@_options
def stats_cmd(**flags: Any) -> None:
    """Entries and bytes in each tier."""
    from fgo.cache import store as tier
    local, ns = _local()
    s = local.stats()
    click.echo(f"local {local.root}: {s['entries']} entries, {s['bytes'] / 1e6:.1f} MB")
    cluster = _cluster(flags)
    if cluster is None:
        return
    for worker, got in sorted(_on_workers(cluster, tier.store_stats, None).items()):
        if isinstance(got, BaseException):
            click.echo(f"cluster {worker}: unreachable ({type(got).__name__})")
            continue
        for name, st in sorted(got["namespaces"].items()):
            mark = "" if name == ns else " (another toolchain)"
            click.echo(f"cluster {worker} {name}: {st['entries']} entries, "
                       f"{st['bytes'] / 1e6:.1f} MB of {got['limit'] / 1e6:.0f} MB{mark}")


@cache_cmd.command("trim")
@_options
@click.option("--size", metavar="BYTES", help="Trim to this size instead of the limit, e.g. 1G.")
def trim_cmd(size: str | None, **flags: Any) -> None:
    """Remove least recently used entries down to the size limit."""
    from fgo.cache import store as tier
    from fgo.settings import parse_size
    try:
        limit = parse_size(size) if size is not None else None
    except ValueError as exc:
        raise FgoError(f"--size: {exc}") from None
    local, _ = _local()
    local_limit = limit if limit is not None else \
        settings.resolve(Path.cwd(), {}, verb=settings.CACHE)["cache_size"]
    click.echo(f"local: {len(local.trim(local_limit))} entries removed")
    cluster = _cluster(flags)
    if cluster is not None:
        for worker, got in sorted(_on_workers(cluster, tier.store_trim, limit).items()):
            click.echo(f"cluster {worker}: " + (f"unreachable ({type(got).__name__})"
                       if isinstance(got, BaseException) else f"{got} entries removed"))


@cache_cmd.command("clear")
@_options
def clear_cmd(**flags: Any) -> None:
    """Remove every entry (both tiers with --scheduler)."""
    from fgo.cache import store as tier
    local, _ = _local()
    click.echo(f"local: {local.clear()} entries removed")
    cluster = _cluster(flags)
    if cluster is not None:
        for worker, got in sorted(_on_workers(cluster, tier.store_clear).items()):
            click.echo(f"cluster {worker}: " + (f"unreachable ({type(got).__name__})"
                       if isinstance(got, BaseException) else f"{got} entries removed"))
