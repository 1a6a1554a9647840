"""Threads for the evaluator's column work on a million students.

numpy lets go of the GIL in its sorts, gathers, sums and comparisons, which are most of the time of
a chunk of students' window figures or of one measure's sort within groups; a few threads then use
the machine's other cores. Pure computation, no I/O: results come back in the order of the inputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_In = TypeVar("_In")
_Out = TypeVar("_Out")
_THREADS: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    """One thread per core up to four, made when first needed and kept for the process."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="lde-columns")
    return _THREADS


def map_in_threads(function: Callable[[_In], _Out], items: Iterable[_In]) -> list[_Out]:
    """[function(item) for item in items], the items spread over the column threads; the first
    error raised by any item is raised here. Never call it from inside such a function (the
    threads would wait on themselves)."""
    work = list(items)
    if len(work) < 2:
        return [function(item) for item in work]
    return list(_threads().map(function, work))
