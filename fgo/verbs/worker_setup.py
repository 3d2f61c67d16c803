"""`fgo worker-setup`: prepare workers so a first build does not pay for it.

Checks the pinned toolchain, builds the patched compiler (--split-large) and
creates the blob store, on this machine or on every worker of a cluster.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from fgo.errors import FgoError

SETUP_S = 900.0  # a worker builds the patched compiler in 1-3 minutes; one that is stopped never


def prepare() -> dict[str, Any]:
    """Run on one worker (or here): what it has, what it built."""
    from fgo import toolchain
    from dataclasses import asdict

    from fgo.compiler import patched as compiler
    from fgo.wire import Hello
    from fgo.worker import service
    t0 = time.monotonic()
    built = compiler.ensure_compiler()
    info = service.hello(Hello(toolchain.identity()), nthreads=1)
    return {"identity": asdict(info.identity), "store": info.store_id, "blobs": len(info.hashes),
            "patched_compiler": str(built.path), "patch_series": built.series[:12],
            "built": built.built, "seconds": round(time.monotonic() - t0, 2),
            "go": toolchain.go_version()}


@click.command("worker-setup", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--scheduler", envvar="FGO_SCHEDULER", metavar="tcp://HOST:PORT",
              help="Prepare every worker of this cluster (default: this machine).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def worker_setup(scheduler: str | None, as_json: bool) -> None:
    """Prepare this machine, or every worker of a cluster, for fgo builds."""
    from fgo.compiler.patched import PatchError
    if scheduler:
        from fgo.cluster.connect import ClusterError, connect
        try:
            cluster = connect(scheduler)
        except ClusterError as exc:
            raise FgoError(str(exc)) from None
        from fgo.cluster.deadline import per_worker, within
        try:
            client = cluster.client
            workers = sorted(within(SETUP_S, client.nthreads, what="the scheduler"))
            answers, late = per_worker(SETUP_S, lambda w: client.run(prepare, workers=[w])[w],
                                       workers)
        finally:
            cluster.close()
        failed = {w: f"{type(a).__name__}: {a}" for w, a in answers.items()
                  if isinstance(a, BaseException)}
        failed.update({w: f"did not answer within {SETUP_S:g}s" for w in late})
        for w, why in sorted(failed.items()):
            click.echo(f"fgo worker-setup: {w}: {why}", err=True)
        results = {w: a for w, a in answers.items() if not isinstance(a, BaseException)}
        if failed:
            _print(results, as_json)
            raise FgoError(f"{len(failed)} of {len(workers)} workers not prepared")
    else:
        try:
            results = {"local": prepare()}
        except PatchError as exc:
            raise FgoError(str(exc)) from None
    _print(results, as_json)


def _print(results: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(results, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    for where, r in results.items():
        click.echo(f"{where}: {r['go']}, patched compiler {r['patch_series']} "
                   f"({'built' if r['built'] else 'ready'} in {r['seconds']}s), "
                   f"store {r['store']} ({r['blobs']} blobs)")
