"""fgo's compile channel (fgo.cluster.channel) on real sockets on 127.0.0.1: a task's
streamed messages and its answer reach the head in order, answers come back out of order
by id, a head without the worker's secret is never served, and a worker gone fails every
call still waiting (its caller then compiles locally)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fgo.cluster import channel


def _server(handlers: dict[str, channel.Handler]) -> channel.Server:
    return channel.Server("127.0.0.1", handlers, "s3cret")


def test_streamed_messages_then_the_answer_and_answers_by_id() -> None:
    release = threading.Event()

    def slow(message, reply):  # answers later, from another thread
        def later():
            release.wait(5)
            reply({"slow": message})
        threading.Thread(target=later).start()

    def chatty(message, reply):
        for i in range(3):
            reply({"part": i, "data": bytes(1 << 20)}, final=False)  # 1 MB each
        reply({"done": message})

    server = _server({"slow": slow, "chatty": chatty})
    link = channel.Channel("127.0.0.1", server.port, "s3cret")
    try:
        first = link.submit("slow", 1)
        seen: list[int] = []
        second = link.submit("chatty", 2, lambda m: seen.append(m["part"]))
        assert second.result(5) == {"done": 2} and seen == [0, 1, 2]
        assert not first.done()  # the slow one did not hold the other back
        release.set()
        assert first.result(5) == {"slow": 1}
    finally:
        link.close()
        server.close()


def test_a_raising_handler_and_an_unknown_op_are_answered_with_the_error() -> None:
    def boom(message, reply):
        raise ValueError("no such package")

    server = _server({"boom": boom})
    link = channel.Channel("127.0.0.1", server.port, "s3cret")
    try:
        with pytest.raises(channel.RemoteError, match="ValueError: no such package"):
            link.submit("boom", None).result(5)
        with pytest.raises(channel.RemoteError, match="no handler"):
            link.submit("nothing", None).result(5)
        assert link.closed is None  # the channel goes on
    finally:
        link.close()
        server.close()


def test_a_head_without_the_secret_is_never_served() -> None:
    called = threading.Event()
    server = _server({"op": lambda m, reply: (called.set(), reply(m))})
    try:
        wrong = channel.Channel("127.0.0.1", server.port, "guess")
        with pytest.raises(channel.ChannelClosed):
            wrong.submit("op", 1).result(5)
        with socket.create_connection(("127.0.0.1", server.port)) as raw:  # no secret:
            raw.sendall(channel.HEADER.pack(1 << 30))          # a huge first frame, refused
            raw.settimeout(5)
            assert raw.recv(1) == b""                         # closed, nothing allocated
        assert not called.is_set()
    finally:
        server.close()


def test_a_worker_gone_fails_every_call_waiting_and_later_ones() -> None:
    server = _server({"hang": lambda m, reply: None})  # never answers
    link = channel.Channel("127.0.0.1", server.port, "s3cret")
    waiting = [link.submit("hang", i) for i in range(3)]
    time.sleep(0.1)
    server.close()  # the worker's process ends: its connections close
    for future in waiting:
        with pytest.raises(channel.ChannelClosed):
            future.result(5)
    assert link.closed is not None
    with pytest.raises(channel.ChannelClosed):
        link.submit("hang", 4).result(1)


def test_a_stream_its_receiver_cannot_take_fails_that_call_alone() -> None:
    def chatty(message, reply):
        reply("part", final=False)
        reply({"done": message})

    server = _server({"chatty": chatty})
    link = channel.Channel("127.0.0.1", server.port, "s3cret")

    def refuse(part):
        raise ValueError("a chunk outside its outputs")
    try:
        with pytest.raises(ValueError, match="outside"):
            link.submit("chatty", 1, refuse).result(5)
        assert link.submit("chatty", 2).result(5) == {"done": 2}  # the channel goes on
    finally:
        link.close()
        server.close()
