"""The worker's HTTP server on a thread and loop of its own (issue 26): a page is answered while the
stream's loop is held; what belongs to the stream runs on the stream's loop; a port in use is a clear
error; stopping runs the server's cleanup."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Sequence

import pytest
from aiohttp import web

from models.envelopes import Message
from ops.runtime.web_thread import StreamLoop, StreamLoopPublisher, WebThread, bind
from sinks.errors import StackError

DeadLetter = tuple[bytes, list[tuple[str, bytes]]]


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


class Server:
    """A WebThread serving /page (on its own loop) and /probe (on the stream's), with what ran where."""

    def __init__(self) -> None:
        self.stream = StreamLoop()
        self.ran_on: dict[str, int] = {}
        self.cleaned_up = threading.Event()
        app = web.Application()

        async def page(request: web.Request) -> web.Response:
            self.ran_on["page"] = threading.get_ident()
            return web.Response(text="page")

        async def on_stream() -> web.Response:
            self.ran_on["probe"] = threading.get_ident()
            return web.Response(text="probe")

        async def probe(request: web.Request) -> web.Response:
            return await self.stream.run(on_stream())

        async def cleanup(_: web.Application) -> None:
            self.cleaned_up.set()

        app.router.add_get("/page", page)
        app.router.add_get("/probe", probe)
        app.on_cleanup.append(cleanup)
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.thread = WebThread(self.sock, app, [], self.stream)


def test_a_page_is_answered_while_the_stream_loop_is_held_and_a_probe_waits_for_it() -> None:
    server = Server()

    async def stream_side() -> tuple[tuple[int, str], bool, tuple[int, str]]:
        await server.thread.start()
        # Blocking calls on the stream's loop hold it, as a long batch step would.
        page = get(server.port, "/page")
        try:
            get(server.port, "/probe", timeout=0.5)
            probe_waited = False
        except TimeoutError:
            probe_waited = True  # it needs the loop this very call holds
        probe = await asyncio.to_thread(get, server.port, "/probe")  # the loop free: answered
        await asyncio.to_thread(server.thread.stop)
        return page, probe_waited, probe

    stream_thread = threading.get_ident()
    page, probe_waited, probe = asyncio.run(stream_side())
    assert page == (200, "page") and server.ran_on["page"] != stream_thread
    assert probe_waited
    assert probe == (200, "probe") and server.ran_on["probe"] == stream_thread
    assert server.cleaned_up.is_set()  # stop ran the application's cleanup (the audit spool's drain)
    assert server.thread._thread is not None and not server.thread._thread.is_alive()


def test_the_collector_publishes_on_the_stream_loop() -> None:
    ran_on: list[int] = []

    class Producer:
        async def publish(
            self,
            messages: Sequence[Message],
            dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]] = (),
        ) -> None:
            ran_on.append(threading.get_ident())
            if not messages:
                raise RuntimeError("Kafka did not confirm")

    stream = StreamLoop()
    publisher = StreamLoopPublisher(Producer(), stream)

    async def from_another_loop() -> str:
        await publisher.publish([Message(0, b"m")])
        try:
            await publisher.publish([])
        except RuntimeError as error:  # the producer's failure reaches the caller, who answers 503
            return str(error)
        return "no error"

    async def stream_side() -> str:
        stream.attach(asyncio.get_running_loop())
        return await asyncio.to_thread(asyncio.run, from_another_loop())

    assert asyncio.run(stream_side()) == "Kafka did not confirm"
    assert len(ran_on) == 2 and len(set(ran_on)) == 1 and ran_on[0] == threading.get_ident()


def test_before_the_stream_runs_nothing_is_sent_to_it() -> None:
    async def work() -> int:
        return 1

    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(StreamLoop().run(work()))


def test_a_port_in_use_is_a_clear_error_naming_the_setting() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StackError, match="LDE_WEB_PORT") as caught:
            bind("127.0.0.1", port)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_stop_asked_before_the_server_is_up_still_stops_it() -> None:
    server = Server()

    async def start_after_stop() -> None:
        server.thread.stop()  # as a worker told to stop while still starting
        await server.thread.start()

    asyncio.run(start_after_stop())
    assert server.thread._thread is not None
    server.thread._thread.join(10)
    assert not server.thread._thread.is_alive()
    assert server.cleaned_up.is_set()
