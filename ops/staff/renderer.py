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

Two renderers take turns so that no page waits while a new view loads (about a second to unpickle
and index at 30,000 students, which queued every page behind it): the *serving* one answers pages
while the *standby* one loads the new state, then they swap. Meanwhile pages are made from the state
the serving one holds, a view one rebuild older (the view is already up to its refresh old). A
state element derived from a held one by a small change (a triage action's one row:
`derived_from = (base, patch, args)`, `patch(base, *args)` equal to it) is not sent whole: the patch
is applied in the serving renderer, in order before the page, so the member of staff who acted sees
it on the next page.

With `processes=0` the same function runs on the calling page thread (`lde web` may choose it; the
tests compare both). A renderer that dies is started again on the next call, which re-sends the
state; a call that fails in the renderer raises here as it would have in the thread.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from streams.gc_pause import schedule_full_collections

log = logging.getLogger("lde.web")

_Result = TypeVar("_Result")

#: The longest a page waits for the renderer before it is an error (seconds): a page is tens of
#: milliseconds, a new 30,000-student view about a second to unpickle.
RENDER_TIMEOUT_SECONDS = 60.0
#: How much lower the renderer's scheduling priority is than the service's (os.nice).
RENDERER_NICENESS = 5
#: How often a renderer looks whether the service that started it is still there (seconds).
ORPHAN_CHECK_SECONDS = 1.0
#: The most patches sent in place of a state element; a longer chain is sent whole.
MAX_PATCHES = 16
#: How many of the latest distinct asks a standby renderer makes pages of before it serves.
WARM_ASKS = 8
#: How long after a failed load the next one is tried (seconds): pages go on from the serving state,
#: and a state that cannot load is not sent again to a new process for every page.
LOAD_RETRY_SECONDS = 10.0


class StaleState(Exception):
    """The renderer does not hold the state version asked for (it was started again, or a send
    failed): the caller sends the state with the call."""


@dataclass(frozen=True)
class Full:
    """A state sent whole."""

    state: tuple[Any, ...]


@dataclass(frozen=True)
class Patches:
    """Changes to the state held under `base`: element `index` becomes `patch(element, *args)`."""

    base: int
    steps: tuple[tuple[int, Callable[..., Any], tuple[Any, ...]], ...]


#: In the renderer process: the state version it holds and the state itself.
_held: tuple[int, tuple[Any, ...]] | None = None


def _hold(
    version: int,
    send: Full | Patches | None,
    warm: Sequence[tuple[Callable[..., Any], Any]] = (),
    collect: bool = False,
) -> int:
    """The renderer's side of a send: keep a state sent whole, or apply patches to the held one; then
    make the pages of `warm` (the latest asks) and throw them away, so that the caches a view fills
    on its first pages (a scope's filter choices, the cases gone up to a viewer) are full before it
    serves. With `collect` (a standby's load), then a full garbage collection, while no page waits:
    a renderer holds a whole view, and Python's own full collections of it (up to half a second,
    measured at 30,000 students) came in the middle of pages."""
    global _held
    if isinstance(send, Full):
        _held = (version, send.state)
    elif isinstance(send, Patches):
        if _held is None or _held[0] != send.base:
            raise StaleState(f"renderer holds version {_held and _held[0]}, patches are for {send.base}")
        elements = list(_held[1])
        for index, patch, args in send.steps:
            elements[index] = patch(elements[index], *args)
        _held = (version, tuple(elements))
    held = _held
    if held is not None:
        for build, ask in warm:
            try:
                build(*held[1], ask)
            except Exception:  # the page itself will say what is wrong when it is asked for
                log.debug("renderer_warm_failed", exc_info=True)
    if collect:
        gc.collect()
    return version


def _in_renderer(
    build: Callable[..., _Result], version: int, send: Full | Patches | None, ask: Any
) -> _Result:
    """The renderer's side of a call: take what is sent with it, then build from the held state."""
    _hold(version, send)
    if _held is None or _held[0] != version:
        raise StaleState(f"renderer holds version {_held and _held[0]}, asked for {version}")
    return build(*_held[1], ask)


