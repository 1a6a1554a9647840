"""The caseload's precomputed view (issue 26): every page read from it equals the page built per
request from the same data (ops.staff.web.views.caseload), for every order, filter, page and scope."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from models.access import CaseEscalation, Grant, Role, Staff, StaffDirectory
from models.case_clock import CaseCounts, CaseLine
from models.cases import CaseStatus, case_state
from models.groups import GroupMember, comparison_groups, weekly_group_averages
from ops.staff.web.views.caseload import (
    CASE_FILTERS,
    SORTS,
    CaseloadQuery,
    OpenAlert,
    build_caseload,
    with_details,
)
from ops.staff.web.views.precomputed import build_trends, build_view, page_from_view, with_case
from sinks.clickhouse.caseload import RosterLine

DAY = date(2026, 11, 20)
WEEKS = [date(2026, 9, 28) + timedelta(weeks=i) for i in range(8)]
rng = random.Random(26)
ROSTER = [
    RosterLine(
        f"9{i:05d}",
        f"{rng.choice(['Ada', 'Ben', 'Cat'])} {rng.choice(['Ames', 'Bell', 'Cole'])}",
        f"P{i % 7}",
        "",
        f"S{i % 3}",
        1 + i % 3,
        "PT" if i % 5 == 0 else "FT",
        f"T{i % 11}",
    )
    for i in range(400)
]
STANDINGS = {
    s.student_id: (float(rng.randrange(100)), rng.choice(["None", "Low", "Good"]), DAY) for s in ROSTER[:350]
}
ALERTS = {
    s.student_id: [
        OpenAlert(
            f"a{s.student_id}",
            rng.choice(["no_engagement", "low_attendance"]),
            DAY,
            case_state(f"a{s.student_id}", [], DAY),
        )
    ]
    for s in ROSTER[::9]
}
STATUSES = [CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.SNOOZED]


def case_of(s: RosterLine, i: int) -> CaseLine:
    """An open case: its status, overdue (every third), follow-up (some this week), age and activity
    varied so that every order and case filter tells the students apart."""
    status = STATUSES[i % 3]
    acted = status is not CaseStatus.OPEN
    return CaseLine(
        student_id=s.student_id,
        case_id=f"case-a{s.student_id}",
        status=status,
        owner=s.personal_tutor_id,
        opened_on=DAY - timedelta(days=i % 17),
        alerts=1,
        last_action="note" if acted else "",
        last_action_by="T1" if acted else "",
        last_action_on=DAY - timedelta(days=i % 5) if acted else None,
        last_activity_on=DAY - timedelta(days=i % 13),
        referrals=("wellbeing",) if i % 4 == 0 else (),
        follow_up=DAY + timedelta(days=i % 6) if i % 2 else None,
        awaiting_since=None if acted else DAY - timedelta(days=i % 17),
        overdue=i % 3 == 0,
    )


CASES = {s.student_id: case_of(s, i) for i, s in enumerate(ROSTER[::9])}
WEEKLY = {s.student_id: {w: rng.randrange(30) for w in WEEKS} for s in ROSTER[:300]}
ACTIVE = {s.student_id: DAY - timedelta(days=rng.randrange(60)) for s in ROSTER[:320]}
MEMBERS = [GroupMember(s.student_id, s.programme_code, s.year_of_study, s.mode, s.school) for s in ROSTER]
TRENDS = build_trends(MEMBERS, WEEKLY, ACTIVE, WEEKS, 8)
VIEWERS = [
    Staff("E1", "Officer", "e@x", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),)),
    Staff("T3", "Tutor", "t@x", (Grant(Role.PERSONAL_TUTOR),)),
    Staff("L1", "Leader", "l@x", (Grant(Role.PROGRAMME_LEADER, "P2"), Grant(Role.PERSONAL_TUTOR))),
    Staff("D1", "Director", "d@x", (Grant(Role.DIRECTOR_OF_SCHOOL, "S1"),)),
]
QUERIES = [CaseloadQuery(sort=sort, page=page) for sort in SORTS for page in (1, 2, 9)] + [
    CaseloadQuery(programme="P3"),
    CaseloadQuery(band="Low", page=2),
    CaseloadQuery(band="Not scored"),
    CaseloadQuery(rule="low_attendance", sort="name"),
    CaseloadQuery(no_action=True),
    CaseloadQuery(search="bell", sort="score"),
    CaseloadQuery(year=2, mode="PT"),
    *(CaseloadQuery(case=wanted) for wanted in CASE_FILTERS if wanted != "escalated"),
    CaseloadQuery(case="overdue", sort="age", programme="P2"),
]


def per_request(viewer: Staff, query: CaseloadQuery, page_size: int) -> object:
    """The page as ops.staff.web.caseload.load_caseload builds it from the stores' rows."""
    from models.access import ScopeIndex, may_see_programme

    scope = ScopeIndex.of(ROSTER).students_for(viewer)
    page = build_caseload(scope, STANDINGS, ALERTS, query, page_size, CASES, DAY)
    groups = comparison_groups(MEMBERS, 8)
    wanted = {groups[r.student.student_id] for r in page.rows}
    averages = weekly_group_averages(MEMBERS, wanted, WEEKLY, WEEKS, 8)
    active = {
        r.student.student_id: ACTIVE[r.student.student_id]
        for r in page.rows
        if r.student.student_id in ACTIVE
    }
    schools = {s.programme_code: s.school for s in scope}
    opened = sorted(c for c, school in schools.items() if may_see_programme(viewer, c, school))
    from dataclasses import replace

    return replace(with_details(page, WEEKLY, groups, averages, active, WEEKS), programme_pages=opened)


