"""Now and today on the service's clock: what case actions are stamped with (issue 27), so they sort
with the alerts, which carry the same clock; the wall clock only while an event clock has no time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from models.clock import WatermarkClock
from ops.jobs.scheduled import clock_now, clock_today

LONDON = ZoneInfo("Europe/London")


def test_an_event_clock_with_a_watermark_gives_event_time_not_the_wall_clock() -> None:
    clock = WatermarkClock()
    clock.set_owned(frozenset({0}))
    clock.advance(0, datetime(2026, 11, 19, 23, 30, tzinfo=UTC))
    assert clock_now(clock) == datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    assert clock_today(clock, LONDON) == date(2026, 11, 19)


def test_an_event_clock_with_no_time_yet_falls_back_to_the_wall_clock() -> None:
    clock = WatermarkClock()  # no partition owned, no watermark seen
    before = datetime.now(UTC)
    now = clock_now(clock)
    assert before <= now <= datetime.now(UTC) + timedelta(seconds=1)
    assert now.tzinfo is not None