def patches_between(held: tuple[Any, ...] | None, wanted: tuple[Any, ...]) -> list[Any] | None:
    """The patch steps that turn the `held` objects into `wanted` ([] when they are the very objects;
    None when some element is not derived from the held one within MAX_PATCHES). Identity, not
    equality: a view is replaced, never changed, and comparing 30,000 rows would cost what the
    renderer saves."""
    if held is None or len(held) != len(wanted):
        return None
    steps: list[Any] = []
    for index, (have, want) in enumerate(zip(held, wanted, strict=True)):
        chain: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = []
        while want is not have:
            derived = getattr(want, "derived_from", None)
            if derived is None or len(chain) == MAX_PATCHES:
                return None
            base, patch, args = derived
            chain.append((index, patch, tuple(args)))
            want = base
        steps.extend(reversed(chain))
    return steps


def _start_renderer() -> None:
    """A renderer leaves interrupts to the service that owns it (which stops it on shutdown), yields
    the processor to it (on a machine short of cores the stream and its store come first), and ends
    when it is orphaned: a renderer holds its own queue's ends, so a service killed with SIGKILL would
    otherwise leave it waiting for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.nice(RENDERER_NICENESS)
    schedule_full_collections()  # a full collection runs once per state loaded (_hold), not mid-page
    watch = threading.Thread(target=_end_when_orphaned, args=(os.getppid(),), name="lde-renderer-watch")
    watch.daemon = True
    watch.start()


def _end_when_orphaned(parent: int, every: float = ORPHAN_CHECK_SECONDS) -> None:
    """Exit the renderer once its parent is gone (it is then adopted by another process)."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


