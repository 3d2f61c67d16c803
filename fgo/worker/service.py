"""A compile, asked of a worker directly: head -> worker -> head, one message each way.

A Dask task costs the head ~6 ms of CPU and ~20 ms of latency (measured: 300 trivial tasks
to two worker processes): the client, the scheduler's state machine, the worker's,
and a separate fetch of the result. A compile needs none of it: fgo already chose the
worker and ships the inputs with the task. So a whole compile goes as one RPC to a handler
this plugin installs on every worker (over Dask's own comms, TLS included), which runs
`executor.execute` in the worker's task threads and answers with the result (~0.8 ms of
head CPU and ~2 ms per call, same measurement). Split compiles still run as Dask tasks:
their leader collects shard futures through a distributed.Queue.

With pipelining (task.early_export) the handler writes an `ExportReady` on the same
connection as soon as the compiler has written the package's export data, then the
result: the head can start the package's dependents while its backend still runs. A
speculative compile (fgo.build.speculation) runs in threads of its own and only in the
worker's idle time (fgo.worker.idle), so that it never holds up a real one; `fgo_promote`
lets one that go build now waits for run as a real compile.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from distributed.diagnostics.plugin import WorkerPlugin
from distributed.protocol.serialize import Serialize, to_serialize

from fgo.worker import executor
from fgo.worker.idle import IDLE
from fgo.worker.protocol import CompileTask, ExportReady

HANDLER = "fgo_compile"
PROMOTE = "fgo_promote"
CACHE = "fgo_cache"   # the cluster cache tier's store_put, asked directly (fgo.cache.cluster)


class CompileService(WorkerPlugin):
    """Installs the `fgo_compile` handler on each worker (present and future)."""

    name = "fgo-compile-service"

    def setup(self, worker: Any) -> None:
        speculative = ThreadPoolExecutor(max(1, worker.state.nthreads),
                                         thread_name_prefix="fgo-speculative")

        async def serve(comm: Any, task: Any = None) -> Any:
            loop = asyncio.get_running_loop()
            task = unwrap(task)

            def on_export(ready: ExportReady) -> None:  # in the compile's thread
                asyncio.run_coroutine_threadsafe(comm.write(to_serialize(ready)), loop).result()

            # The worker's own task threads: a compile takes a slot like any task.
            pool = speculative if getattr(task, "speculative", False) \
                else worker.executors["default"]
            result = await loop.run_in_executor(pool, executor.execute, task, worker.address,
                                                on_export)
            return to_serialize(result)

        async def promote(output: str = "") -> bool:
            return IDLE.promote(output)

        async def cache_put(ns: str = "", entries: Any = None) -> int:
            from fgo.cache.cluster import store_put
            return await asyncio.get_running_loop().run_in_executor(
                None, store_put, ns, unwrap(entries))

        IDLE.threads = max(1, worker.state.nthreads)

        worker.handlers[HANDLER] = serve
        worker.handlers[PROMOTE] = promote
        worker.handlers[CACHE] = cache_put


def unwrap(message: Any) -> Any:
    """MESSAGE as sent: in-process (inproc://) comms hand over the Serialize wrapper."""
    return message.data if isinstance(message, Serialize) else message


async def promote(client: Any, address: str, output: str) -> bool:
    """Ask ADDRESS to run its speculative compile writing OUTPUT at normal priority."""
    return await getattr(client.rpc(address), PROMOTE)(output=output)


async def call(client: Any, address: str, task: CompileTask,
               on_export: Callable[[ExportReady], None] | None = None) -> Any:
    """TASK run by ADDRESS's handler, on the client's event loop; ON_EXPORT is given the
    early export data if it comes (called on the loop: it must not block)."""
    pool = client.rpc
    comm = await pool.connect(address)
    try:
        await comm.write({"op": HANDLER, "task": to_serialize(task), "reply": True},
                         on_error="raise")
        while True:
            message = unwrap(await comm.read())
            if not isinstance(message, ExportReady):
                break
            if on_export is not None:
                on_export(message)
    except BaseException:
        comm.abort()  # never reuse a connection with an answer still to come
        raise
    pool.reuse(address, comm)
    return message
