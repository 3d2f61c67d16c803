"""fgo's own connection to a worker, for compiles: a socket and two threads, no event loop.

A compile over Dask's comms (fgo.cluster.rpc) crosses two event loops and four thread hops:
the head's dispatch thread hands the call to the client's loop, which writes it through
tornado's stream and Dask's framing (sizes, serializer hooks); the worker's loop reads it
and hands it to a thread, the answer goes back to the loop, and the client's loop hands it
to the waiting thread. Each wake-up costs 0.1-0.8 ms here, and the framing as much again:
together most of the CPU a remote compile costs outside its compiler (experiment 9's TCP
row). A channel carries a compile's task, its streamed messages and its answer as
length-prefixed msgpack frames on a socket of its own: the head's dispatch thread writes,
one reader thread a channel reads and completes the futures; on the worker one thread a
connection reads, stores a task's blobs, and hands it to the worker's task threads, which
write the streamed messages and the answer themselves.

Everything else (the handshake, cancels, promotes, shard fetches, the cache) stays on Dask's
comms, and so do compiles where a channel cannot be had: a worker on TLS (a channel would
be plaintext), one that offers none (an older fgo), or one whose channel fails to connect.
A worker's channel answers only a head that presents the secret it gave in its HelloReply
(over Dask's comms); the first frame must be that secret, small, within AUTH_S.

Frames: a 4-byte big-endian length, then msgpack (bytes as bin, lists as tuples, as Dask
reads them). Head -> worker {"id", "op", "message"}; worker -> head {"id", "message"} for
each streamed message, then {"id", "final": True, "message"} or {"id", "final": True,
"error"} (the handler raised).
"""

from __future__ import annotations

import concurrent.futures
import hmac
import itertools
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]

HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 31          # a task's blobs (a cold host's inputs) can be hundreds of MB
AUTH_FRAME = 256             # the first frame: the secret, nothing larger
AUTH_S = 5.0                 # a connection that does not present it within this is closed
CONNECT_S = 5.0


class ChannelClosed(ConnectionError):
    """The channel went away with an answer still to come (the worker died or closed it)."""


class RemoteError(RuntimeError):
    """The worker's handler raised: its text."""


SMALL = 64 << 10  # a frame below this goes out in one write, its header copied in front


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def send(sock: socket.socket, data: bytes) -> None:
    """DATA as one frame (the caller holds the socket's write lock). A large one (a task's
    blobs, an output's chunk) is not copied behind its header: two writes."""
    header = HEADER.pack(len(data))
    if len(data) < SMALL:
        sock.sendall(header + data)
    else:
        sock.sendall(header)
        sock.sendall(data)


