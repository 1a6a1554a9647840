"""PaperCut print logs: one print event per job, with its page count; the document name is never read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    NO_USER,
    NOTHING_PRINTED,
    BadRecord,
    Outcome,
    Record,
    Skip,
    derived_id,
    make_event,
    student_of,
    utc_instant,
)
from models.adapters.csv_export import read_csv
from models.events import Attributes, Source
from models.timebuckets import zone


def _count(value: str, field: str) -> int:
    """A small non-negative integer written in ASCII digits (int() would accept '1_0' and other scripts)."""
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise BadRecord(f"{field}: not a whole number")
    return int(text)


def _papercut_row(row: Mapping[str, str], tz: ZoneInfo) -> Outcome:
    """A print job: pages = Pages x Copies. Document Name is never read."""
    occurred_at = utc_instant(row["Time"], "Time", tz)
    pages = _count(row["Pages"], "Pages") * _count(row["Copies"], "Copies")
    student = student_of(row["User"])
    if student is None:
        return Skip(NO_USER)
    if pages == 0:
        return Skip(NOTHING_PRINTED)
    event_id = derived_id(
        "papercut",
        student,
        occurred_at.isoformat(),
        row.get("Printer", ""),
        row.get("Client", ""),
        row["Pages"].strip(),
        row["Copies"].strip(),
    )
    return make_event(event_id, student, Source.PRINT, occurred_at, Attributes(pages=pages))


def read_papercut(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """PaperCut print log CSV; Time is local. Zero pages -> "nothing printed". Document Name is dropped."""
    return read_csv(lines, ("Time", "User", "Pages", "Copies"), _papercut_row, zone(timezone))
