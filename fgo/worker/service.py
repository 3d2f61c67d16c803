"""The handlers fgo installs on every worker: the worker's end of fgo.cluster.rpc.

`CompileService` is a Dask WorkerPlugin; its setup adds one handler per fgo.wire op to the
worker (present and future workers alike: the scheduler keeps the plugin). Each handler
decodes its message (a message of another protocol version is answered with a clean
mismatch, never misread), runs the work in a thread and answers with plain data:

- hello: who this worker is (toolchain, store, threads, whether it shares the head's files);
- compile: a whole compile, a split's leader or one shard, in the worker's own task
  threads (a speculative one in threads of its own, in idle time only: fgo.worker.idle);
  with early export the package's export data is written on the connection before the
  answer;
- shard fetch: a leader, on another worker, takes a shard result kept here;
- cancel: stop a task or a split that the head no longer wants;
- promote: a speculative compile go build now waits for runs as a real one;
- cache put: a head publishes entries of the cluster cache tier this worker owns;
- cache stage: bodies no worker holds (a head's own compiles'), held until it publishes
  their entries;
- cache adopt: a head publishes entries whose bodies this worker holds (staged, or made
  from archives it compiled).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from distributed.diagnostics.plugin import NannyPlugin, SchedulerPlugin, WorkerPlugin

from fgo import __version__, toolchain, wire
from fgo.cache import held
from fgo.cluster import beacon, channel, rpc
from fgo.cluster.connect import HOUSEKEEPING_MS
from fgo.wire import (Cancel, CacheAdopt, CachePut, CacheStage, CacheStagePart, CompileResult,
                      CompileTask,
                      ExportReady, Hello, HelloReply, OutputChunk, Promote, ShardFetch,
                      ShardResult, Status)
from fgo.worker import executor, faults, runner, shard
from fgo.worker.idle import IDLE


def hello(message: Hello, nthreads: int,
          compile_channel: tuple[str, int, str] = ("", 0, "")) -> HelloReply:
    """This worker's answer to the head's Hello (COMPILE_CHANNEL: where its channel is)."""
    store = executor.worker_store()
    path, text = message.host_token
    return HelloReply(fgo_version=__version__, identity=toolchain.identity(),
                      store_id=f"{os.uname().nodename}:{store.root.resolve()}:{store.identity()}",
                      hashes=store.inventory(), nthreads=nthreads, cores=_cores(),
                      shares_files=bool(path) and _reads(path, text),
                      patched_series=_patched_series(), channel=compile_channel,
                      goroot_sources=(toolchain.goroot() / "src").is_dir())


def _patched_series() -> str:
    """The series of the patched compiler built on this worker, "" if none is (an
    automatic split sends its shards only to workers that have it)."""
    compiler = runner.on_demand()
    return compiler.series if compiler is not None and compiler.built() is not None else ""


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (run on each worker for the report)."""
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


def _reads(path: str, text: str) -> bool:
    try:
        with open(path) as f:
            return f.read() == text
    except OSError:
        return False


def _answer(message: Any) -> Any:
    """MESSAGE as plain data, as this worker speaks it (a fault may make it an older one)."""
    return faults.wire_version(wire.encode(message))


class CompileService(WorkerPlugin):
    """Installs fgo's handlers on each worker."""

    name = "fgo-compile-service"

    def setup(self, worker: Any) -> None:
        quiet_housekeeping(worker.periodic_callbacks)
        slow_heartbeat(worker.periodic_callbacks.get("heartbeat"))
        handlers = Handlers(worker)
        IDLE.threads = handlers.nthreads
        worker.handlers[wire.OP_HELLO] = handlers.hello
        worker.handlers[wire.OP_COMPILE] = handlers.compile
        worker.handlers[wire.OP_FETCH] = handlers.fetch
        worker.handlers[wire.OP_CANCEL] = handlers.cancel
        worker.handlers[wire.OP_PROMOTE] = handlers.promote
        worker.handlers[wire.OP_CACHE_PUT] = handlers.cache_put
        worker.handlers[wire.OP_CACHE_ADOPT] = handlers.cache_adopt
        worker.handlers[wire.OP_CACHE_STAGE] = handlers.cache_stage
        worker.handlers[wire.OP_CACHE_STAGE_PART] = handlers.cache_stage_part
        handlers.channel = _open_channel(worker, handlers)

    def teardown(self, worker: Any) -> None:
        if worker_closing(worker.status.name):
            held.clear()  # the archives it kept for a publish: no head can name them now
            runner.RUNNING.kill_speculations()
            if _channel is not None:
                _channel[0].close()


