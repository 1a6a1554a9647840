"""Reads of personal data through the access policy, each audited: shared by the CLI (when it opens
ClickHouse itself) and the service's HTTP API, so both enforce the same rule in the same way."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from typing import Any

from models.access import Action, Outcome, Staff, StaffDirectory, audit, may_see, read_staff_csv, require
from models.reports import week_label
from models.retention import round_count
from ops.jobs.reports.student import UnknownStudent, student_view_figures
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.reports import EXPORT_COLUMNS, anonymised_trend_rows
from sinks.clickhouse.students import access_scope


class _Ref:
    __slots__ = ("personal_tutor_id", "programme_code", "school", "student_id")

    def __init__(self, student_id: str, tutor: str, programme: str, school: str) -> None:
        self.student_id, self.personal_tutor_id, self.programme_code, self.school = (
            student_id,
            tutor,
            programme,
            school,
        )


def _require_audited(
    store: ClickHouseStore, viewer: Staff, student_id: str, action: Action, via: str, credential: str
) -> tuple[str, str, str, str] | None:
    """The student's scope after the policy allowed the read; a refusal is audited as refused, then
    AccessDenied raised. None for a student LDE has no roster record of (the operator only)."""
    scope = access_scope(store, student_id)
    if scope is None:
        if viewer.operator:
            return None
        raise UnknownStudent(student_id)
    try:
        require(viewer, _Ref(*scope))
    except PermissionError:
        entry = audit(datetime.now(UTC), viewer, action, via, [student_id], Outcome.REFUSED, credential)
        store.write_audit([entry])
        raise
    return scope


def student_view(
    store: ClickHouseStore, viewer: Staff, student_id: str, via: str, credential: str = ""
) -> dict[str, Any]:
    """`lde student show` / `/v1/students/{id}`: raises UnknownStudent or AccessDenied; audited."""
    _require_audited(store, viewer, student_id, Action.STUDENT_VIEW, via, credential)
    report = student_view_figures(store, student_id)
    if report is None:
        raise UnknownStudent(student_id)
    entry = audit(datetime.now(UTC), viewer, Action.STUDENT_VIEW, via, [student_id], credential=credential)
    store.write_audit([entry])
    return report


def activity_view(
    store: ClickHouseStore, viewer: Staff, student_id: str, via: str, credential: str = ""
) -> list[dict[str, Any]]:
    """`/v1/activity/{id}`: a student's daily counts per source, through the policy; audited (issue 15).
    The operator may read the counts of a student without a roster record (an orphan to find)."""
    _require_audited(store, viewer, student_id, Action.ACTIVITY_VIEW, via, credential)
    counts = store.activity_counts(student_id)
    entry = audit(datetime.now(UTC), viewer, Action.ACTIVITY_VIEW, via, [student_id], credential=credential)
    store.write_audit([entry])
    return [
        {"day": d.isoformat(), "source": src, "events": e, "attended": a}
        for (d, src), (e, a) in sorted(counts.items())
    ]


def alerts_view(
    store: ClickHouseStore, viewer: Staff, via: str, credential: str = ""
) -> list[dict[str, Any]]:
    """`lde alerts` / `/v1/alerts`: only the alerts of students the viewer may see; audited."""
    rows = [
        a
        for a in store.alerts()
        if may_see(viewer, _Ref(a["student_id"], a["personal_tutor_id"], a["programme_code"], a["school"]))
    ]
    ids = [a["student_id"] for a in rows]
    store.write_audit([audit(datetime.now(UTC), viewer, Action.ALERTS_LIST, via, ids, credential=credential)])
    return rows


def load_staff_rows(store: ClickHouseStore, rows: list[Any]) -> StaffDirectory:
    """Validate and store a new staff directory (a full replacement). Raises ValueError."""
    directory = StaffDirectory.from_rows(rows)
    store.write_staff(directory.rows(), datetime.now(UTC))
    return directory


def staff_from_csv_text(text: str) -> tuple[list[Any], list[str]]:
    """Rows and error lines of a staff CSV given as text (the HTTP upload)."""
    import tempfile
    from pathlib import Path

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    path = Path(handle.name)
    try:
        rows, errors = read_staff_csv(path)
    finally:
        path.unlink()
    return rows, [str(e) for e in errors]


# -- anonymised export -------------------------------------------------------------------------------
def export_anonymised(
    store: ClickHouseStore, first: date, last: date, who: Staff, via: str
) -> list[dict[str, Any]]:
    """Cohort x week x source rows between two days, from the disclosure-controlled trend table.

    No identifiers: no student id, name, tutor or free text; counts rounded to 5 and averages
    suppressed for 7 or fewer students (models.retention), as the trend table already holds them.
    Rounding is re-applied here so that the export stays safe even if the table were written by
    another route. Covers the weeks the daily job has recorded (a week, once complete plus lateness).
    """
    out = []
    for row in anonymised_trend_rows(store, first, last):
        record = dict(zip(EXPORT_COLUMNS, row, strict=True))
        students = int(record["students_rounded"])
        record["students_rounded"] = round_count(students)
        record["events_rounded"] = round_count(int(record["events_rounded"]))
        record["mean_events"] = (
            record["mean_events"] if students >= 8 and record["mean_events"] is not None else None
        )
        record["week"] = week_label(record["week"])
        out.append(record)
    store.write_audit([audit(datetime.now(UTC), who, Action.EXPORT_ANONYMISED, via, [])])
    return out


def export_text(rows: list[dict[str, Any]], kind: str) -> str:
    """CSV (default) or JSON lines."""
    if kind == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return buffer.getvalue()
