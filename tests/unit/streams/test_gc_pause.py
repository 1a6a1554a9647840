"""The shared pause of the cyclic collector: held by the batch path and the evaluator at once; full
collections on the worker's schedule, never while a day is judged."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from streams.gc_pause import (
    NEVER,
    FullCollections,
    collector_paused,
    full_collection_due,
    schedule_full_collections,
)


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


def test_scheduled_full_collections_leave_the_young_generations_to_python() -> None:
    before = gc.get_threshold()
    try:
        schedule_full_collections()
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert full == NEVER
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize(
    ("last", "now", "judging", "due"),
    [
        (0.0, 299.9, False, False),
        (0.0, 300.0, False, True),
        (0.0, 900.0, True, False),  # a day being judged comes first: the next tick runs it
    ],
)
def test_a_full_collection_is_due_on_schedule_and_never_while_a_day_is_judged(
    last: float, now: float, judging: bool, due: bool
) -> None:
    assert full_collection_due(last, now, 300.0, judging) is due


def test_the_timer_collects_when_due_and_reports_how_long_it_took() -> None:
    clock = [1000.0]
    judging = [False]
    took: list[float] = []
    collections = FullCollections(300.0, lambda: judging[0], took.append, now=lambda: clock[0])
    full_before = gc.get_stats()[2]["collections"]
    asyncio.run(collections.tick())
    assert took == []  # just started
    clock[0] += 300.0
    judging[0] = True
    asyncio.run(collections.tick())
    assert took == []
    judging[0] = False
    asyncio.run(collections.tick())
    assert len(took) == 1 and took[0] >= 0
    assert gc.get_stats()[2]["collections"] > full_before
    asyncio.run(collections.tick())
    assert len(took) == 1  # not again until another 300 s
