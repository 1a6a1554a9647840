"""The programme impact summary (issue 27): what happened to the cases opened in a period, for
leaders and directors, aggregated and disclosure-controlled like the trends. Pure: no I/O.

Cases opened (rounded to 5, models.retention), the median time to the first action in working days,
the share acted on within three working days, and the share of students re-engaged (a `re_engaged`
alert) within 14 days of the first contact (a note of a meeting, an email or a call). A figure over
fewer than 8 cases is suppressed (None), as averages are in the trends.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from models.case_clock import acted_within
from models.cases import ActionKind, Case, Channel
from models.retention import MIN_STUDENTS_FOR_AVERAGE, round_count
from models.workdays import WorkingCalendar

ACTED_WITHIN_WORKING_DAYS = 3
RE_ENGAGED_WITHIN_DAYS = 14
_CONTACTS = frozenset({Channel.MEETING.value, Channel.EMAIL.value, Channel.CALL.value})


@dataclass(frozen=True, slots=True)
class ImpactSummary:
    """One programme's (or school's) cases opened between two days; None where suppressed."""

    group: str
    first: date
    last: date
    cases_opened: int  # rounded to the nearest 5
    median_working_days_to_first_action: float | None
    share_acted_within_3_working_days: float | None
    share_re_engaged_within_14_days: float | None


def first_contact(case: Case) -> date | None:
    """The day of the case's first note of a meeting, an email or a call (None: no contact yet)."""
    for action in case.state.history:
        if action.kind is ActionKind.NOTE and action.channel in _CONTACTS:
            return action.at.date()
    return None


def _share(flags: Sequence[bool]) -> float | None:
    if len(flags) < MIN_STUDENTS_FOR_AVERAGE:
        return None
    return round(sum(flags) / len(flags), 3)


def impact_summary(
    group: str,
    cases: Iterable[Case],
    re_engaged_on: Mapping[str, Sequence[date]],
    calendar: WorkingCalendar,
    first: date,
    last: date,
) -> ImpactSummary:
    """The summary of the cases opened from `first` to `last` (inclusive). `re_engaged_on`: the days
    each student's `re_engaged` alerts were raised."""
    opened = [c for c in cases if first <= c.opened_at.date() <= last]
    delays = [
        calendar.elapsed(c.opened_at.date(), c.state.history[0].at.date()) for c in opened if c.state.history
    ]
    acted = [acted_within(c, ACTED_WITHIN_WORKING_DAYS, calendar) is True for c in opened]
    back = []
    for case in opened:
        contact = first_contact(case)
        if contact is None:
            continue
        window_end = contact + timedelta(days=RE_ENGAGED_WITHIN_DAYS)
        back.append(any(contact <= d <= window_end for d in re_engaged_on.get(case.student_id, ())))
    median = float(statistics.median(delays)) if len(delays) >= MIN_STUDENTS_FOR_AVERAGE else None
    return ImpactSummary(group, first, last, round_count(len(opened)), median, _share(acted), _share(back))
