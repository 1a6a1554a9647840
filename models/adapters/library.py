"""Library loans exports: one library event per loan; the title is never read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    NO_USER,
    Outcome,
    Record,
    Skip,
    make_event,
    student_of,
    utc_instant,
)
from models.adapters.csv_export import read_csv, required_field
from models.events import Source
from models.timebuckets import zone


def _library_loan_row(row: Mapping[str, str], tz: ZoneInfo) -> Outcome:
    """One loan at its local loan time; the title is never read."""
    occurred_at = utc_instant(row["loan_datetime"], "loan_datetime", tz)
    loan_id = required_field(row, "loan_id")
    student = student_of(row["user_id"])
    if student is None:
        return Skip(NO_USER)
    return make_event(f"library-loans:{loan_id}", student, Source.LIBRARY, occurred_at)


def read_library_loans(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Library loans CSV: loan_datetime is local time (no offset); id from loan_id; title dropped."""
    return read_csv(lines, ("loan_id", "user_id", "loan_datetime"), _library_loan_row, zone(timezone))
