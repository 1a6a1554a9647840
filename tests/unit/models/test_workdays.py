"""Working days: weekends and closure days never count towards a case's deadline."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from models.workdays import WorkingCalendar

CLOSED = WorkingCalendar.of([date(2026, 12, 25), date(2026, 12, 28)])


@pytest.mark.parametrize(
    ("since", "today", "calendar", "elapsed"),
    [
        (date(2026, 11, 2), date(2026, 11, 2), WorkingCalendar(), 0),  # Monday, same day
        (date(2026, 11, 2), date(2026, 11, 1), WorkingCalendar(), 0),  # before: nothing
        (date(2026, 11, 2), date(2026, 11, 5), WorkingCalendar(), 3),  # Monday to Thursday
        (date(2026, 11, 6), date(2026, 11, 9), WorkingCalendar(), 1),  # Friday to Monday
        (date(2026, 11, 7), date(2026, 11, 8), WorkingCalendar(), 0),  # a weekend
        (date(2026, 11, 2), date(2026, 11, 16), WorkingCalendar(), 10),  # two weeks
        (date(2026, 12, 24), date(2026, 12, 29), CLOSED, 1),  # Christmas and the Monday closed
        (date(2026, 12, 25), date(2026, 12, 25), CLOSED, 0),
    ],
)
def test_elapsed_counts_working_days_after_since(
    since: date, today: date, calendar: WorkingCalendar, elapsed: int
) -> None:
    assert calendar.elapsed(since, today) == elapsed


def test_elapsed_agrees_with_a_day_by_day_count_over_a_year() -> None:
    start = date(2026, 9, 1)
    for offset in range(0, 370, 3):
        today = start + timedelta(days=offset)
        slow = sum(1 for i in range(1, offset + 1) if CLOSED.is_working(start + timedelta(days=i)))
        assert CLOSED.elapsed(start, today) == slow


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 11, 6), 0, date(2026, 11, 6)),
        (date(2026, 11, 6), 1, date(2026, 11, 9)),
        (date(2026, 12, 24), 1, date(2026, 12, 29)),
    ],
)
def test_add_is_the_inverse_of_elapsed(day: date, n: int, expected: date) -> None:
    assert CLOSED.add(day, n) == expected
    assert CLOSED.elapsed(day, expected) == n
