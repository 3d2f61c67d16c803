"""`fgo cacheprog`: the program GOCACHEPROG runs (go's build cache, shared by the cluster)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from fgo import config


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="The cluster whose workers hold the shared tier (default: local tier only).")
@click.option("--tls-ca-file", metavar="PEM", help="TLS: CA certificate of the cluster.")
@click.option("--tls-cert", metavar="PEM", help="TLS: this client's certificate.")
@click.option("--tls-key", metavar="PEM", help="TLS: this client's private key.")
@click.option("--cache-size", metavar="BYTES", help="Local tier size limit, e.g. 5G [5G].")
@click.option("--cache-timeout", type=float, metavar="SECONDS",
              help="A cluster request slower than this turns the cluster tier off [2].")
@click.option("-v", "--verbose", is_flag=True, help="Print the counters on stderr at close.")
def cacheprog_cmd(verbose: bool, **flags: object) -> None:
    """Serve go's build cache over stdin/stdout (GOCACHEPROG): a local tier beside GOCACHE,
    in front of a tier held by the cluster's workers. For plain go:

        GOCACHEPROG="fgo cacheprog --scheduler tcp://HEAD:8786" go build ./...
    """
    from fgo.build.cluster import tls_security
    from fgo.cache.cluster import running_namespace
    from fgo.cache.local import DiskTier, gocache_dir, local_root
    from fgo.cache.server import Server, environ_paths, summary
    settings = config.resolve(Path.cwd(), flags)
    ns = running_namespace(dict(os.environ))
    local = DiskTier(local_root(gocache_dir(dict(os.environ)), ns))
    scheduler, limit = settings["scheduler"], settings["cache_timeout"]
    security = tls_security((settings["tls_ca_file"], settings["tls_cert"],
                             settings["tls_key"]))
    remote = (lambda: _connect(scheduler, security, ns, limit)) if scheduler else None
    server = Server(local, remote, limit, settings["cache_size"], *environ_paths())
    server.serve(sys.stdin.buffer, sys.stdout.buffer)
    if verbose:
        print(f"fgo cacheprog: {summary(server.counters.to_json())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # go waits for our stdout to close; a cluster request still hanging in a thread (a
    # frozen worker) must not keep this process alive
    os._exit(0)


def _connect(scheduler: str, security: object, ns: str, limit: float) -> object:
    from fgo.build.cluster import connect
    from fgo.cache.cluster import ClusterTier
    cluster = connect(scheduler, timeout=max(5.0, 5 * limit), security=security)
    tier = ClusterTier(cluster.client, ns)
    tier.load_index(timeout=max(5.0, 5 * limit))
    return tier
