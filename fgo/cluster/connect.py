"""Connecting to a Dask cluster: an existing scheduler, or an embedded LocalCluster.

`connect` installs SERVICE, the caller's Dask WorkerPlugin (fgo.worker.service's, which
this package does not import: the worker side depends on this one, not the reverse), on
every worker, present and future.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fgo.cluster.deadline import INSTALL_S, SCHEDULER_S, Late, within

# the longest a connect may take: the client's and the workers' (5 s each), the service's
# and the optional plugins' installs, the dashboard's two questions
CONNECT_S = 4 * SCHEDULER_S + 4 * INSTALL_S


class ClusterError(Exception):
    """The cluster cannot be reached or has no workers."""


@dataclass
class Cluster:
    client: Any                  # distributed.Client
    local: Any | None            # the embedded LocalCluster, if we started one
    scheduler: str               # address, for the report
    dashboard: str | None

    def close(self) -> None:
        _silence("distributed", logging.CRITICAL + 1)  # shutdown chatter is not the user's news
        try:
            self.client.close(timeout=5)
        finally:
            if self.local is not None:
                self.local.close(timeout=5)


# Dask's housekeeping, tuned for a build. The embedded cluster shares the fgo process (and
# its GIL) with the head, and its periodic callbacks cost more than the compiles'
# own dispatch: the worker's statistical profiler samples every thread each 10 ms, the
# event-loop tick runs every 20 ms per server, the memory and system monitors poll psutil
# several times a second. None of it serves a build: compiles are pinned to their worker
# (nothing to steal), hold little memory, and fgo keeps its own timings.
# The same for a running `dask worker` and its nanny (fgo.worker.service): periodic
# callback -> its interval in ms, or None: stopped.
HOUSEKEEPING_MS: dict[str, float | None] = {
    "profile": None, "profile-cycle": None,
    "tick": 1000, "monitor": 5000, "memory_monitor": 1000,
}
BUILD_CONFIG = {
    "distributed.admin.large-graph-warning-threshold": "1GB",  # tasks carry their inputs
    "distributed.worker.daemon": False,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": f"{HOUSEKEEPING_MS['tick']:g}ms",
    "distributed.admin.system-monitor.interval": f"{HOUSEKEEPING_MS['monitor']:g}ms",
    "distributed.worker.memory.monitor-interval": f"{HOUSEKEEPING_MS['memory_monitor']:g}ms",
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.deploy.cluster-repr-interval": "10s",
}


class EmbeddedCluster:
    """The embedded cluster, started by the first compile that needs it: a build that
    compiles nothing remotely never imports dask or starts worker processes, and costs
    what go build costs."""

    local = True
    dashboard = None

    def __init__(self, workers: int | None, threads: int,
                 service: Callable[[], Any] | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.service = service  # made when the cluster starts: the plugin imports dask
        self._cluster: Cluster | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._cluster is not None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._closed:  # the build is over: never start it after that
                raise ClusterError("the embedded cluster is closed")
            if self._cluster is None:
                import_distributed()  # before SERVICE imports fgo's worker service
                self._cluster = connect(None, self.workers, self.threads,
                                        service=self.service() if self.service else None)
            return self._cluster.client

    @property
    def scheduler(self) -> str | None:
        return self._cluster.scheduler if self._cluster else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._cluster is not None:
                self._cluster.close()


class BackgroundCluster:
    """A scheduler's cluster, connected in a thread once something needs it (`start`, or
    `wait` for its client) while go build runs, and sized meanwhile as the last build on it
    found it (WORKERS, THREADS per worker): what fgo.head.pool reads before its handshake.
    CONNECT makes the Cluster, with deadlines of its own; ERROR is why it could not, once
    it has ended. A rebuild that needs nothing of the cluster (a no-op: every get a local
    hit, nothing compiled for the workers, nothing put) never imports Dask, whose import
    on a two-core head competes with go build for the cores."""

    local = None

    def __init__(self, scheduler: str, connect: Callable[[], Cluster], workers: int,
                 threads: int) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.threads = threads
        self.error: ClusterError | None = None
        self._connect = connect
        self._cluster: Cluster | None = None
        self._begun = False                 # start() was called
        self._settled = threading.Event()   # ... or abandon()
        self._done = threading.Event()      # the connect has ended
        self._lock = threading.Lock()
        self._abandoned = False
        self.cpu_s: float | None = None     # the connect thread's own CPU (Dask's import),
        self.span: tuple[float, float] | None = None  # ... from and to (time.monotonic)

    def start(self) -> None:
        """Connect now, in the background (once; not after `abandon`)."""
        with self._lock:
            if self._begun or self._abandoned:
                return
            self._begun = True
            self._settled.set()
        threading.Thread(target=self._run, name="fgo-connect", daemon=True).start()

    def _run(self) -> None:
        cluster = None
        started, began = time.thread_time(), time.monotonic()
        try:
            cluster = self._connect()
        except ClusterError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - whatever it was, this cluster is not there
            self.error = ClusterError(f"cannot reach scheduler {self.scheduler}: "
                                      f"{type(exc).__name__}: {exc}")
        finally:
            self.cpu_s, self.span = time.thread_time() - started, (began, time.monotonic())
            with self._lock:
                abandoned = self._abandoned
                if not abandoned:
                    self._cluster = cluster
            self._done.set()
        if abandoned and cluster is not None:  # a build that ended without it: closed here
            cluster.close()

    @property
    def started(self) -> bool:
        return self._cluster is not None

    @property
    def begun(self) -> bool:
        return self._begun

    @property
    def connecting(self) -> bool:
        """Not connected yet: still connecting, or not asked to."""
        return not self._done.is_set()

    def wait_begun(self) -> bool:
        """Block until something asks for the cluster (True) or it is abandoned (False): for
        the threads that act once it is there."""
        self._settled.wait()
        return not self._abandoned

    def abandon(self) -> bool:
        """Give up the connect, not begun or still running (the build ended without needing
        it): `close` then returns at once, and a connect running closes what it makes. False
        when it had ended already."""
        with self._lock:
            if self._done.is_set():
                return False
            self._abandoned = True
            self.error = ClusterError(f"scheduler {self.scheduler}: not needed, not waited for")
            self._settled.set()
            return True

    def wait(self, timeout: float = CONNECT_S) -> Cluster:
        """The connected cluster (connecting it now if nothing had); ClusterError when it
        could not be (or not within TIMEOUT), or was abandoned."""
        self.start()
        if self._abandoned:
            raise self.error or ClusterError(f"scheduler {self.scheduler}: abandoned")
        if not self._done.wait(timeout):
            self.error = ClusterError(f"scheduler {self.scheduler} not connected within "
                                      f"{timeout:g}s")
        if self._cluster is None:
            raise self.error or ClusterError(f"cannot reach scheduler {self.scheduler}")
        return self._cluster

    @property
    def client(self) -> Any:
        return self.wait().client

    @property
    def dashboard(self) -> str | None:
        return self._cluster.dashboard if self._cluster is not None else None

    def close(self) -> None:
        if self._abandoned or not self._begun:
            return
        try:
            cluster = self.wait()
        except ClusterError:
            return
        cluster.close()


def import_distributed() -> None:
    """Import distributed as if numpy were absent, in a process that has imported neither.

    distributed imports numpy when it can only to allocate receive buffers uninitialized
    (distributed.protocol.utils.host_array); fgo's messages are bytes, never arrays, and
    numpy's import is 0.2-0.3 s of CPU in each head and cacheprog process, spent beside go
    build on the same cores. distributed supports running without numpy; numpy stays
    importable afterwards for anything else in the process."""
    if "distributed" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # `import numpy` raises ImportError
    try:
        import distributed  # noqa: F401
    finally:
        del sys.modules["numpy"]


def _configure_dask() -> None:
    import_distributed()
    import dask
    dask.config.set(BUILD_CONFIG)
    _silence("distributed", logging.ERROR)


def _silence(prefix: str, level: int) -> None:
    """Set LEVEL on PREFIX's logger and every child distributed configured on its own."""
    import distributed  # noqa: F401  (its import configures the loggers we override)
    for name in [prefix, *logging.root.manager.loggerDict]:
        if name == prefix or name.startswith(prefix + "."):
            logging.getLogger(name).setLevel(level)


