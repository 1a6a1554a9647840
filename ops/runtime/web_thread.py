"""The worker's HTTP server on a thread and event loop of its own (issue 26).

Measured at 30,000 students, the stream's own steps hold its event loop up to about 0.4 s between two
awaits, so any page answered on that loop waited for them (a p95 above a second with fifty staff
browsing, even with the page itself made in another process). Here the worker's aiohttp server (the
staff surface, the collector, the probes) runs on a loop of its own in a thread of its own: a page
waits for the interpreter lock at most a switch interval, never for a batch. Work that belongs to the
stream runs on the stream's loop through `StreamLoop`: the probes (a stuck stream is not live), the
administrators' actions (the job runner's locks live there) and the collector's publishing (the
worker's producer). The listening socket is bound before the worker starts (`bind`), so a port in
use is a clear error at start, not a traceback later.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from aiohttp import web

from models.envelopes import Message
from sinks.errors import StackError
from sinks.kafka import EnvelopeSender

log = logging.getLogger("lde.service")

_Result = TypeVar("_Result")

#: How long `stop` waits for the server to finish its answers and its cleanup (the audit spool's drain).
STOP_SECONDS = 15.0


class StreamLoop:
    """Runs coroutines on the stream's event loop from the web thread's, and awaits their results there
    (a cancelled request cancels the work on the stream's loop too)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def run(self, work: Coroutine[Any, Any, _Result]) -> _Result:
        if self.loop is None:  # a bug: the server starts only once the worker runs (WebThread.start)
            work.close()
            raise RuntimeError("the stream's event loop is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))


class StreamLoopPublisher:
    """The worker's publisher (sinks.kafka.WorkerPublisher: the stream's own producer) called from the
    web thread: each publish runs on the stream's loop, and its outcome comes back here."""

    def __init__(self, inner: EnvelopeSender, stream: StreamLoop) -> None:
        self.inner = inner
        self.stream = stream

    async def publish(
        self, messages: Sequence[Message], dead_letters: Sequence[tuple[bytes, list[tuple[str, bytes]]]] = ()
    ) -> None:
        await self.stream.run(self.inner.publish(messages, dead_letters))


def every(seconds: float, work: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """A task running `work` every `seconds` (Faust's timers run on the stream's loop; these on the web
    server's)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            await work()

    return loop


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use says which setting moves it (StackError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StackError(
            f"cannot listen on {host}:{port} ({error.strerror}): set LDE_WEB_PORT (or LDE_WEB_HOST) to a "
            "free address, or stop what holds it (is another `lde up` running?)"
        ) from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


class WebThread:
    """Serves `app` on `sock` from a daemon thread with its own event loop, `tasks` running beside it
    (the page views' refresh, the audit spool's drain, the loop's lag probe). `start` once the stream's
    loop runs; `stop` before the worker's own shutdown (the app's cleanup runs on the way out)."""

    def __init__(
        self,
        sock: socket.socket,
        app: web.Application,
        tasks: Sequence[Callable[[], Awaitable[None]]],
        stream: StreamLoop,
    ) -> None:
        self.sock = sock
        self.app = app
        self.tasks = tasks
        self.stream = stream
        # made before the thread starts, so a stop asked at any moment reaches it
        self.loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._serving = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start serving (called on the stream's loop, which the bridged routes will run on); returns
        once the server accepts requests, raises what stopped it from starting."""
        self.stream.attach(asyncio.get_running_loop())
        self._thread = threading.Thread(target=self._main, name="lde-web", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._serving.wait)
        if self._failure is not None:
            raise self._failure

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop serving and wait for the thread (blocking: call it on a thread of the stream's loop)."""
        loop, thread = self.loop, self._thread
        if not loop.is_closed():  # queued until the loop runs, if it does not yet
            with suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(self._stopped.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("web_thread_stop_timeout seconds=%s", timeout)

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to `start`, or logged when it happens later
            self._failure = error
            log.exception("web_thread_failed error=%r", error)
        finally:
            self._serving.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        await serve_until(self.app, self.sock, self.tasks, self._stopped, self._serving.set)


async def serve_until(
    app: web.Application,
    sock: socket.socket,
    tasks: Sequence[Callable[[], Awaitable[None]]],
    stopped: asyncio.Event,
    serving: Callable[[], None] = lambda: None,
) -> None:
    """Serve `app` on the bound `sock` with `tasks` running beside it (`serving` called once it
    accepts requests) until `stopped` is set; then the tasks are cancelled and the app's cleanup runs.
    The worker's web thread and `lde web` / `lde edge` (ops.runtime.standalone) alike."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    running = [asyncio.ensure_future(task()) for task in tasks]
    serving()
    try:
        await stopped.wait()
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
