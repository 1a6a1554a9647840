"""The renderer process (ops.staff.renderer, issue 26): caseload pages made from the view in a process
of their own equal the pages made on the page thread; the view is sent once, not per page; no page
waits while a new state loads (the standby loads it, the serving one answers from the old); a
triage action's one row is sent as a patch and shows on the next page; a renderer that dies is
started again with the state sent again; a failure in it raises here."""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from models.access import Grant, Role, Staff, StaffDirectory
from ops.staff.renderer import RENDERER_NICENESS, Renderer, patches_between
from ops.staff.web.caseload import CaseloadAsk, render_caseload, render_export
from ops.staff.web.views.caseload import CaseloadQuery
from ops.staff.web.views.precomputed import MAX_DERIVED, build_view, with_case
from streams.gc_pause import NEVER
from tests.unit.ops.staff.web.test_precomputed import ALERTS, CASES, DAY, ROSTER, STANDINGS, TRENDS, VIEWERS


def where(numbers: tuple[int, ...], ask: int) -> tuple[int, int]:
    """A build: the process it ran in and a figure from the state and the ask."""
    return os.getpid(), sum(numbers) * ask


def niceness(numbers: tuple[int, ...], ask: int) -> int:
    return os.nice(0)


def collector(numbers: tuple[int, ...], ask: int) -> tuple[int, int]:
    """The renderer's full-collection threshold and how many full collections it has made."""
    return gc.get_threshold()[2], gc.get_stats()[2]["collections"]


def _slowly(numbers: tuple[int, ...], seconds: float) -> tuple[int, ...]:
    time.sleep(seconds)
    return numbers


def _refuse(numbers: tuple[int, ...]) -> tuple[int, ...]:
    raise ValueError("this state cannot be loaded")


class SlowNumbers(tuple[int, ...]):
    """Numbers that take `seconds` to arrive in the renderer, as a 30,000-student view does."""

    seconds = 1.5

    def __reduce__(self) -> tuple[Any, ...]:
        return (_slowly, (tuple(self), self.seconds))


class BadNumbers(tuple[int, ...]):
    """Numbers the renderer cannot load."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse, (tuple(self),))


@dataclass(frozen=True)
class Tally:
    """A state element with a patch: `plus(base, n)` is a Tally derived from `base`."""

    numbers: tuple[int, ...]
    derived_from: tuple[Any, ...] | None = None


def plus(base: Tally, n: int) -> Tally:
    return Tally((*base.numbers, n), (base, plus, (n,)))


def tally(numbers: Tally, ask: int) -> tuple[int, int]:
    return os.getpid(), sum(numbers.numbers) * ask


def until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time given"
        time.sleep(0.05)


def fails(numbers: tuple[int, ...], ask: str) -> None:
    raise ValueError(f"bad ask {ask!r} over {len(numbers)} numbers")


@pytest.fixture
def renderer() -> Iterator[Renderer]:
    made = Renderer(1)
    yield made
    made.close()


def test_a_build_runs_in_another_process_and_answers_as_on_the_thread(renderer: Renderer) -> None:
    state = ((1, 2, 3),)
    pid, figure = renderer.call(where, state, 10)
    assert pid != os.getpid()
    assert figure == 60
    assert Renderer(0).call(where, state, 10) == (os.getpid(), 60)
    assert renderer.call(niceness, state, 0) == os.nice(0) + RENDERER_NICENESS  # the stream comes first


def test_the_state_is_sent_once_and_again_only_when_it_is_another_object(renderer: Renderer) -> None:
    state = ((1, 2, 3),)
    renderer.call(where, state, 1)
    for ask in range(5):
        assert renderer.call(where, state, ask)[1] == 6 * ask
    assert renderer.loads == 1  # the same objects: never pickled again
    equal_but_new = (tuple([1, 2, 3]),)
    assert renderer.call(where, equal_but_new, 2)[1] == 12
    assert renderer.loads == 2
    five = ((5,),)
    renderer.call(where, five, 2)
    until(lambda: renderer.call(where, five, 2)[1] == 10)
    assert renderer.loads == 3


def test_no_page_waits_while_a_new_state_loads_and_then_pages_come_from_it(renderer: Renderer) -> None:
    serving, figure = renderer.call(where, ((1, 2),), 1)
    assert figure == 3
    new = (SlowNumbers((10, 20)),)
    started = time.monotonic()
    pid, figure = renderer.call(where, new, 1)
    assert time.monotonic() - started < SlowNumbers.seconds  # not behind the load
    assert (pid, figure) == (serving, 3)  # made from the state held, one rebuild older
    assert renderer.stale_pages == 1
    until(lambda: renderer.call(where, new, 1)[1] == 30)
    assert renderer.call(where, new, 2) == (pid_of(renderer), 60)
    assert pid_of(renderer) != serving  # the standby took over, and the old one stands by
    assert len(renderer.slots()) == 2
    assert renderer.loads == 2


_made: list[int] = []  # in a renderer process: the asks it made pages of


def counted(numbers: tuple[int, ...], ask: int) -> int:
    _made.append(ask)
    return sum(numbers) * ask


def made(numbers: tuple[int, ...], ask: int) -> tuple[int, list[int]]:
    return sum(numbers), list(_made)


def test_a_standby_makes_the_latest_pages_before_it_serves(renderer: Renderer) -> None:
    """A view's first page fills its caches (about 0.15 s at 30,000 students, with pages queued
    behind it): the standby makes the latest asks' pages before it takes over."""
    old, new = ((1,),), (SlowNumbers((2,)),)
    for ask in (2, 3):
        renderer.call(counted, old, ask)
    assert renderer.call(counted, new, 5) == 5  # from the old state: the new one is loading
    until(lambda: renderer.call(made, new, 0)[0] == 2)
    assert renderer.call(made, new, 0) == (2, [2, 3, 5])  # made in the new renderer before it served