async def dask_setup(worker: Any) -> None:
    """`dask worker --preload fgo.worker.service`: the service installed as the worker
    starts, not at the first build's first call (their import was ~30 ms of a fresh
    worker's CPU beside that build's first compiles, and delayed its first answers). A
    head installs its plugin over this one as over another head's."""
    await worker.plugin_add(CompileService(), name=CompileService.name, catch_errors=False)


# This process's compile channel (server, secret), opened by the first setup: a second
# head installing the service again reaches the handlers of the last one through it.
_channel: tuple[channel.Server, str] | None = None


def _open_channel(worker: Any, handlers: Handlers) -> tuple[str, int, str]:
    """The worker's compile channel (fgo.cluster.channel) serving HANDLERS: (host, port,
    secret) for its HelloReply, or none (port 0) on a transport a plaintext socket would
    weaken (TLS) or one that is not TCP."""
    global _channel
    address = urlsplit(worker.address)
    if address.scheme != "tcp" or not address.hostname:
        return ("", 0, "")
    ops: dict[str, channel.Handler] = {wire.OP_COMPILE: handlers.compile_direct}
    if _channel is None:
        secret = secrets.token_hex(16)
        try:
            _channel = (channel.Server(address.hostname, ops, secret), secret)
        except OSError:
            return ("", 0, "")
    _channel[0].handlers = ops
    return (address.hostname, _channel[0].port, _channel[1])


def worker_closing(status: str) -> bool:
    """Whether a plugin's teardown is the worker's close (Dask's Status name), not another
    head installing the service again over this one while the worker runs: the archives
    kept for the first head's publish must stay then."""
    return status in ("closing", "closing_gracefully", "closed", "failed")


# A `dask worker` started as the README says runs Dask's default housekeeping (experiment
# 9's TCP row: two idle workers with their nannies take 12% of a core): the profiler samples
# every thread each 10 ms, the event-loop tick runs every 20 ms, the system and memory
# monitors poll psutil several times a second. A build's worker needs none of it at that
# pace: a host that compiles loses that share of its core. The intervals are the embedded
# cluster's (fgo.cluster.connect.HOUSEKEEPING_MS, set there before its workers start).


def housekeeping_plan(callbacks: dict[str, float]) -> dict[str, float | None]:
    """Of the periodic CALLBACKS (name -> interval, ms), those to stop (None) or slow down
    (the new interval); never made faster."""
    plan: dict[str, float | None] = {}
    for name, ms in callbacks.items():
        if name in HOUSEKEEPING_MS:
            want = HOUSEKEEPING_MS[name]
            if want is None or want > ms:
                plan[name] = want
    return plan


def quiet_housekeeping(periodic: dict[str, Any]) -> None:
    """Applies `housekeeping_plan` to a worker's tornado PeriodicCallbacks (a new interval
    takes effect from the next run). A stopped one leaves the dict too: a worker preloaded
    with the service (`dask_setup`) starts every callback in it only after its preloads,
    and started the profiler again."""
    for name, ms in housekeeping_plan({n: pc.callback_time for n, pc in periodic.items()}).items():
        if ms is None:
            periodic.pop(name).stop()
        else:
            periodic[name].callback_time = ms


# The worker's heartbeat to the scheduler: Dask asks for one each 0.5 s on a cluster of up
# to 10 workers, and sets that interval again from each answer. A heartbeat is a round
# trip carrying the worker's metrics: a sixth of a compiling worker's event-loop CPU (gin,
# all remote, py-spy). Nothing of fgo's waits on it (its calls have their own deadlines,
# a worker that dies closes its comms), and the scheduler gives up on a silent worker
# only after its worker-ttl, minutes.
HEARTBEAT_MS = 2000