@pytest.mark.parametrize("viewer", VIEWERS, ids=lambda v: v.staff_id)
def test_every_page_from_the_view_equals_the_page_built_per_request(viewer: Staff) -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    for query in QUERIES:
        got = page_from_view(view, viewer, query, 20)
        want = per_request(viewer, query, 20)
        assert got.rows == want.rows, query  # type: ignore[attr-defined]
        for name in ("query", "matching", "in_scope", "pages", "trend_weeks", "counts"):
            assert getattr(got, name) == getattr(want, name), (query, name)
        for name in ("programmes", "years", "modes", "rules", "programme_pages"):
            assert list(getattr(got, name)) == list(getattr(want, name)), (query, name)


def test_a_scope_comes_out_of_the_view_already_in_order_and_its_options_are_kept() -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    officer = VIEWERS[0]
    first = page_from_view(view, officer, CaseloadQuery(), 50)
    assert first.matching == first.in_scope == len(ROSTER)
    # overdue cases first, then untouched alerts: every one of the 45 students with a case leads
    assert all(r.case and r.case.overdue for r in first.rows[:15]) and not first.rows[15].case.overdue  # type: ignore[union-attr]
    assert all(r.alerts for r in first.rows[:45]) and not first.rows[45].alerts
    assert first.counts == CaseCounts(
        need_action=15, in_progress=30, overdue=15, follow_up_due=first.counts.follow_up_due
    )
    assert 0 < first.counts.follow_up_due < 45
    assert len(view._options) == 1 and set(view._orders) == {"concern"}
    page_from_view(view, officer, CaseloadQuery(page=2), 50)
    assert len(view._options) == 1  # the same scope's filter choices, computed once
    page_from_view(view, officer, CaseloadQuery(sort="name"), 50)
    assert set(view._orders) == {"concern", "name"}  # another order made on first use


def test_a_case_moved_is_the_same_as_building_the_view_again() -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    target = ROSTER[0].student_id
    assert target in ALERTS
    moved = with_case(view, target, [], None)
    rest = {sid: c for sid, c in CASES.items() if sid != target}
    rebuilt = build_view(DAY, ROSTER, STANDINGS, {**ALERTS, target: []}, TRENDS, rest)
    for viewer in VIEWERS:
        for query in QUERIES:
            assert page_from_view(moved, viewer, query, 20) == page_from_view(rebuilt, viewer, query, 20)
    assert with_case(view, "not-on-the-roster", [], None) is view


def test_an_overdue_case_comes_up_to_the_programme_leader_and_only_there() -> None:
    view = build_view(DAY, ROSTER, STANDINGS, ALERTS, TRENDS, CASES)
    leader = Staff("L9", "Leader", "l9@x", (Grant(Role.PROGRAMME_LEADER, "P2"),))
    tutors = [Staff(f"T{i}", f"Tutor {i}", f"t{i}@x", (Grant(Role.PERSONAL_TUTOR),)) for i in range(11)]
    escalation = CaseEscalation(StaffDirectory([leader, *tutors]))
    overdue_in_p2 = {
        sid for sid, c in CASES.items() if c.overdue and view.rows[sid].student.programme_code == "P2"
    }
    assert overdue_in_p2
    page = page_from_view(view, leader, CaseloadQuery(), 50, escalation)
    assert page.escalated == overdue_in_p2
    assert view._desks == {"L9": overdue_in_p2}  # found once per viewer and view
    mine = page_from_view(view, leader, CaseloadQuery(case="escalated"), 50, escalation)
    assert {r.student.student_id for r in mine.rows} == overdue_in_p2
    assert mine.in_scope == page.in_scope  # the scope is still the programme
    tutor = tutors[3]
    own = page_from_view(view, tutor, CaseloadQuery(case="escalated"), 50, escalation)
    assert own.rows == [] and own.escalated == frozenset()  # a tutor's overdue cases are theirs already
    assert page_from_view(view, leader, CaseloadQuery(), 50).escalated == frozenset()  # no directory