def check_tls(tls: tuple[str | None, str | None, str | None]) -> bool:
    """Whether (--tls-ca-file, --tls-cert, --tls-key) ask for TLS; an FgoError when they
    cannot be used. Without Dask: a check at the start, before it is imported."""
    from fgo.errors import FgoError
    if not any(tls):
        return False
    if not all(tls):
        raise FgoError("TLS needs all of --tls-ca-file, --tls-cert and --tls-key")
    for path in tls:
        if not os.path.isfile(str(path)):
            raise FgoError(f"TLS file {path} does not exist")
    return True


def tls_security(tls: tuple[str | None, str | None, str | None]) -> Any:
    """distributed's Security from (--tls-ca-file, --tls-cert, --tls-key); None without TLS."""
    if not check_tls(tls):
        return None
    ca, cert, key = tls
    from distributed.security import Security
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key,
                    require_encryption=True)


def connect(scheduler: str | None, workers: int | None = None, threads: int = 1,
            timeout: float = 5.0, security: Any = None, service: Any = None,
            extras: Sequence[Any] = ()) -> Cluster:
    """SCHEDULER (tcp://host:port) or, when None, an embedded cluster sized to this machine;
    SERVICE (a WorkerPlugin) installed on its workers, and on a SCHEDULER's the EXTRAS
    plugins (optional: one that fails to install is left out)."""
    _configure_dask()
    from distributed import Client, LocalCluster
    if scheduler:
        if scheduler.startswith("tls://") and security is None:
            raise ClusterError(f"scheduler {scheduler} speaks TLS: give --tls-ca-file, "
                               "--tls-cert and --tls-key")
        try:
            client = Client(scheduler, timeout=timeout, security=security, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ClusterError(f"cannot reach scheduler {scheduler}: {exc}") from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            client.close()
            raise ClusterError(f"scheduler {scheduler} has no workers") from None
        install(client, service)
        for plugin in extras:
            try:
                within(INSTALL_S, client.register_plugin, plugin, what=f"installing {plugin.name}")
            except Exception:  # noqa: BLE001 - an optional nicety: the build goes on
                pass
        return Cluster(client, None, scheduler, _dashboard(client, remote=True))
    n = workers or os.cpu_count() or 1
    # Workers in processes of their own: their event loops, threads and result encoding
    # would otherwise share this process's GIL with the head and the scheduler.
    # No memory limit: a compile's memory is its own subprocess's.
    local = LocalCluster(n_workers=n, threads_per_worker=threads, processes=True,
                         memory_limit=0, dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(local, set_as_default=False)
    # the build decides splits from the workers it sees: see them all before it starts
    client.wait_for_workers(n, timeout=max(timeout, 60.0))
    install(client, service)
    return Cluster(client, local, local.scheduler_address, _dashboard(client, remote=False))


def install(client: Any, service: Any) -> None:
    """SERVICE (a WorkerPlugin; None: nothing) on every worker. The scheduler keeps the
    plugin before it asks the workers, so a worker that does not answer in time (stopped,
    frozen) gets it when it answers; a build's handshake leaves it out meanwhile."""
    if service is None:
        return
    try:
        within(INSTALL_S, client.register_plugin, service, what="installing fgo's service")
    except Late:
        pass
    except Exception as exc:  # e.g. workers without fgo installed
        client.close()
        raise ClusterError(f"cannot install fgo's service on the workers: "
                           f"{type(exc).__name__}: {exc}") from None


def dashboard_link(services: dict[str, Any], link: str, has_bokeh: bool) -> str | None:
    """LINK when the scheduler really serves a dashboard: it runs the "dashboard"
    service (not `--no-dashboard`) and has bokeh (without it /status only says so)."""
    return link if "dashboard" in services and has_bokeh else None


def _bokeh_importable() -> bool:
    import importlib.util
    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client: Any, remote: bool) -> str | None:
    try:
        services = within(SCHEDULER_S, client.scheduler_info,
                          what="the scheduler's info").get("services", {})
        if "dashboard" not in services:
            return None
        has_bokeh = within(SCHEDULER_S, client.run_on_scheduler, _bokeh_importable,
                           what="the scheduler") if remote else _bokeh_importable()
    except Exception:  # a slow scheduler, or one that refuses run_on_scheduler: claim none
        return None
    return dashboard_link(services, client.dashboard_link, has_bokeh)
