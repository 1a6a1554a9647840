"""The student page as data: sessions expected and attended by week, and what the forms offer
(colleagues who may see the student, support services, kinds of contact). Pure; the case box and
the timelines are ops.staff.web.views.student_case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from models.access import Staff
from models.cases import Channel


@dataclass(frozen=True, slots=True)
class AttendanceWeek:
    week: date
    expected: int
    attended: int

    @property
    def rate(self) -> str:
        return f"{100 * self.attended / self.expected:.0f}%" if self.expected else "no sessions"


def attendance_weeks(
    student_id: str, rows: Sequence[tuple[str, date, str, int, int]], weeks: Sequence[date]
) -> list[AttendanceWeek]:
    """Sessions expected and attended per week (Mondays given)."""
    expected: dict[date, int] = defaultdict(int)
    attended: dict[date, int] = defaultdict(int)
    for sid, day, source, events, came in rows:
        if sid == student_id and source == "attendance":
            monday = day - timedelta(days=day.weekday())
            expected[monday] += int(events)
            attended[monday] += int(came)
    return [AttendanceWeek(w, expected.get(w, 0), attended.get(w, 0)) for w in weeks]


@dataclass(frozen=True)
class TriageChoices:
    """What the triage forms offer: colleagues who may see the student, services, contact kinds."""

    colleagues: Sequence[Staff]
    services: Sequence[str]
    channels: Sequence[str] = tuple(c.value for c in Channel)