def pid_of(renderer: Renderer) -> int:
    """The serving renderer's process id."""
    (pid,) = renderer.slots()[0].executor._processes
    return pid


def test_a_renderer_collects_fully_once_per_state_loaded_never_mid_page(renderer: Renderer) -> None:
    """Python's own full collections of a whole view came in the middle of pages (up to half a
    second at 30,000 students): a renderer makes one after each load, before it serves."""
    threshold, before = renderer.call(collector, ((1,),), 0)
    assert threshold == NEVER
    new = ((2,),)
    renderer.call(collector, new, 0)  # loads in the standby; this page is from the serving one
    until(lambda: renderer.call(where, new, 1)[1] == 2)
    assert renderer.call(collector, new, 0)[1] > before


def test_a_one_row_change_is_sent_as_a_patch_and_shows_on_the_next_page(renderer: Renderer) -> None:
    base = Tally((1, 2))
    assert renderer.call(tally, (base,), 1)[1] == 3
    changed = plus(plus(base, 10), 100)
    assert patches_between((base,), (changed,)) == [(0, plus, (10,)), (0, plus, (100,))]
    assert renderer.call(tally, (changed,), 1)[1] == 113  # at once, not from the older state
    assert renderer.loads == 1 and renderer.stale_pages == 0
    assert patches_between((changed,), (Tally((1, 2)),)) is None  # not derived from it: sent whole


def test_no_new_state_is_sent_while_paused_and_pages_come_from_the_one_held() -> None:
    judging = [True]
    paused = Renderer(1, paused=lambda: judging[0])
    try:
        assert paused.call(where, ((1, 2),), 1)[1] == 3  # the first state goes with the first page
        newer = ((10, 20),)
        assert paused.call(where, newer, 1)[1] == 3  # a day is judged: the old state answers
        assert (paused.loads, len(paused.slots()), paused.stale_pages) == (1, 1, 1)
        judging[0] = False
        until(lambda: paused.call(where, newer, 1)[1] == 30)  # judged: the new state is sent
        assert paused.loads == 2
    finally:
        paused.close()


def test_a_state_that_cannot_load_leaves_the_serving_one_answering(renderer: Renderer) -> None:
    good, bad = ((1, 2),), (BadNumbers((7,)),)
    renderer.call(where, good, 1)
    assert renderer.call(where, bad, 1)[1] == 3
    until(lambda: len(renderer.slots()) == 1)  # the standby that failed is dropped
    assert renderer.call(where, bad, 2)[1] == 6  # not sent again at once: pages go on from the old
    assert renderer.call(where, good, 5)[1] == 15
    assert renderer.loads == 2


def test_a_renderer_killed_is_started_again_and_given_the_state_again(renderer: Renderer) -> None:
    state = ((4, 5),)
    first, _ = renderer.call(where, state, 1)
    os.kill(first, signal.SIGKILL)
    second, figure = renderer.call(where, state, 3)
    assert second != first
    assert figure == 27
    assert renderer.restarts == 1


def test_a_failure_in_the_renderer_raises_in_the_caller(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="bad ask 'x' over 2 numbers"):
        renderer.call(fails, ((1, 2),), "x")
    assert renderer.call(where, ((1, 2),), 2)[1] == 6  # and the renderer goes on


def test_caseload_pages_and_exports_from_the_renderer_equal_those_made_on_the_thread(
    renderer: Renderer,
) -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    leader = Staff("L1", "Leader Lee", "l@x", (Grant(Role.PROGRAMME_LEADER, "P2"),))
    directory = StaffDirectory([*VIEWERS, leader])
    asks = [
        CaseloadAsk(viewer, query, 20, "2 alert emails to you not delivered", "csrf-1")
        for viewer in VIEWERS
        for query in (CaseloadQuery(), CaseloadQuery(sort="name", page=2), CaseloadQuery(case="overdue"))
    ]
    for ask in asks:
        away = renderer.call(render_caseload, (view, directory), ask)
        here = Renderer(0).call(render_caseload, (view, directory), ask)
        assert away == here
        assert "csrf-1" in away.text and "not delivered" in away.text
        assert all(sid in away.text for sid in away.student_ids)
        assert away.student_ids or ask.query.case == "overdue"  # a scope's first page has students
    export = CaseloadAsk(VIEWERS[0], CaseloadQuery(), 1_000_000)
    away = renderer.call(render_export, (view, directory), export)
    assert away == Renderer(0).call(render_export, (view, directory), export)
    assert len(away.student_ids) == len(ROSTER)
    assert renderer.loads == 1  # one view and one directory: sent once for every page


def test_a_triage_actions_row_reaches_the_renderer_as_a_patch_with_the_same_page(renderer: Renderer) -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    directory = StaffDirectory(VIEWERS)
    ask = CaseloadAsk(VIEWERS[0], CaseloadQuery(case="overdue"), 20, "", "csrf-1")
    renderer.call(render_caseload, (view, directory), ask)
    moved = next(iter(CASES))
    acted = with_case(view, moved, [], None)
    assert acted.derived_from is not None
    away = renderer.call(render_caseload, (acted, directory), ask)
    assert away == Renderer(0).call(render_caseload, (acted, directory), ask)
    assert away != Renderer(0).call(render_caseload, (view, directory), ask)
    assert renderer.loads == 1


def test_a_chain_of_changes_is_cut_so_old_views_are_not_kept_alive() -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    for _ in range(MAX_DERIVED):
        view = with_case(view, ROSTER[0].student_id, [], None)
    assert view.derived_from is not None
    assert with_case(view, ROSTER[0].student_id, [], None).derived_from is None
