"""The weeks and days a report, a job or an export may be asked about: parsed with a clear reason
for anything else, never an overflow later (issue 22: `?week=9999-W52` and `?as_of=not-a-date`
answered 500)."""

from __future__ import annotations

from datetime import date

import pytest

from models.reports import FIRST_DAY, LAST_DAY, BadDay, BadWeek, parse_day, parse_week, week_label


def test_iso_weeks_in_range_are_their_monday() -> None:
    assert parse_week("2026-W47") == date(2026, 11, 16)
    assert parse_week(" 2020-W53 ") == date(2020, 12, 28)
    assert parse_week(week_label(LAST_DAY)) <= LAST_DAY


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9999-W52", "out of range"),
        ("1969-W01", "out of range"),
        ("2149-W30", "out of range"),
        ("2026-W54", "has no week 54"),
        ("2026-W00", "has no week 0"),
        ("2026-47", "write it as an ISO week"),
        ("not-a-week", "write it as an ISO week"),
        ("2026-W47\x00", "write it as an ISO week"),
        ("9" * 5000, "write it as an ISO week"),
    ],
)
def test_other_weeks_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(BadWeek, match=reason) as raised:
        parse_week(text)
    assert len(str(raised.value)) < 200  # a huge input is not echoed back whole


def test_days_in_range_parse_and_others_say_why() -> None:
    assert parse_day("2026-11-23") == date(2026, 11, 23)
    assert parse_day(FIRST_DAY.isoformat()) == FIRST_DAY and parse_day(LAST_DAY.isoformat()) == LAST_DAY
    for text, reason in (
        ("not-a-date", "is not a date"),
        ("9999-12-31", "out of range"),
        ("0001-01-01", "out of range"),
        ("2026-02-30", "is not a date"),
        ("", "is not a date"),
    ):
        with pytest.raises(BadDay, match=f"as_of: .*{reason}"):
            parse_day(text, "as_of")
    assert parse_day("2026-11-23\r\n") == date(2026, 11, 23)  # surrounding white space is forgiven
