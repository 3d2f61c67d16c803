"""`fgo cacheprog`: the program GOCACHEPROG runs (go's build cache, shared by the cluster)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from fgo import settings
from fgo.errors import FgoError

INDEX_POLL_S = 0.01  # how often a helper looks for the index its head is still reading


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@settings.click_options(settings.CACHEPROG)
@click.option("-v", "--verbose", "print_counters", is_flag=True,
              help="Print the counters on stderr at close.")
def cacheprog_cmd(print_counters: bool, **flags: object) -> None:
    """Serve go's build cache over stdin/stdout (GOCACHEPROG): a local tier beside GOCACHE,
    in front of a tier held by the cluster's workers. For plain go:

        GOCACHEPROG="fgo cacheprog --scheduler tcp://HEAD:8786" go build ./...
    """
    from fgo.cache import trust
    from fgo.cache.tier import running_namespace
    from fgo.cluster.connect import check_tls
    from fgo.cache.local import DiskTier, gocache_dir, local_root
    from fgo.cache.server import Server, environ_index, environ_outputs, environ_paths
    from fgo.report.record import cache_summary
    resolved = settings.resolve(Path.cwd(), flags, verb=settings.CACHEPROG)
    ns = running_namespace(dict(os.environ))
    local = DiskTier(local_root(gocache_dir(dict(os.environ)), ns))
    scheduler, limit = resolved["scheduler"], resolved["cache_timeout"]
    tls = settings.tls(resolved)
    check_tls(tls)  # bad input fails now; Dask is imported only if the cluster is needed
    key = None
    if scheduler:  # a head: the default key is made on first use
        path, create = trust.key_location(resolved["cache_key"], resolved["tls_key"])
        try:
            key = trust.load_key(path, create)
        except trust.CacheKeyError as exc:
            raise FgoError(f"--cache-key: {exc}", prefix="fgo cacheprog") from None
    pending, stats = environ_paths()
    # under fgo build, the head has installed fgo's service on the workers already
    install = pending is None
    index = environ_index()
    remote = (lambda: _connect(scheduler, tls, ns, limit, key, install, index)) \
        if scheduler else None
    server = Server(local, remote, limit, resolved["cache_size"], pending, stats, key=key,
                    recheck=resolved["cache_recheck"], outputs=environ_outputs())
    server.serve(sys.stdin.buffer, sys.stdout.buffer)
    if print_counters:
        print(f"fgo cacheprog: {cache_summary(server.counters.to_json())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # go waits for our stdout to close; a cluster request still hanging in a thread (a
    # frozen worker) must not keep this process alive
    os._exit(0)


def _connect(scheduler: str, tls: tuple[str | None, str | None, str | None], ns: str,
             limit: float, key: bytes, install: bool, index: Path | None) -> object:
    """The cluster tier. Under fgo build, from the index its head read (INDEX: a head still
    connecting writes it soon), and a client of its own only once a get needs an entry the
    index names (no Dask import, no second connection for a build whose misses the cluster
    cannot answer: a cold build, an edit); else connected now, its index loaded."""
    from fgo.cache.tier import ClusterTier

    def client() -> object:
        from fgo.cluster.connect import connect, tls_security
        service = None
        if install:
            from fgo.worker.service import CompileService
            service = CompileService()
        return connect(scheduler, timeout=max(5.0, 5 * limit), security=tls_security(tls),
                       service=service).client
    if index is not None:
        try:
            # a head still connecting writes it soon; the server gives up at its own limit
            _await_file(index, 10 * limit)
            tier = ClusterTier.from_file(index, ns, key)
        except (OSError, ValueError):
            pass  # asked again below
        else:
            tier.connector = client
            return tier
    tier = ClusterTier(client(), ns, key)
    tier.load_index(timeout=max(5.0, 5 * limit))
    return tier


def _await_file(path: Path, seconds: float) -> None:
    """Return once PATH exists, or after SECONDS (reading it then fails: OSError)."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(INDEX_POLL_S)
