"""Reads of personal data through the access policy, each audited by the one gateway
(ops.jobs.reports.audited): shared by the CLI (when it opens ClickHouse itself), the service's HTTP API
and the web app, so all enforce the same rule in the same way."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from typing import Any

from models.access import Action, Staff, StaffDirectory, may_see, read_staff_csv
from models.reports import week_label
from models.retention import round_count
from ops.jobs.reports.audited import AuditedReads, Subject, UnknownStudent
from ops.jobs.reports.student import student_view_figures
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.reports import EXPORT_COLUMNS, anonymised_trend_rows
from sinks.clickhouse.students import access_scopes


def student_view(
    store: ClickHouseStore,
    reads: AuditedReads,
    viewer: Staff,
    student_id: str,
    via: str,
    credential: str = "",
    min_group: int = 8,
) -> dict[str, Any]:
    """`lde student show` / `/v1/students/{id}` and the web app's student pages: raises
    UnknownStudent or AccessDenied; audited by the gateway. Averages over groups of `min_group`
    students or more (LDE_MIN_COHORT_SIZE)."""

    def read() -> dict[str, Any]:
        report = student_view_figures(store, student_id, min_group=min_group)
        if report is None:
            raise UnknownStudent(student_id)
        return report

    return reads.student(viewer, student_id, Action.STUDENT_VIEW, via, read, credential)


def activity_view(
    store: ClickHouseStore,
    reads: AuditedReads,
    viewer: Staff,
    student_id: str,
    via: str,
    credential: str = "",
) -> list[dict[str, Any]]:
    """`/v1/activity/{id}`: a student's daily counts per source, through the policy; audited (issue 15).
    The operator may read the counts of a student without a roster record (an orphan to find)."""
    counts = reads.student(
        viewer, student_id, Action.ACTIVITY_VIEW, via, lambda: store.activity_counts(student_id), credential
    )
    return [
        {"day": d.isoformat(), "source": src, "events": e, "attended": a}
        for (d, src), (e, a) in sorted(counts.items())
    ]


def alerts_view(
    store: ClickHouseStore, reads: AuditedReads, viewer: Staff, via: str, credential: str = ""
) -> list[dict[str, Any]]:
    """`lde alerts` / `/v1/alerts`: only the alerts of students the viewer may see, decided on each
    student's roster record NOW (a student moved to another tutor is the new tutor's, alerts raised
    before the move included); the operator also sees alerts of students no longer on it. Audited."""
    everything = store.alerts()
    scopes = access_scopes(store, [a["student_id"] for a in everything])
    rows = []
    for alert in everything:
        scope = scopes.get(alert["student_id"])
        if viewer.operator or (scope is not None and may_see(viewer, Subject(*scope))):
            rows.append(alert)
    reads.record(viewer, Action.ALERTS_LIST, via, [a["student_id"] for a in rows], credential)
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
    store: ClickHouseStore, reads: AuditedReads, first: date, last: date, who: Staff, via: str
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
    reads.record(who, Action.EXPORT_ANONYMISED, via, [])
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
