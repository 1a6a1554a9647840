"""Retention, compaction and disclosure control: pure rules, no I/O.

- Personal data of a student who left is deleted everywhere six months (configurable) after the leave
  date; trend data (cohort aggregates with no identifiers) stays.
- Per-student daily rows older than a configurable age are rolled up into weekly rows.
- Anything that leaves the system is disclosure-controlled, after HESA's rounding and suppression
  rules: counts rounded to the nearest 5, averages suppressed for 7 or fewer students.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from models.roster import RosterRecord


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    months_after_leaving: int = 6
    compact_after_days: int = 56  # 8 weeks of daily rows, then weekly


def add_months(day: date, months: int) -> date:
    """Calendar months later, clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has at least 28 days")


def deletion_due_on(record: RosterRecord, policy: RetentionPolicy) -> date | None:
    """The first day a student's personal data must be gone, or None while they have not left."""
    if record.leave_date is None:
        return None
    return add_months(record.leave_date, policy.months_after_leaving)


def students_due_for_deletion(
    records: Iterable[RosterRecord], as_of: date, policy: RetentionPolicy
) -> list[str]:
    """Ids of every student whose leave date plus the retention period has passed by `as_of`."""
    due = []
    for record in records:
        deadline = deletion_due_on(record, policy)
        if deadline is not None and deadline <= as_of:
            due.append(record.student_id)
    return sorted(due)


def compaction_cutoff(as_of: date, policy: RetentionPolicy) -> date:
    """Daily rows for days before this date are rolled up into weeks (whole ISO weeks only)."""
    cutoff = as_of - timedelta(days=policy.compact_after_days)
    return cutoff - timedelta(days=cutoff.weekday())  # the Monday of that week


def week_start(day: date) -> date:
    """The Monday of the ISO week a day belongs to."""
    return day - timedelta(days=day.weekday())


# -- disclosure control ------------------------------------------------------------------------------
ROUND_TO = 5
MIN_STUDENTS_FOR_AVERAGE = 8  # averages are suppressed for 7 or fewer students


def round_count(value: int) -> int:
    """Counts to the nearest 5 (HESA rounding; 0, 1 and 2 become 0)."""
    # value / 5 of an integer is never exactly .5, so Python's round-half-even does not matter here.
    return int(ROUND_TO * round(value / ROUND_TO)) if value >= 0 else -round_count(-value)


def disclose_average(total: float, students: int) -> float | None:
    """An average over `students`, or None (suppressed) when 7 or fewer students contribute."""
    if students < MIN_STUDENTS_FOR_AVERAGE:
        return None
    return round(total / students, 1)
