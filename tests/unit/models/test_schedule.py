"""Scheduled runs are due per period: a table of restarts, rebalances and clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from models.schedule import Decision, Due, RunRecord, Schedule, next_run
from models.timebuckets import zone

TZ = zone("Europe/London")
DAILY = Schedule.parse("daily", "02:30")
WEEKLY = Schedule.parse("weekly_reports", "07:00", "mon")
RETRY = timedelta(minutes=15)


def at(text: str) -> datetime:
    """A local time in London, or a UTC time when it ends with Z."""
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def ok(period: str, status: str = "success") -> RunRecord:
    return RunRecord(date.fromisoformat(period), status, at(period + "T03:00"))


def test_parse() -> None:
    assert Schedule("daily", time(2, 30)) == DAILY
    assert Schedule("weekly_reports", time(7, 0), 0) == WEEKLY


@pytest.mark.parametrize(
    ("schedule", "now", "period"),
    [
        (DAILY, "2026-11-11T02:29", "2026-11-10"),
        (DAILY, "2026-11-11T02:30", "2026-11-11"),
        (DAILY, "2026-11-11T23:59", "2026-11-11"),
        (WEEKLY, "2026-11-16T06:59", "2026-11-09"),  # a Monday before its time: last Monday's
        (WEEKLY, "2026-11-16T07:00", "2026-11-16"),
        (WEEKLY, "2026-11-22T23:00", "2026-11-16"),  # Sunday
        (DAILY, "2026-03-29T01:29Z", "2026-03-28"),  # the spring change day (01:00 GMT -> 02:00 BST):
        (DAILY, "2026-03-29T01:30Z", "2026-03-29"),  # 02:30 BST is 01:30 UTC
        (
            DAILY,
            "2026-10-25T01:30Z",
            "2026-10-24",
        ),  # the autumn change (02:00 BST -> 01:00 GMT): 02:30 GMT, once
        (DAILY, "2026-10-25T02:30Z", "2026-10-25"),
        (DAILY, "2026-07-01T01:29Z", "2026-06-30"),  # summer: 02:30 BST is 01:30 UTC
        (DAILY, "2026-07-01T01:30Z", "2026-07-01"),
    ],
)
def test_period_at(schedule: Schedule, now: str, period: str) -> None:
    assert schedule.period_at(at(now), TZ) == date.fromisoformat(period)


def test_period_at_takes_any_time_zone_of_now() -> None:
    # 01:45 UTC on 11 November is 01:45 in London (GMT): before 02:30, so the 10th
    assert DAILY.period_at(datetime(2026, 11, 11, 1, 45, tzinfo=UTC), TZ) == date(2026, 11, 10)


@pytest.mark.parametrize(
    ("case", "schedule", "now", "runs", "due"),
    [
        (
            "never run: anchor, do not run at once",
            DAILY,
            "2026-11-11T10:00",
            [],
            (Decision.ANCHOR, "2026-11-11"),
        ),
        ("ran at 02:30 today", DAILY, "2026-11-11T10:00", [ok("2026-11-11")], (Decision.WAIT, "2026-11-11")),
        (
            "stopped across 02:30: ran yesterday, started at 09:00",
            DAILY,
            "2026-11-11T09:00",
            [ok("2026-11-10")],
            (Decision.RUN, "2026-11-11"),
        ),
        (
            "stopped for three days: only the latest period",
            DAILY,
            "2026-11-14T09:00",
            [ok("2026-11-10")],
            (Decision.RUN, "2026-11-14"),
        ),
        (
            "started at 01:00, before today's time: yesterday's is owed",
            DAILY,
            "2026-11-11T01:00",
            [ok("2026-11-09")],
            (Decision.RUN, "2026-11-10"),
        ),
        (
            "anchored today",
            DAILY,
            "2026-11-11T12:00",
            [ok("2026-11-11", "anchored")],
            (Decision.WAIT, "2026-11-11"),
        ),
        (
            "failed 5 minutes ago: wait",
            DAILY,
            "2026-11-11T03:05",
            [ok("2026-11-10"), RunRecord(date(2026, 11, 11), "failed", at("2026-11-11T03:00"))],
            (Decision.WAIT, "2026-11-11"),
        ),
        (
            "failed 15 minutes ago: again",
            DAILY,
            "2026-11-11T03:15",
            [ok("2026-11-10"), RunRecord(date(2026, 11, 11), "failed", at("2026-11-11T03:00"))],
            (Decision.RUN, "2026-11-11"),
        ),
        (
            "failed, then succeeded: done",
            DAILY,
            "2026-11-11T05:00",
            [RunRecord(date(2026, 11, 11), "failed", at("2026-11-11T03:00")), ok("2026-11-11")],
            (Decision.WAIT, "2026-11-11"),
        ),
        (
            "service down across Monday 07:00, up on Tuesday",
            WEEKLY,
            "2026-11-17T08:00",
            [ok("2026-11-09")],
            (Decision.RUN, "2026-11-16"),
        ),
        (
            "reports with a delivery failed count as done",
            WEEKLY,
            "2026-11-17T08:00",
            [ok("2026-11-16", "partial")],
            (Decision.WAIT, "2026-11-16"),
        ),
        (
            "a rebalance at 07:00: the new leader finds the run recorded",
            WEEKLY,
            "2026-11-16T07:01",
            [ok("2026-11-09"), ok("2026-11-16")],
            (Decision.WAIT, "2026-11-16"),
        ),
    ],
)
def test_next_run(
    case: str, schedule: Schedule, now: str, runs: list[RunRecord], due: tuple[Decision, str]
) -> None:
    expected = Due(due[0], date.fromisoformat(due[1]))
    assert next_run(schedule, at(now), TZ, runs, RETRY) == expected, case