def slow_heartbeat(heartbeat: Any, at_least_ms: float = HEARTBEAT_MS) -> None:
    """The worker's heartbeat PeriodicCallback made to run no more often than each
    AT_LEAST_MS, after every answer too (once: a second head installing the service again
    finds it done)."""
    if heartbeat is None or getattr(heartbeat.callback, "fgo_slowed", False):
        return
    beat = heartbeat.callback

    async def slowed() -> None:
        await beat()
        heartbeat.callback_time = max(heartbeat.callback_time, at_least_ms)

    slowed.fgo_slowed = True  # type: ignore[attr-defined]
    heartbeat.callback = slowed
    heartbeat.callback_time = max(heartbeat.callback_time, at_least_ms)


class QuietNanny(NannyPlugin):
    """The same for the nanny a `dask worker` runs beside its worker (measured idle here:
    2.5% of a core); never restarts the worker."""

    name = "fgo-quiet-nanny"
    restart = False

    def setup(self, nanny: Any) -> None:
        quiet_housekeeping(nanny.periodic_callbacks)


class QuietScheduler(SchedulerPlugin):
    """The same for a running `dask scheduler`, which often shares the head's cores
    (experiment 8: its CPU a build 2.6 s before, 0.3 s after). Its event-loop tick and
    system monitor only: work stealing and the rest serve Dask's tasks, which other clients
    of the same scheduler may send."""

    name = "fgo-quiet-scheduler"

    async def start(self, scheduler: Any) -> None:
        quiet_housekeeping(scheduler.periodic_callbacks)


class RevocationBeacon(SchedulerPlugin):
    """The scheduler's revocation beacon (fgo.cluster.beacon): a random token, renewed when
    revocations are sent and when a worker joins, answered to one plain TCP line on the
    scheduler's event loop. Installed once per scheduler (idempotent): another head's
    connect must not renew it. None on a TLS scheduler."""

    name = beacon.NAME
    idempotent = True

    def __init__(self) -> None:
        self.token = ""
        self.address = ""   # host:port of the listener, where clients reach the scheduler
        self.server: Any = None

    async def start(self, scheduler: Any) -> None:
        self.renew()
        url = urlsplit(scheduler.address)
        if url.scheme != "tcp" or not url.hostname:
            return  # TLS (or another comm): no beacon, heads read the revocations
        self.server = await asyncio.start_server(self._answer, url.hostname, 0)
        self.address = f"{url.hostname}:{self.server.sockets[0].getsockname()[1]}"

    def renew(self) -> None:
        self.token = secrets.token_hex(16)

    def add_worker(self, scheduler: Any = None, worker: Any = None) -> None:
        self.renew()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            asked = await asyncio.wait_for(reader.readline(), beacon.ANSWER_S)
            if asked == beacon.QUESTION:
                writer.write(f"{self.token}\n".encode())
                await writer.drain()
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()


