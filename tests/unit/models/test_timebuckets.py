"""Local-day bucketing: the institution's days (Europe/London), across the clock changes."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from models.timebuckets import (
    day_end,
    day_start,
    day_words,
    days_between,
    last_complete_day,
    local_day,
    local_today,
    zone,
)

LONDON = zone("Europe/London")


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # BST (UTC+1): 23:30Z is already the next local day.
        (datetime(2026, 10, 24, 23, 30, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 24, 22, 59, 59, tzinfo=UTC), date(2026, 10, 24)),
        # Clock change night 25 Oct 2026 (01:00Z BST -> GMT): after it, UTC day = local day.
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 26, 0, 0, tzinfo=UTC), date(2026, 10, 26)),
        # GMT in winter.
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), date(2026, 12, 31)),
        # March change 29 Mar 2026 (01:00Z GMT -> BST).
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 29, 23, 30, tzinfo=UTC), date(2026, 3, 30)),
        # An offset other than UTC is honoured.
        (datetime(2026, 10, 25, 1, 30, tzinfo=timezone(timedelta(hours=2))), date(2026, 10, 25)),
    ],
)
def test_local_day_follows_london_time(instant: datetime, expected: date) -> None:
    assert local_day(instant, LONDON) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # BST (UTC+1), summer afternoon.
        (datetime(2026, 6, 15, 14, 0, tzinfo=UTC), date(2026, 6, 15)),
        # GMT (UTC+0), winter: local midnight is UTC midnight.
        (datetime(2026, 12, 1, 23, 59, tzinfo=UTC), date(2026, 12, 1)),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), date(2026, 12, 2)),
        # Just after local midnight in BST: still 15 June in UTC, already 16 June here.
        (datetime(2026, 6, 15, 23, 0, 1, tzinfo=UTC), date(2026, 6, 16)),
    ],
)
def test_local_today_is_the_date_in_the_institutions_zone(now: datetime, expected: date) -> None:
    assert local_today(now, LONDON) == expected
    assert local_today(now, zone("UTC")) == now.date()


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_day(datetime(2026, 10, 25, 12, 0), LONDON)  # noqa: DTZ001


def test_days_are_25_and_23_hours_long_on_clock_change_days() -> None:
    autumn = day_end(date(2026, 10, 25), LONDON) - day_start(date(2026, 10, 25), LONDON)
    spring = day_end(date(2026, 3, 29), LONDON) - day_start(date(2026, 3, 29), LONDON)
    assert autumn == timedelta(hours=25)
    assert spring == timedelta(hours=23)
    assert day_start(date(2026, 10, 25), LONDON) == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)


def test_last_complete_day_and_ranges() -> None:
    assert last_complete_day(datetime(2026, 10, 24, 23, 30, tzinfo=UTC), LONDON) == date(2026, 10, 24)
    assert days_between(date(2026, 1, 30), date(2026, 2, 2)) == [
        date(2026, 1, 30),
        date(2026, 1, 31),
        date(2026, 2, 1),
        date(2026, 2, 2),
    ]
    assert days_between(date(2026, 2, 2), date(2026, 2, 1)) == []


def test_a_day_in_words_is_weekday_day_and_month_with_no_leading_zero() -> None:
    assert day_words(date(2026, 12, 4)) == "Fri 4 Dec"
    assert day_words(date(2026, 11, 18)) == "Wed 18 Nov"
