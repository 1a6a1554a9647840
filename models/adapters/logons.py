"""Logins from the directory and the remote-access gateway: campus PC logons and off-campus sessions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from zoneinfo import ZoneInfo

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    LOGOFF,
    NO_USER,
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
from models.events import Source
from models.timebuckets import zone


def _pc_logon_row(row: Mapping[str, str], tz: ZoneInfo) -> Outcome:
    """A directory logon/logoff: the logon is the engagement; the logoff closes it and is skipped."""
    occurred_at = utc_instant(row["timestamp"], "timestamp", tz)
    kind = row["event"].strip().lower()
    if kind not in ("logon", "logoff"):
        raise BadRecord("event: neither logon nor logoff")
    student = student_of(row["username"])
    if student is None:
        return Skip(NO_USER)
    if kind == "logoff":
        return Skip(LOGOFF)
    event_id = derived_id("pc-logons", student, occurred_at.isoformat(), row.get("computer", "").strip())
    return make_event(event_id, student, Source.PC_LOGON, occurred_at)


def _remote_session_row(row: Mapping[str, str], tz: ZoneInfo) -> Outcome:
    """One off-campus session: one remote event at its start."""
    occurred_at = utc_instant(row["session_start"], "session_start", tz)
    student = student_of(row["username"])
    if student is None:
        return Skip(NO_USER)
    event_id = derived_id(
        "remote-sessions", student, occurred_at.isoformat(), row.get("application", "").strip()
    )
    return make_event(event_id, student, Source.REMOTE, occurred_at)


def read_pc_logons(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Campus PC logons CSV: logon -> pc_logon; logoff -> skipped "logoff"; any other event is Invalid."""
    return read_csv(lines, ("timestamp", "username", "event"), _pc_logon_row, zone(timezone))


def read_remote_sessions(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Remote / VPN sessions CSV: one remote event per session, at session_start."""
    return read_csv(lines, ("session_start", "username"), _remote_session_row, zone(timezone))