class Handlers:
    """One worker's handlers (Dask calls each with the connection and the message)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.nthreads = max(1, worker.state.nthreads)
        self.speculative = ThreadPoolExecutor(self.nthreads, thread_name_prefix="fgo-speculative")
        self.channel: tuple[str, int, str] = ("", 0, "")

    async def hello(self, comm: Any = None, message: Any = None) -> Any:
        try:
            asked = wire.decode(message, Hello)
        except wire.ProtocolMismatch:
            asked = Hello(toolchain.identity())  # answer anyway: our version tells
        return _answer(await asyncio.get_running_loop().run_in_executor(
            None, hello, asked, self.nthreads, self.channel))

    def compile_direct(self, message: Any, reply: channel.Reply) -> None:
        """`compile` over the worker's channel, on its connection's thread: the blobs into
        the store as the task arrives (in the order the head sent its tasks), the compile
        in the worker's task threads, which answer on the channel themselves."""
        task = self._task(message)
        if isinstance(task, CompileResult):
            reply(_answer(task))
            return

        def send(streamed: ExportReady | OutputChunk) -> None:  # in the compile's thread
            reply(_answer(streamed), final=False)

        def run() -> None:
            try:
                result = executor.execute(task, self.worker.address, send, self._fetch, send)
            except Exception as exc:  # noqa: BLE001 - answered, as Dask answers a handler's
                reply(error=f"{type(exc).__name__}: {exc}")
                return
            reply(_answer(result))

        if task.blobs or task.blob_paths:
            executor.receive(task)
        self._pool(task).submit(run)

    def _task(self, message: Any) -> CompileTask | CompileResult:
        """MESSAGE as a CompileTask, or the answer to a task of another protocol."""
        try:
            return wire.decode(message, CompileTask)
        except wire.ProtocolMismatch as exc:
            return CompileResult(Status.PROTOCOL, self.worker.address, reason=str(exc))

    def _pool(self, task: CompileTask) -> Any:
        """The threads TASK runs in: the worker's own task threads (a compile takes a slot
        like any task), a speculation's of its own."""
        return self.speculative if task.speculative else self.worker.executors["default"]

    async def compile(self, comm: Any = None, message: Any = None) -> Any:
        loop = asyncio.get_running_loop()
        task = self._task(message)
        if isinstance(task, CompileResult):
            return _answer(task)

        def send(message: ExportReady | OutputChunk) -> None:  # in the compile's thread
            asyncio.run_coroutine_threadsafe(comm.write(_answer(message)), loop).result()

        # Its blobs into the store now, not when a thread takes it: another task may be
        # waiting for them (executor.receive). A refusal is answered when it runs (_admit).
        # Most tasks of a build bring none (the store has their inputs): no thread hop then.
        if task.blobs or task.blob_paths:
            await loop.run_in_executor(None, executor.receive, task)
        result = await loop.run_in_executor(self._pool(task), executor.execute, task,
                                            self.worker.address, send, self._fetch, send)
        return _answer(result)

    def _fetch(self, address: str, request: ShardFetch) -> ShardResult:
        """A shard's result for this worker's leader, from the worker that ran it."""
        if address == self.worker.address:
            return shard.fetch_here(request, address)
        data = asyncio.run_coroutine_threadsafe(
            rpc.call(self.worker.rpc, address, wire.OP_FETCH, request),
            self.worker.loop.asyncio_loop).result()
        return wire.decode(data, ShardResult)

    async def fetch(self, comm: Any = None, message: Any = None) -> Any:
        try:
            request = wire.decode(message, ShardFetch)
        except wire.ProtocolMismatch as exc:
            return _answer(ShardResult(Status.PROTOCOL, self.worker.address, reason=str(exc)))
        return _answer(await asyncio.get_running_loop().run_in_executor(
            None, shard.fetch_here, request, self.worker.address))

    async def cancel(self, comm: Any = None, message: Any = None) -> bool:
        try:
            cancel = wire.decode(message, Cancel)
        except wire.ProtocolMismatch:
            return False
        shard.RESULTS.drop(cancel.task_id)
        return runner.RUNNING.cancel(cancel.task_id)

    async def promote(self, comm: Any = None, message: Any = None) -> bool:
        try:
            return IDLE.promote(wire.decode(message, Promote).output,
                                runner.compile_nice(os.environ.get("FGO_COMPILE_NICE")))
        except wire.ProtocolMismatch:
            return False

    async def cache_put(self, comm: Any = None, message: Any = None) -> int:
        from fgo.cache.store import store_put
        put = wire.decode(message, CachePut)
        return await asyncio.get_running_loop().run_in_executor(
            None, store_put, put.ns, put.entries)

    async def cache_stage(self, comm: Any = None, message: Any = None) -> int:
        stage = wire.decode(message, CacheStage)
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: sum(held.keep_bytes(sha, body) for sha, body in stage.bodies.items()))

    async def cache_stage_part(self, comm: Any = None, message: Any = None) -> bool:
        part = wire.decode(message, CacheStagePart)
        return await asyncio.get_running_loop().run_in_executor(
            None, held.keep_part, part.output, part.offset, part.total, part.data)

    async def cache_adopt(self, comm: Any = None, message: Any = None) -> list[str]:
        from fgo.cache.store import store_adopt
        adopt = wire.decode(message, CacheAdopt)
        return await asyncio.get_running_loop().run_in_executor(
            None, store_adopt, adopt.ns, adopt.held)
