"""ClickHouseStore: the thread-safe client, and the writers and readers of the stream and the service.

The queries of the daily job, the reports, the student view and the privacy check are in the modules
next to this one (jobs, reports, students, privacy), each a named function over a ClickHouseStore.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from pydantic import ValidationError

from models.access import AuditEntry, StaffRow
from models.activity import ATTENDED, N_SOURCES
from models.alerts import Alert
from models.evaluation import PartitionProgress, ScoreColumns, ScoreRow
from models.events import SOURCES
from models.roster import Absence, RosterRecord
from sinks.clickhouse.schema import ALERT_COLUMNS, ALERT_FIELDS, STUDENT_COLUMNS

log = logging.getLogger("lde.clickhouse")
Row = TypeVar("Row")


def valid_rows(table: str, rows: Iterable[Sequence[Any]], build: Callable[..., Row]) -> list[Row]:
    """Stored rows as models; a row stored before today's validation (an identifier outside the
    pattern of issue 22) is left out with a warning instead of stopping every reader."""
    out: list[Row] = []
    refused = 0
    for row in rows:
        try:
            out.append(build(*row))
        except ValidationError:
            refused += 1
    if refused:
        log.warning("stored_rows_refused table=%s rows=%d: load them again from a valid file", table, refused)
    return out


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # a ClickHouse Date is days since 1970-01-01


class ClickHouseStore:
    """Thread-safe writers and readers over one client (chDB connections are not shared across threads)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._types: dict[tuple[str, tuple[str, ...]], Sequence[Any]] = {}

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._lock:
            self.client.insert(table, list(rows), column_names=list(columns))

    def close(self) -> None:
        """Release the client (chDB: only one data folder may be open per process at a time)."""
        with self._lock:
            self.client.close()

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(r) for r in self.client.query(sql, parameters=parameters).result_rows]

    def ping(self) -> bool:
        """Whether ClickHouse answers a trivial query (the health probe); raises what the client raises."""
        return bool(self.query("SELECT 1"))

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.client.command(sql, parameters=parameters)

    # -- writers ------------------------------------------------------------------------------------
    def write_activity(self, rows: Iterable[tuple[str, int, list[int], int]]) -> int:
        """Absolute per-student per-day per-source counts. rows: (student, day ordinal, counts, version).

        Inserted as columns, built straight from the rows (days as days since 1970, which is what a
        Date column stores): the row-oriented insert transposed every row again, and this runs on a
        thread that holds the GIL against the stream for as long as it runs Python.
        """
        names = [source.value for source in SOURCES]
        attendance = N_SOURCES - 1
        students: list[str] = []
        days: list[int] = []
        sources: list[str] = []
        events: list[int] = []
        attended: list[int] = []
        versions: list[int] = []
        for student_id, day, counts, version in rows:
            since_epoch = day - _EPOCH_ORDINAL
            for i in range(N_SOURCES):
                count = counts[i]
                if count:
                    students.append(student_id)
                    days.append(since_epoch)
                    sources.append(names[i])
                    events.append(count)
                    attended.append(counts[ATTENDED] if i == attendance else 0)
                    versions.append(version)
        if students:
            columns: list[Sequence[Any]] = [students, days, sources, events, attended, versions]
            names = ["student_id", "day", "source", "events", "attended", "version"]
            with self._lock:
                self.client.insert(
                    "activity_daily",
                    columns,
                    column_names=names,
                    column_types=self._column_types("activity_daily", names),
                    column_oriented=True,
                )
        return len(students)

    def _column_types(self, table: str, names: list[str]) -> Sequence[Any]:
        """A table's column types, asked of the server once: an insert without them runs a DESCRIBE
        query first, which cost as much as a small insert itself on the stream's path. Call locked."""
        key = (table, tuple(names))
        types = self._types.get(key)
        if types is None:
            types = self._types[key] = self.client.create_insert_context(table, names).column_types
        return types

    def write_students(self, records: Iterable[RosterRecord]) -> None:
        now = datetime.now(UTC)
        rows = [
            (
                r.student_id,
                r.given_name,
                r.family_name,
                r.email,
                r.programme_code,
                r.programme_name,
                r.school,
                r.year_of_study,
                r.mode.value,
                r.status.value,
                r.start_date,
                r.leave_date,
                r.personal_tutor_id,
                now,
            )
            for r in records
        ]
        self.insert("students", rows, STUDENT_COLUMNS)

    def write_absences(self, absences: Iterable[Absence]) -> None:
        now = datetime.now(UTC)
        rows = [(a.student_id, a.from_date, a.to_date, a.reason.value, now) for a in absences]
        self.insert("absences", rows, ("student_id", "from_date", "to_date", "reason", "updated_at"))

    def write_alerts(self, alerts: Iterable[Alert]) -> None:
        now = datetime.now(UTC)
        rows = [
            (
                a.alert_id,
                a.student_id,
                a.rule.value,
                a.raised_on,
                a.episode_start,
                a.days_silent,
                a.last_active_on,
                a.programme_code,
                a.year_of_study,
                a.mode,
                a.school,
                a.personal_tutor_id,
                a.explanation,
                now,
                a.about_rule.value if a.about_rule else "",
                a.score,
                a.band or "",
                json.dumps(a.figures, sort_keys=True),
            )
            for a in alerts
        ]
        self.insert("alerts", rows, ALERT_COLUMNS)

    def write_progress(self, partition: int, progress: PartitionProgress) -> None:
        self.write_progresses([partition], progress)

    def write_progresses(self, partitions: Iterable[int], progress: PartitionProgress) -> None:
        """The same progress for several partitions, in one insert (`lde backfill` judges them all)."""
        now = datetime.now(UTC)
        self.insert(
            "evaluator_progress",
            [(p, progress.started_on, progress.evaluated_through, now) for p in partitions],
            ("partition", "started_on", "evaluated_through", "updated_at"),
        )

    # -- readers ------------------------------------------------------------------------------------
    def progress(self) -> dict[int, PartitionProgress]:
        rows = self.query("SELECT partition, started_on, evaluated_through FROM evaluator_progress FINAL")
        return {int(p): PartitionProgress(s, d) for p, s, d in rows}

    def alerts(self, limit: int = 100_000, student_id: str | None = None) -> list[dict[str, Any]]:
        where = "WHERE student_id = {sid:String} " if student_id else ""
        rows = self.query(
            f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts FINAL {where}"
            "ORDER BY raised_on, student_id, rule LIMIT {limit:UInt32}",
            {"limit": limit, "sid": student_id or ""},
        )
        out = []
        for row in rows:
            alert = dict(zip(ALERT_FIELDS, row, strict=True))
            alert["figures"] = json.loads(alert["figures"] or "{}")
            alert["about_rule"] = alert["about_rule"] or None
            alert["band"] = alert["band"] or None
            out.append(alert)
        return out

    def write_scores(self, scores: ScoreColumns | Iterable[ScoreRow]) -> None:
        """Scores, inserted as columns (a whole institution's day is one insert)."""
        if isinstance(scores, ScoreColumns):
            days: Sequence[date] = [scores.day] * len(scores)
            ids, values, bands = scores.student_ids, scores.scores, scores.bands
            bases, percentiles = scores.bases, scores.overall_percentiles
        else:
            rows = list(scores)
            days = [r.day for r in rows]
            ids, values, bands = [r.student_id for r in rows], [r.score for r in rows], [r.band for r in rows]
            bases, percentiles = [r.basis for r in rows], [r.overall_percentile for r in rows]
        if not ids:
            return
        columns = [ids, days, values, bands, bases, percentiles, [datetime.now(UTC)] * len(ids)]
        names = ["student_id", "day", "score", "band", "basis", "overall_percentile", "updated_at"]
        with self._lock:
            self.client.insert("daily_scores", columns, column_names=names, column_oriented=True)

    def write_memory(self, day: date, memories: dict[str, str]) -> None:
        now = datetime.now(UTC)
        self.insert(
            "rule_memory",
            [(sid, memory, day, now) for sid, memory in memories.items()],
            ("student_id", "memory", "day", "updated_at"),
        )

    def memories(self) -> dict[str, str]:
        rows = self.query("SELECT student_id, memory FROM rule_memory FINAL WHERE memory != ''")
        return {sid: memory for sid, memory in rows}

    def write_cohort_stats(self, rows: Iterable[tuple[Any, ...]]) -> None:
        now = datetime.now(UTC)
        self.insert(
            "cohort_daily",
            [(*row, now) for row in rows],
            ("day", "basis", "group_key", "source", "students", "mean", "median", "q1", "q3", "updated_at"),
        )

    def alert_keys(self) -> set[str]:
        return {row[0] for row in self.query("SELECT alert_id FROM alerts FINAL")}

    def students(self) -> list[RosterRecord]:
        rows = self.query(f"SELECT {', '.join(STUDENT_COLUMNS[:-1])} FROM students FINAL")
        return valid_rows(
            "students",
            rows,
            lambda *r: RosterRecord.model_validate(dict(zip(STUDENT_COLUMNS[:-1], r, strict=True))),
        )

    def all_absences(self) -> list[Absence]:
        rows = self.query("SELECT student_id, from_date, to_date, reason FROM absences FINAL")
        return valid_rows(
            "absences", rows, lambda s, f, t, r: Absence(student_id=s, from_date=f, to_date=t, reason=r)
        )

    def activity_since(self, first_day: date) -> list[tuple[str, date, str, int, int, int]]:
        """Rows for rebuilding state: (student, day, source, events, attended, version)."""
        return self.query(
            "SELECT student_id, day, source, events, attended, version FROM activity_daily FINAL "
            "WHERE day >= {first:Date}",
            {"first": first_day},
        )  # type: ignore[return-value]

    def last_active_days(self) -> dict[str, date]:
        """Each student's latest day with engagement (any source but unattended sessions), daily rows
        and compacted weekly rows alike."""
        rows = self.query(
            "SELECT student_id, max(d) FROM ("
            " SELECT student_id, day AS d FROM activity_daily FINAL"
            "  WHERE source != 'attendance' OR attended > 0"
            " UNION ALL"
            " SELECT student_id, last_day AS d FROM activity_weekly FINAL WHERE last_day > toDate(0)"
            ") GROUP BY student_id"
        )
        return {s: d for s, d in rows}

    def activity_counts(self, student_id: str) -> dict[tuple[date, str], tuple[int, int]]:
        rows = self.query(
            "SELECT day, source, events, attended FROM activity_daily FINAL WHERE student_id = {s:String}",
            {"s": student_id},
        )
        return {(d, s): (e, a) for d, s, e, a in rows}

    # -- staff and audit (issue 6) -------------------------------------------------------------------
    def write_staff(self, rows: Iterable[StaffRow], loaded_at: datetime) -> int:
        """Replace the staff directory: a new load, which readers take over every earlier one."""
        out = [(r.staff_id, r.name, r.email, r.role.value, r.scope, loaded_at) for r in rows]
        self.insert("staff", out, ("staff_id", "name", "email", "role", "scope", "loaded_at"))
        return len(out)

    def staff_rows(self) -> list[StaffRow]:
        """The latest staff load (empty when none was loaded)."""
        rows = self.query(
            "SELECT staff_id, name, email, role, scope FROM staff "
            "WHERE loaded_at = (SELECT max(loaded_at) FROM staff) ORDER BY staff_id, role, scope"
        )
        return valid_rows(
            "staff", rows, lambda i, n, e, r, s: StaffRow(staff_id=i, name=n, email=e, role=r, scope=s)
        )

    def write_audit(self, entries: Iterable[AuditEntry]) -> None:
        """Append audit entries (who read which students' personal data, when, through what; refused
        reads too, with outcome 'refused')."""
        self.insert(
            "access_audit",
            [
                (e.at, e.staff_id, e.action.value, e.via, list(e.student_ids), e.outcome.value, e.credential)
                for e in entries
            ],
            ("at", "staff_id", "action", "via", "student_ids", "outcome", "credential"),
        )

    def audit_rows(self, outcome: str | None = "allowed") -> list[tuple[Any, ...]]:
        """The reads made (at, staff_id, action, via, student_ids); `outcome='refused'` gives the
        refused ones, None both."""
        where = "" if outcome is None else "WHERE outcome = {o:String} "
        return self.query(
            "SELECT at, staff_id, action, via, student_ids FROM access_audit " + where + "ORDER BY at",
            {"o": outcome or ""},
        )

    def audit_details(self) -> list[tuple[Any, ...]]:
        """Every audit row with its outcome and credential (the security tests and `lde` audits)."""
        return self.query(
            "SELECT at, staff_id, action, via, student_ids, outcome, credential FROM access_audit ORDER BY at"
        )