class _Slot:
    """One renderer process and the state it will hold once the work queued for it is done (its
    work runs in order: one process)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # chDB's and Kafka's threads: no fork
        self.executor = ProcessPoolExecutor(1, context, initializer=_start_renderer)
        self.state: tuple[Any, ...] | None = None  # the objects sent (held: no id is reused)
        self.version = 0
        self.loading: Future[int] | None = None  # the last whole state sent ahead of its pages

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _submitted(slot: _Slot, work: Callable[..., _Result], *args: Any) -> Future[_Result]:
    """`work(*args)` queued for the slot's renderer; a renderer found dead already gives a future
    failed with BrokenProcessPool, as one that dies later does."""
    try:
        return slot.executor.submit(work, *args)
    except BrokenProcessPool as error:
        failed: Future[_Result] = Future()
        failed.set_exception(error)
        return failed


class Renderer:
    """Runs pure page builders over the service's current state in renderer processes (`processes`
    1: a serving one and a standby one loading the next state; 0: on the calling thread).
    Blocking: call it on a page thread."""

    def __init__(
        self,
        processes: int,
        now: Callable[[], float] = time.monotonic,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        if processes > 1:  # one serving holder of the state: sent once, calls follow in order
            raise ValueError("at most one renderer process serving (the state is held once)")
        self.processes = processes
        self._lock = threading.RLock()  # a load done at once calls back on the thread that queued it
        self._serving: _Slot | None = None
        self._standby: _Slot | None = None
        self._version = 0
        self.restarts = 0
        self.loads = 0  # whole states sent
        self.stale_pages = 0  # pages made from the serving state while a newer one loaded
        self.now = now
        #: True while no new state may be sent (a day being judged in the worker: pickling a view
        #: would take the interpreter from the judgement); pages meanwhile come from the serving one
        self.paused = paused
        self._load_after = 0.0  # no load before this (a load failed)
        self._recent: dict[tuple[Callable[..., Any], Any], None] = {}  # the latest asks, oldest first

    def call(self, build: Callable[..., _Result], state: tuple[Any, ...], ask: Any) -> _Result:
        """`build(*state, ask)`, in the renderer when there is one. `build` must be a module-level
        function; `state` and `ask` picklable."""
        if self.processes == 0:
            return build(*state, ask)
        for attempt in range(2):
            slot, future = self._submit(build, state, ask, resend=attempt > 0)
            try:
                return future.result(RENDER_TIMEOUT_SECONDS)
            except StaleState:
                continue
            except BrokenProcessPool:
                self._discard(slot)
                if attempt:
                    raise
        raise RuntimeError("the renderer lost the state twice in a row")

    def _next(self) -> int:
        self._version += 1
        return self._version

    def _submit(
        self, build: Callable[..., _Result], state: tuple[Any, ...], ask: Any, resend: bool
    ) -> tuple[_Slot, Future[_Result]]:
        """Queue the call where the state is or will be held; under the lock, so work reaches each
        renderer in the order its states were decided."""
        with self._lock:
            self._remember(build, ask)
            serving = self._serving
            if serving is None or resend:  # the first call (or a lost state): send it with the page
                serving = self._serving = serving or _Slot()
                serving.state, serving.version = state, self._next()
                self.loads += 1
                return serving, self._page(serving, build, Full(state), ask)
            steps = patches_between(serving.state, state)
            if steps is not None:
                send = Patches(serving.version, tuple(steps)) if steps else None
                if steps:
                    serving.state, serving.version = state, self._next()
                return serving, self._page(serving, build, send, ask)
            self._load(state)
            self.stale_pages += 1
            return serving, self._page(serving, build, None, ask)

    def _remember(self, build: Callable[..., Any], ask: Any) -> None:
        """Keep the ask among the latest WARM_ASKS (under the lock)."""
        with suppress(TypeError):  # an ask that cannot be a key is not kept for warming
            self._recent.pop((build, ask), None)
            self._recent[(build, ask)] = None
            if len(self._recent) > WARM_ASKS:
                del self._recent[next(iter(self._recent))]

    def _page(self, slot: _Slot, build: Callable[..., _Result], send: Any, ask: Any) -> Future[_Result]:
        return _submitted(slot, _in_renderer, build, slot.version, send, ask)

    def _load(self, state: tuple[Any, ...]) -> None:
        """Have the standby renderer hold `state` (patched when it holds or is loading its base,
        else sent whole), to serve once loaded. Under the lock."""
        if self.now() < self._load_after or self.paused():
            return
        standby = self._standby = self._standby or _Slot()
        steps = patches_between(standby.state, state)
        if steps == []:
            return  # loading it already
        base = standby.version
        standby.state, standby.version = state, self._next()
        if steps is not None:
            send: Full | Patches = Patches(base, tuple(steps))
        else:
            send = Full(state)
            self.loads += 1
        loading = _submitted(standby, _hold, standby.version, send, list(self._recent), True)
        standby.loading = loading
        loading.add_done_callback(lambda done: self._loaded(standby, done))

    def _loaded(self, slot: _Slot, done: Future[int]) -> None:
        """A standby's load ended: loaded, it serves (the old serving one becomes the standby and keeps
        its state for a later patch); failed, it is dropped and the next page tries again."""
        with self._lock:
            if slot is not self._standby or done is not slot.loading:
                return  # a newer load is queued behind it, or the slot is gone
            slot.loading = None
            failed = done.cancelled() or done.exception() is not None
            if not failed:
                self._serving, self._standby = slot, self._serving
                return
            self._standby = None
            self._load_after = self.now() + LOAD_RETRY_SECONDS
        log.error("renderer_load_failed error=%r", None if done.cancelled() else done.exception())
        slot.close()

    def _discard(self, slot: _Slot) -> None:
        """The renderer died (killed, out of memory): the next call starts another."""
        with self._lock:
            if slot is self._serving:
                self._serving = None
            elif slot is self._standby:
                self._standby = None
            else:
                return
            self.restarts += 1
            log.error("renderer_restarted restarts=%d", self.restarts)
        slot.close()

    def slots(self) -> Sequence[_Slot]:
        """The renderer processes running now (serving first)."""
        return [s for s in (self._serving, self._standby) if s is not None]

    def close(self) -> None:
        """Stop the renderers (the service is stopping)."""
        with self._lock:
            slots, self._serving, self._standby = self.slots(), None, None
        for slot in slots:
            slot.close()
