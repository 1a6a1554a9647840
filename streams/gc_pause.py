"""Python's cyclic garbage collector in a process holding a large student state: one pause shared
by the batch path and the evaluator, and full collections on a schedule (`FullCollections`).

The batch path and the evaluator allocate many short-lived container objects while a large student
state is alive, and every full collection walks all of that state (see `collector_paused`). The
evaluator sweeps in a thread while batches are applied on the event loop, so the pauses overlap:
the collector runs again when the last holder lets go, and only if it was running when the first
one took it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False  # whether the collector was enabled when the first holder paused it


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while the block runs (nestable, across threads).

    Reference counting still frees every object that is not in a cycle as soon as it is dropped;
    cycles made meanwhile are collected when the collector runs again.
    """
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()


#: How often a worker looks whether its scheduled full collection is due (seconds).
CHECK_SECONDS = 5.0
#: Python's full-collection threshold when full collections are scheduled: more young collections
#: than a process makes in its life, so the interpreter never starts one by itself.
NEVER = 2**30


def schedule_full_collections() -> None:
    """Leave full collections to `FullCollections` (the young generations are collected as before).

    A worker holds millions of long-lived objects (every student's state), and while a term is
    ingested the heap grows fast enough for Python's own rule to start a full collection every second
    or two: measured at 30,000 students, 33 in an 80-second run, 0.3-0.46 s each with the interpreter
    lock held, freeing next to nothing. Each one stopped the stream, the judgement and every page.
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


def full_collection_due(last: float, now: float, every: float, judging: bool) -> bool:
    """Whether the scheduled full collection runs now: `every` seconds after the last one, never
    while a day is judged (the next tick runs it)."""
    return not judging and now - last >= every


class FullCollections:
    """The scheduled full collection (a stream timer's `tick`), so that cycles that outlived the young
    generations are still freed; `observe` is given each one's seconds."""

    def __init__(
        self,
        every: float,
        judging: Callable[[], bool],
        observe: Callable[[float], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.judging = judging
        self.observe = observe
        self.now = now
        self.last = now()

    async def tick(self) -> None:
        if not full_collection_due(self.last, self.now(), self.every, self.judging()):
            return
        started = time.perf_counter()
        gc.collect()
        self.observe(time.perf_counter() - started)
        self.last = self.now()
