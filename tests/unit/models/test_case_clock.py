"""A case's clock: a call for action unanswered for more than N working days is overdue; counts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from models.case_clock import (
    CaseCounts,
    CaseLine,
    OverduePolicy,
    acted_within,
    awaiting_since,
    case_line,
    count_cases,
    count_lines,
    follow_up_due,
    is_overdue,
    line_follow_up_due,
    next_step,
    week_end,
)
from models.cases import ActionKind, Case, CaseAction, CaseAlert, CaseStatus, student_cases
from models.workdays import WorkingCalendar

SID = "900412771"
POLICY = OverduePolicy(3, WorkingCalendar.of([date(2026, 11, 11)]))  # a closure on Wednesday 11th


def at(d: int) -> datetime:
    return datetime(2026, 11, d, 10, tzinfo=UTC)


def case_of(raised: list[int], actions: list[tuple[int, ActionKind, dict[str, object]]], today: date) -> Case:
    alerts = [CaseAlert(f"alert-{d}", SID, "no_engagement", date(2026, 11, d)) for d in raised]
    done = [
        CaseAction(f"action-{i:04d}", "", SID, kind, "S1042", at(d), **fields)  # type: ignore[arg-type]
        for i, (d, kind, fields) in enumerate(actions)
    ]
    cases = student_cases(SID, alerts, done, today)
    assert cases.latest is not None
    return cases.latest


ACK = ActionKind.ACKNOWLEDGE
# Alerts raised on Sunday 1 Nov are known on Monday 2 Nov.
CASES = [
    # (alerts raised on, actions, today, awaiting since, overdue)
    ([1], [], date(2026, 11, 5), date(2026, 11, 2), False),  # Tue, Wed, Thu: 3, not yet
    ([1], [], date(2026, 11, 6), date(2026, 11, 2), True),  # Friday: overdue
    ([6], [], date(2026, 11, 12), date(2026, 11, 7), False),  # weekend and the closure not counted
    ([6], [], date(2026, 11, 13), date(2026, 11, 7), True),
    ([1], [(3, ACK, {})], date(2026, 11, 20), None, False),  # answered
    ([1, 8], [(3, ACK, {})], date(2026, 11, 16), date(2026, 11, 9), True),  # a joining alert unanswered
    (
        [1],
        [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 16)})],
        date(2026, 11, 16),
        date(2026, 11, 16),
        False,
    ),
    (
        [1],
        [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 16)})],
        date(2026, 11, 20),
        date(2026, 11, 16),
        True,
    ),
    (
        [1],
        [(3, ActionKind.SNOOZE, {"until": date(2026, 11, 30), "detail": "x"})],
        date(2026, 11, 27),
        None,
        False,
    ),
    ([1], [(3, ActionKind.RESOLVE, {})], date(2026, 11, 27), None, False),
]


@pytest.mark.parametrize(("raised", "actions", "today", "since", "overdue"), CASES)
def test_overdue_when_a_call_for_action_waits_too_long(
    raised: list[int],
    actions: list[tuple[int, ActionKind, dict[str, object]]],
    today: date,
    since: date | None,
    overdue: bool,
) -> None:
    case = case_of(raised, actions, today)
    assert awaiting_since(case, today) == since
    assert is_overdue(case, today, POLICY) is overdue


@pytest.mark.parametrize(
    ("raised", "first_action", "expected"),
    [([1], None, None), ([1], 5, True), ([1], 6, False), ([6], 12, True)],
)
def test_acted_within_three_working_days(
    raised: list[int], first_action: int | None, expected: bool | None
) -> None:
    actions = [] if first_action is None else [(first_action, ACK, {})]
    case = case_of(raised, actions, date(2026, 11, 30))
    assert acted_within(case, 3, POLICY.calendar) is expected


@pytest.mark.parametrize(
    ("follow_up", "later_action", "week_end", "due"),
    [
        (date(2026, 11, 18), None, date(2026, 11, 22), True),
        (date(2026, 11, 25), None, date(2026, 11, 22), False),  # next week
        (date(2026, 11, 10), 12, date(2026, 11, 22), False),  # acted on since
        (date(2026, 11, 10), None, date(2026, 11, 22), True),  # past and not acted on: still due
    ],
)
def test_follow_up_due_by_the_end_of_the_week(
    follow_up: date, later_action: int | None, week_end: date, due: bool
) -> None:
    actions: list[tuple[int, ActionKind, dict[str, object]]] = [
        (3, ActionKind.FOLLOW_UP, {"until": follow_up})
    ]
    if later_action:
        actions.append((later_action, ActionKind.NOTE, {"detail": "x", "channel": "call"}))
    assert follow_up_due(case_of([1], actions, week_end), week_end) is due


def test_counts_need_action_in_progress_overdue_and_follow_ups() -> None:
    today = date(2026, 11, 18)  # Wednesday
    cases = [
        case_of([1], [], today),  # need action, overdue
        case_of([16], [], today),  # need action
        case_of([1], [(3, ACK, {})], today),  # in progress
        case_of([1], [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 20)})], today),  # in progress, due
        case_of([1], [(3, ActionKind.RESOLVE, {})], today),  # closed: not counted
    ]
    assert count_cases(cases, today, POLICY) == CaseCounts(
        need_action=2, in_progress=2, overdue=1, follow_up_due=1
    )
    assert count_cases([], today, POLICY) == CaseCounts()


def test_a_students_open_case_as_one_row() -> None:
    alerts = [CaseAlert("alert-1", SID, "no_engagement", date(2026, 11, 1))]
    done = [
        CaseAction("action-0001", "alert-1", SID, ActionKind.REFER, "S9", at(3), service="wellbeing"),
        CaseAction("action-0002", "", SID, ActionKind.FOLLOW_UP, "S9", at(4), until=date(2026, 11, 9)),
    ]
    cases = student_cases(SID, alerts, done, date(2026, 11, 5))
    line = case_line(cases, "S1042", date(2026, 11, 5), POLICY)
    assert line == CaseLine(
        student_id=SID,
        case_id="case-alert-1",
        status=CaseStatus.IN_PROGRESS,
        owner="S1042",
        opened_on=date(2026, 11, 2),
        alerts=1,
        last_action="follow_up",
        last_action_by="S9",
        last_action_on=date(2026, 11, 4),
        last_activity_on=date(2026, 11, 4),
        referrals=("wellbeing",),
        follow_up=date(2026, 11, 9),
        awaiting_since=None,
        overdue=False,
    )
    assert (
        case_line(student_cases(SID, [], [], date(2026, 11, 5)), "S1042", date(2026, 11, 5), POLICY) is None
    )


def test_the_rows_counts_equal_the_cases_counts() -> None:
    today = date(2026, 11, 18)
    plans: list[tuple[list[int], list[tuple[int, ActionKind, dict[str, object]]]]] = [
        ([1], []),
        ([16], []),
        ([1], [(3, ACK, {})]),
        ([1], [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 20)})]),
        ([1], [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 17)}), (18, ACK, {})]),  # answered
        ([1], [(3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 30)})]),  # next week: not due
    ]
    cases = [case_of(raised, actions, today) for raised, actions in plans]
    lines = [case_line(student_cases(SID, [], [], today), "T", today, POLICY)]
    assert lines == [None]
    rows = []
    for raised, actions in plans:
        alerts = [CaseAlert(f"alert-{d}", SID, "no_engagement", date(2026, 11, d)) for d in raised]
        done = [
            CaseAction(f"action-{i:04d}", "", SID, kind, "S1042", at(d), **fields)  # type: ignore[arg-type]
            for i, (d, kind, fields) in enumerate(actions)
        ]
        row = case_line(student_cases(SID, alerts, done, today), "S1042", today, POLICY)
        assert row is not None
        rows.append(row)
    assert count_lines(rows, today) == count_cases(cases, today, POLICY)
    assert count_lines(rows, today) == CaseCounts(need_action=2, in_progress=4, overdue=1, follow_up_due=1)
    assert week_end(today) == date(2026, 11, 22) and week_end(date(2026, 11, 22)) == date(2026, 11, 22)
    assert line_follow_up_due(rows[3], week_end(today)) and not line_follow_up_due(rows[5], week_end(today))


def test_the_next_step_in_words() -> None:
    today = date(2026, 11, 18)

    def row(raised: list[int], actions: list[tuple[int, ActionKind, dict[str, object]]]) -> CaseLine:
        alerts = [CaseAlert(f"alert-{d}", SID, "no_engagement", date(2026, 11, d)) for d in raised]
        done = [
            CaseAction(f"action-{i:04d}", "", SID, kind, "S1042", at(d), **fields)  # type: ignore[arg-type]
            for i, (d, kind, fields) in enumerate(actions)
        ]
        found = case_line(student_cases(SID, alerts, done, today), "S1042", today, POLICY)
        assert found is not None
        return found

    assert next_step(None, today).startswith("Nothing is open")
    assert next_step(row([16], []), today).startswith("Contact the student")
    assert next_step(row([1], []), today).startswith("Overdue")
    assert next_step(row([1, 15], [(3, ACK, {})]), today).startswith("A new alert joined")
    referred = (3, ActionKind.REFER, {"service": "wellbeing"})
    assert (
        next_step(row([1], [referred]), today) == "Waiting for wellbeing: record the outcome when you hear."
    )
    follow = (3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 17)})
    assert next_step(row([1], [follow]), today).startswith("Follow up now")
    later = (3, ActionKind.FOLLOW_UP, {"until": date(2026, 11, 27)})
    assert next_step(row([1], [later]), today) == "In progress: follow up by 27 Nov."
    assert next_step(row([1], [(3, ACK, {})]), today).startswith("In progress: set a follow-up")
    snoozed = (3, ActionKind.SNOOZE, {"until": date(2026, 11, 30), "detail": "placement"})
    assert next_step(row([1], [snoozed]), today).startswith("Set aside")
