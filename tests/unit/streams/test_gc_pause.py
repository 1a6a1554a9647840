"""The shared pause of the cyclic collector: held by the batch path and the evaluator at once."""

from __future__ import annotations

import gc
import threading

import pytest

from streams.gc_pause import collector_paused


def test_paused_inside_and_restored_after_even_on_error() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a sweep that fails")
    assert gc.isenabled()


def test_overlapping_holders_resume_it_when_the_last_lets_go() -> None:
    """The evaluator's thread and the event loop's batch overlap: the first to finish must not
    switch the collector back on under the other."""
    sweep_started, sweep_may_end = threading.Event(), threading.Event()
    seen: list[bool] = []

    def sweep() -> None:
        with collector_paused():
            sweep_started.set()
            sweep_may_end.wait(5)
            seen.append(gc.isenabled())

    thread = threading.Thread(target=sweep)
    thread.start()
    sweep_started.wait(5)
    with collector_paused():  # a batch starts after the sweep and ends before it
        pass
    seen.append(gc.isenabled())  # the sweep still holds it
    sweep_may_end.set()
    thread.join(5)
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_collector_someone_else_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
