"""go's build cache helper (GOCACHEPROG): what `fgo cacheprog` serves, and what fgo build
has go start for itself (`command`: this interpreter, without `site`, given its path and
the head's settings).

go starts its GOCACHEPROG for every build and waits for the helper's first answer before
it looks at its first package: the helper's start is on every build's path (a no-op's
0.2 s included). Under fgo build it starts here, with the settings its head resolved as
one JSON argument: no command line (click) and no settings resolution (pyproject.toml),
and the modules a cluster would need (Dask, the wire messages) only when it does.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from fgo.errors import FgoError

INDEX_POLL_S = 0.01  # how often a helper looks for the index its head is still reading
WANT_TRIES = 20      # rings of its head's doorbell before the helper waits without it


# The helper's start without `site` (-S), its module path given instead (-I: nothing from
# the environment or the working directory on it): `site` and an editable install's import
# hook were 22 of the 33 ms an interpreter took to start here, on every build's path.
BOOT = "import os,sys;sys.path[:]=sys.argv[1].split(os.pathsep);" \
       "from fgo.cache.helper import main;main(sys.argv[2:])"


def command(scheduler: str, tls: tuple[str | None, str | None, str | None], size: int,
            timeout: float, key: str, recheck: float) -> list[str]:
    """How fgo build has go start its helper: this interpreter, this fgo (found where this
    process finds it: `module_path`), and the settings its head resolved (SCHEDULER, TLS,
    the local tier's SIZE, the cluster tier's TIMEOUT, the heads' KEY file, the RECHECK
    rate)."""
    settings = {"scheduler": scheduler, "tls": list(tls), "size": size, "timeout": timeout,
                "key": key, "recheck": recheck}
    return [sys.executable, "-I", "-S", "-c", BOOT, os.pathsep.join(module_path()),
            json.dumps(settings, sort_keys=True)]


def module_path(path: list[str] | None = None, package_dir: str | None = None) -> list[str]:
    """The helper's sys.path: PATH (this process's, `site` included: Dask, when it connects)
    without the working directory, then the directory holding fgo PACKAGE_DIR (an editable
    install finds it through an import hook, not the path)."""
    import fgo
    path = sys.path if path is None else path
    root = os.path.dirname(os.path.dirname(os.path.abspath(package_dir or fgo.__file__)))
    out = [p for p in path if p and os.pathsep not in p]
    return out + [root] if root not in out else out


def main(argv: list[str]) -> None:
    """The helper of `command` (or `python -m fgo.cache.helper SETTINGS`): every error one
    line on stderr and a non-zero exit (go reports its cacheprog failed), never a
    traceback."""
    try:
        s = json.loads(argv[0])
        args = (s["scheduler"], tuple(s["tls"]), float(s["timeout"]), int(s["size"]),
                s["key"], s["tls"][2], float(s["recheck"]))
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        _fail(f"fgo cacheprog: bad settings from fgo build: {exc!r}", 2)
    taken = None
    if len(argv) > 1:  # exec'd by the cacheprog front, which served go until now
        from fgo.cache.front import handoff
        try:
            taken = handoff(argv[1])
        except ValueError as exc:
            _fail(f"fgo cacheprog: {exc}", 2)
    try:
        serve(*args, taken=taken)
    except FgoError as exc:
        _fail(exc.line(), exc.code)
    except Exception as exc:  # a bug of ours: still one line
        _fail(f"fgo cacheprog: internal error: {type(exc).__name__}: {exc}", 3)


def _fail(line: str, code: int) -> NoReturn:
    print(line, file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)


def serve(scheduler: str | None, tls: tuple[str | None, str | None, str | None],
          limit: float, size: int, cache_key: str | None, tls_key: str | None,
          recheck: float, service: Callable[[], object] | None = None,
          summary: Callable[[dict], str] | None = None, taken: Any = None) -> None:
    """Serve go's build cache over stdin/stdout until go closes it, then exit: a local tier
    beside GOCACHE, in front of the cluster tier of SCHEDULER (None: the local tier only).
    SERVICE makes fgo's worker service, installed on the workers when the helper connects
    itself (plain go; under fgo build its head has); SUMMARY, the counters' line on stderr
    at close; TAKEN, the fgo.cache.front.Handoff of a front that served go until now."""
    from fgo.cache import trust
    from fgo.cache.front import stamp_later
    from fgo.cache.local import DiskTier, gocache_dir, local_root, running_namespace
    from fgo.cache.server import (
        Server,
        environ_check_after,
        environ_index,
        environ_outputs,
        environ_paths,
        environ_revoked,
        environ_want,
    )
    from fgo.cluster.connect import check_tls
    ns = running_namespace(dict(os.environ))
    local = DiskTier(local_root(gocache_dir(dict(os.environ)), ns))
    check_tls(tls)  # bad input fails now; Dask is imported only if the cluster is needed
    key = None
    if scheduler:  # a head: the default key is made on first use
        path, create = trust.key_location(cache_key, tls_key)
        try:
            key = trust.load_key(path, create)
        except trust.CacheKeyError as exc:
            raise FgoError(f"--cache-key: {exc}", prefix="fgo cacheprog") from None
    pending, stats = environ_paths()
    # under fgo build, the head has installed fgo's service on the workers already
    install = service if pending is None else None
    index = environ_index()
    want = environ_want()
    remote = (lambda: _connect(scheduler, tls, ns, limit, key, install, index,
                               on_demand=want is not None)) if scheduler else None
    server = Server(local, remote, limit, size, pending, stats, key=key, recheck=recheck,
                    outputs=environ_outputs(),
                    want=_ringer(want, index) if want is not None else None,
                    check_after=environ_check_after(),
                    revocations_current=environ_revoked() is not None,
                    stamp_later=stamp_later)
    if taken is None:
        server.serve(sys.stdin.buffer, sys.stdout.buffer)
    else:
        from fgo.cache.front import stream
        server.adopt(taken)
        server.serve(stream(taken.unserved, sys.stdin.fileno()), sys.stdout.buffer,
                     greet=False)
    if summary is not None:
        print(f"fgo cacheprog: {summary(server.counters.to_json())}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # go waits for our stdout to close; a cluster request still hanging in a thread (a
    # frozen worker) must not keep this process alive
    os._exit(0)


def _ringer(want: Path, index: Path | None) -> Callable[[], None]:
    """What asks an fgo build head that connects on demand to connect: a ring of its
    doorbell WANT (once)."""
    from fgo.fileio import ring
    rung = False

    def ask() -> None:
        nonlocal rung
        if rung:
            return
        rung = True
        for _ in range(WANT_TRIES):
            if ring(want) or index is not None and index.exists():
                return  # (a head not listening yet: a moment later)
            time.sleep(INDEX_POLL_S)
    return ask


def _connect(scheduler: str, tls: tuple[str | None, str | None, str | None], ns: str,
             limit: float, key: bytes | None, install: Callable[[], object] | None,
             index: Path | None,
             on_demand: bool = False) -> object:
    """The cluster tier. Under fgo build, from the index its head read (INDEX: a head still
    connecting writes it soon; ON_DEMAND, one that connects only when something needs the
    cluster, perhaps never), and a client of its own only once a get needs an entry the
    index names (no Dask import, no second connection for a build whose misses the cluster
    cannot answer: a cold build, an edit); else connected now, its index loaded."""
    from fgo.cache.tier import ClusterTier

    def client() -> object:
        from fgo.cluster.connect import connect, import_distributed, tls_security
        import_distributed()  # before INSTALL imports fgo's worker service, which imports it
        service = install() if install is not None else None
        return connect(scheduler, timeout=max(5.0, 5 * limit), security=tls_security(tls),
                       service=service).client
    if index is not None:
        try:
            # a head still connecting writes it soon; the server gives up at its own limit
            _await_file(index, 10 * limit)
            tier = ClusterTier.from_file(index, ns, key)
        except FileNotFoundError:
            if on_demand:  # nothing asked the head to connect: neither does this helper
                raise RuntimeError("fgo build did not connect (nothing needed the "
                                   "cluster)") from None
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


if __name__ == "__main__":
    main(sys.argv[1:])
