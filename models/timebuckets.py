"""Local calendar days. A day is the institution's local day (default Europe/London, with DST):
an event at 2026-10-24T23:30Z belongs to 25 October in BST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    """The time zone by IANA name (cached: ZoneInfo look-ups are not free on the hot path)."""
    return ZoneInfo(name)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    """The local calendar day an aware instant falls on."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: an instant needs a UTC offset")
    return instant.astimezone(tz).date()


def day_words(day: date) -> str:
    """A day as every page and report shows it: "Fri 4 Dec" (weekday, day without a leading zero,
    month; no year: the pages are about the current term)."""
    return f"{day:%a} {day.day} {day:%b}"


def day_month(day: date) -> str:
    """A day where the weekday would crowd (chart axes, short columns): "4 Dec"."""
    return f"{day.day} {day:%b}"


def local_today(now: datetime, tz: ZoneInfo) -> date:
    """Today's date in the institution's zone at `now` (a clock's aware instant, passed in: this stays pure).

    The one way to say "today, local", so jobs, reports and the evaluator agree: at 00:30 BST it is
    already the new day here although UTC still has the previous one.
    """
    return local_day(now, tz)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) of a local day; days are 23 or 25 hours long across clock changes."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def day_end(day: date, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) after a local day."""
    return day_start(day + timedelta(days=1), tz)


def last_complete_day(now: datetime, tz: ZoneInfo) -> date:
    """The latest local day that has fully ended at `now`."""
    return local_today(now, tz) - timedelta(days=1)


def days_between(first: date, last: date) -> list[date]:
    """Every day from first to last inclusive (empty when last < first)."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
