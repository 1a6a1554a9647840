"""Scheduled runs as periods that are due, not moments that must be caught. Pure.

A scheduled job (the daily job at 02:30, the weekly reports on Monday at 07:00) owes one run per
period: the period is the local date of its scheduled moment. Whoever is leader asks `next_run` at
start, after a rebalance and on every tick; a restart or a rebalance at the wrong minute then skips
nothing (systemd's `Persistent=true`, APScheduler's `coalesce`):

- only the latest period whose moment has passed is owed (older missed ones are not run again: the
  daily job of today covers yesterday's, and last month's reports are no use now);
- a period with a successful run (or `partial`: reports with some deliveries failed, named in the
  run) is done; a failed run is tried again `retry_after` after it;
- a job with no run recorded at all is anchored first (the period in progress counts as done), so a
  new installation does not send last Monday's reports the minute it starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

#: Statuses of a recorded run that settle its period.
DONE_STATUSES = frozenset({"success", "partial", "anchored"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job's schedule: local time of day, and the weekday (0 = Monday) for a weekly job."""

    job: str
    at: time
    weekday: int | None = None

    @classmethod
    def parse(cls, job: str, at: str, weekday: str | None = None) -> Schedule:
        """From settings: "02:30", and "mon" for a weekly job."""
        hour, minute = at.split(":")
        return cls(job, time(int(hour), int(minute)), WEEKDAYS.index(weekday) if weekday else None)

    def moment(self, period: date, tz: ZoneInfo) -> datetime:
        """When the period's run is scheduled, in UTC (a local time a clock change skips or repeats
        is resolved as zoneinfo does, fold 0: the offset before the change)."""
        return datetime.combine(period, self.at, tzinfo=tz).astimezone(UTC)

    def period_at(self, now: datetime, tz: ZoneInfo) -> date:
        """The latest period whose scheduled moment is at or before `now`."""
        day = now.astimezone(tz).date()
        for back in range(9):
            period = day - timedelta(days=back)
            if self.weekday is not None and period.weekday() != self.weekday:
                continue
            if self.moment(period, tz) <= now.astimezone(UTC):
                return period
        raise AssertionError("a period is at most 8 days back")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One recorded run of a job (job_runs): its period (`as_of`), status and end."""

    period: date
    status: str
    finished_at: datetime


class Decision(StrEnum):
    RUN = "run"  # the period is owed: run it
    ANCHOR = "anchor"  # the job has never run here: record the period as the starting point
    WAIT = "wait"  # done, or failed a moment ago


@dataclass(frozen=True, slots=True)
class Due:
    decision: Decision
    period: date


def next_run(
    schedule: Schedule, now: datetime, tz: ZoneInfo, runs: Iterable[RunRecord], retry_after: timedelta
) -> Due:
    """What the leader should do about `schedule` at `now`, given every recorded run of its job."""
    period = schedule.period_at(now, tz)
    records = list(runs)
    if not records:
        return Due(Decision.ANCHOR, period)
    own = [r for r in records if r.period == period]
    if any(r.status in DONE_STATUSES for r in own):
        return Due(Decision.WAIT, period)
    failed = [r.finished_at for r in own]
    if failed and now - max(failed) < retry_after:
        return Due(Decision.WAIT, period)
    return Due(Decision.RUN, period)