def _read_exactly(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise ChannelClosed("the peer closed the channel")
        got += k
    return buf


def read_frame(sock: socket.socket, limit: int = MAX_FRAME) -> Any:
    """The next frame's object; ChannelClosed at the end of the stream (or a frame over
    LIMIT bytes: nothing fgo sends)."""
    (n,) = HEADER.unpack(_read_exactly(sock, HEADER.size))
    if n > limit:
        raise ChannelClosed(f"a frame of {n} bytes (at most {limit})")
    return msgpack.unpackb(_read_exactly(sock, n), raw=False, use_list=False)


def _quiet_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# --------------------------------------------------------------------- the head's end

class Channel:
    """The head's channel to one worker: `submit` from any thread, answered in a future."""

    def __init__(self, host: str, port: int, secret: str, timeout: float = CONNECT_S) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send(self.sock, pack({"secret": secret}))
        self.sock.settimeout(None)
        self._write = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[concurrent.futures.Future[Any],
                                       Callable[[Any], None] | None]] = {}
        self.closed: BaseException | None = None
        threading.Thread(target=self._read, name="fgo-channel", daemon=True).start()

    def submit(self, op: str, message: Any,
               on_stream: Callable[[Any], None] | None = None) -> concurrent.futures.Future[Any]:
        """MESSAGE (plain data) to the worker's handler OP; a future of its answer (plain
        data). Messages streamed before it go to ON_STREAM (plain data), on the channel's
        reader thread, in order."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self.closed is not None:
                future.set_exception(ChannelClosed(str(self.closed)))
                return future
            key = next(self._ids)
            self._pending[key] = (future, on_stream)
        future.add_done_callback(lambda f: self._forget(key) if f.cancelled() else None)
        try:
            frame = pack({"id": key, "op": op, "message": message})
            with self._write:
                send(self.sock, frame)
        except OSError as exc:
            self._fail(exc)
        return future

    def _forget(self, key: int) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def _read(self) -> None:
        try:
            while True:
                frame = read_frame(self.sock)
                key = frame["id"]
                with self._lock:
                    waiting = self._pending.get(key) if not frame.get("final") \
                        else self._pending.pop(key, None)
                if waiting is None:  # cancelled by its caller: its answer is dropped
                    continue
                future, on_stream = waiting
                if not frame.get("final"):
                    if on_stream is not None:
                        try:
                            on_stream(frame["message"])
                        except Exception as exc:  # noqa: BLE001 - that call fails, alone
                            self._forget(key)
                            _settle(future, exception=exc)
                elif "error" in frame:
                    _settle(future, exception=RemoteError(frame["error"]))
                else:
                    _settle(future, result=frame["message"])
        except Exception as exc:  # noqa: BLE001 - closed, reset, or a frame it cannot read
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """The channel is done: every call still waiting fails (its caller falls back)."""
        with self._lock:
            if self.closed is None:
                self.closed = exc
            pending, self._pending = list(self._pending.values()), {}
        for future, _ in pending:
            _settle(future, exception=ChannelClosed(f"channel lost: {exc}"))
        _quiet_close(self.sock)

    def close(self) -> None:
        self._fail(ChannelClosed("closed by the head"))


def _settle(future: concurrent.futures.Future[Any], result: Any = None,
            exception: BaseException | None = None) -> None:
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile
        pass


# ------------------------------------------------------------------- the worker's end

# op -> handler(message, reply): runs on the connection's reader thread; it answers (now
# or later, from any thread) with reply(message, final=True), streaming before that with
# reply(message, final=False). A handler that raises is answered with the error.
Reply = Callable[..., None]
Handler = Callable[[Any, Reply], None]


class Server:
    """A worker's channel: listens on HOST (any port), one reader thread a connection."""

    def __init__(self, host: str, handlers: dict[str, Handler], secret: str) -> None:
        self.handlers = handlers
        self.secret = secret
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.closing = False
        threading.Thread(target=self._accept, name="fgo-channel-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(sock,), name="fgo-channel-conn",
                             daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        write = threading.Lock()
        try:
            sock.settimeout(AUTH_S)
            hello = read_frame(sock, AUTH_FRAME)
            if not (isinstance(hello, dict) and isinstance(hello.get("secret"), str)
                    and hmac.compare_digest(hello["secret"], self.secret)):
                return
            sock.settimeout(None)
            with self._lock:
                self._conns.add(sock)
            while True:
                frame = read_frame(sock)
                self._dispatch(sock, write, frame)
        except (OSError, ValueError, msgpack.UnpackException):
            pass
        finally:
            with self._lock:
                self._conns.discard(sock)
            _quiet_close(sock)

    def _dispatch(self, sock: socket.socket, write: threading.Lock, frame: Any) -> None:
        key = frame["id"]

        def reply(message: Any = None, final: bool = True, error: str | None = None) -> None:
            out: dict[str, Any] = {"id": key, "message": message}
            if final:
                out["final"] = True
            if error is not None:
                out["error"] = error
            data = pack(out)
            try:
                with write:
                    send(sock, data)
            except OSError:
                pass  # the head is gone: nobody waits for it

        handler = self.handlers.get(frame.get("op"))
        if handler is None:
            reply(error=f"no handler {frame.get('op')!r}")
            return
        try:
            handler(frame["message"], reply)
        except Exception as exc:  # noqa: BLE001 - answered, as Dask answers a raising handler
            reply(error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self.closing = True
        _quiet_close(self.listener)
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            _quiet_close(sock)
