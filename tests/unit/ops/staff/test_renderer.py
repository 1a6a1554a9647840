"""The renderer process (ops.staff.renderer, issue 26): caseload pages made from the view in a process
of their own equal the pages made on the page thread; the view is sent once, not per page; a
renderer that dies is started again with the state sent again; a failure in it raises here."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from models.access import Grant, Role, Staff, StaffDirectory
from ops.staff.renderer import RENDERER_NICENESS, Renderer
from ops.staff.web.caseload import CaseloadAsk, render_caseload, render_export
from ops.staff.web.views.caseload import CaseloadQuery
from ops.staff.web.views.precomputed import build_view
from tests.unit.ops.staff.web.test_precomputed import ALERTS, CASES, DAY, ROSTER, STANDINGS, TRENDS, VIEWERS


def where(numbers: tuple[int, ...], ask: int) -> tuple[int, int]:
    """A build: the process it ran in and a figure from the state and the ask."""
    return os.getpid(), sum(numbers) * ask


def niceness(numbers: tuple[int, ...], ask: int) -> int:
    return os.nice(0)


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
    sent = renderer._version
    for ask in range(5):
        assert renderer.call(where, state, ask)[1] == 6 * ask
    assert renderer._version == sent  # the same objects: never pickled again
    equal_but_new = (tuple([1, 2, 3]),)
    assert renderer.call(where, equal_but_new, 2)[1] == 12
    assert renderer._version == sent + 1
    assert renderer.call(where, ((5,),), 2)[1] == 10


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
    assert renderer._version == 1  # one view and one directory: sent once for every page
