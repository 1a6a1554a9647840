"""The figure formats the HTML, text and PDF reports share (ops.jobs.reports.format)."""

from __future__ import annotations

from datetime import date

import pytest

from ops.jobs.reports.format import day_month, number, percent, week_span


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [(None, 1, "-"), (3.0, 1, "3"), (3.25, 1, "3.2"), (3.26, 1, "3.3"), (0.0, 1, "0"), (7.5, 0, "8")],
)
def test_a_figure_has_decimals_only_when_it_is_not_whole(
    value: float | None, digits: int, shown: str
) -> None:
    assert number(value, digits) == shown


def test_a_rate_is_a_whole_percentage_or_a_dash() -> None:
    assert [percent(r) for r in (None, 0.0, 0.666, 1.0)] == ["-", "0%", "67%", "100%"]


def test_days_and_weeks_are_written_out() -> None:
    assert day_month(date(2026, 11, 16)) == "16 Nov"
    assert week_span(date(2026, 11, 16), date(2026, 11, 22)) == "16 November to 22 November 2026"
