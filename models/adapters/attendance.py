"""Attendance exports: one attendance event per expected session, with its status."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    NO_USER,
    BadRecord,
    Outcome,
    Record,
    Skip,
    make_event,
    student_of,
    utc_instant,
)
from models.adapters.csv_export import read_csv, required_field
from models.events import AttendanceStatus, Attributes, Source
from models.timebuckets import zone


def _attendance_row(row: Mapping[str, str], tz: ZoneInfo) -> Outcome:
    """One expected session with its status; the id is student + session, so a re-send de-duplicates."""
    occurred_at = utc_instant(row["session_start"], "session_start", tz)
    session_id = required_field(row, "session_id")
    try:
        status = AttendanceStatus(row["status"].strip().lower())
    except ValueError:
        raise BadRecord("status: not one of " + ", ".join(s.value for s in AttendanceStatus)) from None
    student = student_of(row["student_id"])
    if student is None:
        return Skip(NO_USER)
    event_id = f"attendance:{student}:{session_id}"
    return make_event(event_id, student, Source.ATTENDANCE, occurred_at, Attributes(status=status))


def read_attendance(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Attendance CSV: one attendance event per row at session_start, with its status."""
    required = ("student_id", "session_id", "session_start", "status")
    return read_csv(lines, required, _attendance_row, zone(timezone))
