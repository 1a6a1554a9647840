"""One pause of Python's cyclic garbage collector, shared by the batch path and the evaluator.

Both allocate many short-lived container objects while a large student state is alive, and every
full collection walks all of that state (see `collector_paused`). The evaluator sweeps in a thread
while batches are applied on the event loop, so the pauses overlap: the collector runs again when
the last holder lets go, and only if it was running when the first one took it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
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
