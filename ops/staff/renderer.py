"""Pages built from the precomputed view in a process of their own (issue 26).

In the embedded default the stream, the evaluator and the staff surface share one interpreter, and
the interpreter lock is the bottleneck, not the machine: measured at 30,000 students on the 2-core
machine, the worker used 0.88 of a core ingesting with no page clients and 1.05 with fifty, the
second core mostly idle, and the stream fell by a third. Every millisecond a page thread holds the
lock (ordering a scope, filling a template) is a millisecond the stream's event loop waits.

The caseload (and its CSV) is made from the precomputed view and the staff directory alone, so it can
be made elsewhere. `Renderer.call(build, state, ask)` runs `build(*state, ask)`, a pure module-level
function, in a renderer process: each new state (a rebuilt view, a reloaded directory) is sent to
it once, pickled by the standard library between this service's own processes, and every later
call sends only the small `ask` (viewer, filters) and gets back the page and the ids it shows. The
worker keeps what needs its stores: the audit of the read, the session's CSRF token, the answer.

With `processes=0` the same function runs on the calling page thread (`lde web` may choose it; the
tests compare both). A renderer that dies is started again on the next call, which re-sends the
state; a call that fails in the renderer raises here as it would have in the thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger("lde.web")

_Ask = TypeVar("_Ask")
_Result = TypeVar("_Result")

#: The longest a page waits for the renderer before it is an error (seconds): a page is tens of
#: milliseconds, a new 30,000-student view about a second to unpickle.
RENDER_TIMEOUT_SECONDS = 60.0


#: How much lower the renderer's scheduling priority is than the service's (os.nice).
RENDERER_NICENESS = 5
#: How often a renderer looks whether the service that started it is still there (seconds).
ORPHAN_CHECK_SECONDS = 1.0


class StaleState(Exception):
    """The renderer does not hold the state version asked for (it was started again, or a send
    failed): the caller sends the state with the call."""


#: In the renderer process: the state version it holds and the state itself.
_held: tuple[int, tuple[Any, ...]] | None = None


def _in_renderer(
    build: Callable[..., _Result], version: int, state: tuple[Any, ...] | None, ask: Any
) -> _Result:
    """The renderer's side of a call: keep a state sent with it, then build from the held one."""
    global _held
    if state is not None:
        _held = (version, state)
    if _held is None or _held[0] != version:
        raise StaleState(f"renderer holds version {_held and _held[0]}, asked for {version}")
    return build(*_held[1], ask)


def _same(state: tuple[Any, ...], sent: tuple[Any, ...] | None) -> bool:
    """Whether `state` is the very objects last sent (identity, not equality: a view is replaced,
    never changed, and comparing 30,000 rows would cost what the renderer saves)."""
    if sent is None or len(state) != len(sent):
        return False
    return all(a is b for a, b in zip(state, sent, strict=True))


def _start_renderer() -> None:
    """A renderer leaves interrupts to the service that owns it (which stops it on shutdown), yields
    the processor to it (on a machine short of cores the stream and its store come first), and ends
    when it is orphaned: a renderer holds its own queue's ends, so a service killed with SIGKILL would
    otherwise leave it waiting for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(RENDERER_NICENESS)
    watch = threading.Thread(target=_end_when_orphaned, args=(os.getppid(),), name="lde-renderer-watch")
    watch.daemon = True
    watch.start()


def _end_when_orphaned(parent: int, every: float = ORPHAN_CHECK_SECONDS) -> None:
    """Exit the renderer once its parent is gone (it is then adopted by another process)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


class Renderer:
    """Runs pure page builders over the service's current state in `processes` renderer processes
    (0: on the calling thread). Blocking: call it on a page thread."""

    def __init__(self, processes: int) -> None:
        if processes > 1:  # one holder of the state: the state is sent once, calls follow in order
            raise ValueError("at most one renderer process (the state is held once)")
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._sent: tuple[Any, ...] | None = None  # the objects last sent (held: no id is reused)
        self._version = 0
        self.restarts = 0

    def call(self, build: Callable[..., _Result], state: tuple[Any, ...], ask: Any) -> _Result:
        """`build(*state, ask)`, in the renderer when there is one. `build` must be a module-level
        function; `state` and `ask` picklable."""
        if self.processes == 0:
            return build(*state, ask)
        for attempt in range(2):
            executor, future = self._submit(build, state, ask, resend=attempt > 0)
            try:
                return future.result(RENDER_TIMEOUT_SECONDS)
            except StaleState:
                continue
            except BrokenProcessPool:
                self._discard(executor)
                if attempt:
                    raise
        raise RuntimeError("the renderer lost the state twice in a row")

    def _submit(
        self, build: Callable[..., _Result], state: tuple[Any, ...], ask: Any, resend: bool
    ) -> tuple[ProcessPoolExecutor, Future[_Result]]:
        """Queue the call, with the state when the renderer may not hold it; under the lock, so calls
        reach the renderer in the order their states were decided."""
        with self._lock:
            if self._executor is None:
                context = multiprocessing.get_context("spawn")  # chDB's and Kafka's threads: no fork
                self._executor = ProcessPoolExecutor(1, context, initializer=_start_renderer)
                self._sent = None
            held = _same(state, self._sent)
            if resend or not held:
                self._version += 1
                self._sent = state
            send = None if held and not resend else state
            return self._executor, self._executor.submit(_in_renderer, build, self._version, send, ask)

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """The renderer died (killed, out of memory): the next call starts another."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
                self._sent = None
                self.restarts += 1
                log.error("renderer_restarted restarts=%d", self.restarts)
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the renderer (the service is stopping)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
