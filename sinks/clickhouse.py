"""ClickHouse: schema migrations and idempotent writers.

Production talks HTTP to a ClickHouse server; the embedded default is chDB in-process through the
same clickhouse-connect client (`chdb://` DSN). Only one process may open a chDB path, so in the
embedded stack only the running service opens it and other commands use its HTTP API.

Every table that a replay could write twice is a ReplacingMergeTree keyed by what makes a row unique,
and rows carry absolute values (never deltas), so writing the same batch again changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from models.access import AuditEntry, StaffRow
from models.activity import ATTENDED, N_SOURCES
from models.alerts import Alert
from models.evaluation import PartitionProgress, ScoreColumns, ScoreRow
from models.events import SOURCES
from models.roster import Absence, RosterRecord
from ops.settings import Settings

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # a ClickHouse Date is days since 1970-01-01

log = logging.getLogger(__name__)

#: Versioned, idempotent migrations: (version, statements). Applied in order at start-up.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS activity_daily (
                student_id String,
                day Date,
                source LowCardinality(String),
                events UInt32,
                attended UInt32,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (student_id, day, source)""",
            """CREATE TABLE IF NOT EXISTS students (
                student_id String,
                given_name String,
                family_name String,
                email String,
                programme_code LowCardinality(String),
                programme_name String,
                school LowCardinality(String),
                year_of_study UInt8,
                mode LowCardinality(String),
                status LowCardinality(String),
                start_date Date,
                leave_date Nullable(Date),
                personal_tutor_id String,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY student_id""",
            """CREATE TABLE IF NOT EXISTS absences (
                student_id String,
                from_date Date,
                to_date Date,
                reason LowCardinality(String),
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (student_id, from_date, reason)""",
            """CREATE TABLE IF NOT EXISTS alerts (
                alert_id String,
                student_id String,
                rule LowCardinality(String),
                raised_on Date,
                episode_start Date,
                days_silent UInt16,
                last_active_on Nullable(Date),
                programme_code LowCardinality(String),
                year_of_study UInt8,
                mode LowCardinality(String),
                school LowCardinality(String),
                personal_tutor_id String,
                explanation String,
                created_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree
            ORDER BY (student_id, rule, episode_start, alert_id)""",
            """CREATE TABLE IF NOT EXISTS evaluator_progress (
                partition UInt16,
                started_on Date,
                evaluated_through Date,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY partition""",
        ],
    ),
]


MIGRATIONS.append(
    (
        2,
        [
            # Weekly roll-up of per-student rows older than the compaction age (personal data).
            """CREATE TABLE IF NOT EXISTS activity_weekly (
                student_id String,
                week Date,
                source LowCardinality(String),
                events UInt32,
                attended UInt32,
                last_day Date,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (student_id, week, source)""",
            # Anonymised trend data: cohort x week x source, disclosure-controlled, no identifiers.
            """CREATE TABLE IF NOT EXISTS trend_weekly (
                week Date,
                programme_code LowCardinality(String),
                year_of_study UInt8,
                mode LowCardinality(String),
                school LowCardinality(String),
                source LowCardinality(String),
                students_rounded UInt32,
                events_rounded UInt64,
                mean_events Nullable(Float64),
                computed_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(computed_at)
            ORDER BY (week, programme_code, year_of_study, mode, source)""",
            """CREATE TABLE IF NOT EXISTS job_runs (
                run_id String,
                job LowCardinality(String),
                as_of Date,
                dry_run Bool,
                started_at DateTime64(3, 'UTC'),
                finished_at DateTime64(3, 'UTC'),
                status LowCardinality(String),
                details String
            ) ENGINE = MergeTree
            ORDER BY (job, started_at)""",
            """CREATE TABLE IF NOT EXISTS access_audit (
                at DateTime64(3, 'UTC'),
                staff_id String,
                action LowCardinality(String),
                via LowCardinality(String),
                student_ids Array(String)
            ) ENGINE = MergeTree
            ORDER BY at""",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        [
            "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS about_rule LowCardinality(String) DEFAULT ''",
            "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS score Nullable(Float32)",
            "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS band LowCardinality(String) DEFAULT ''",
            "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS figures String DEFAULT '{}'",
            # A student's standing per day: the score and band the reports and `lde student show` read.
            """CREATE TABLE IF NOT EXISTS daily_scores (
                student_id String,
                day Date,
                score Float32,
                band LowCardinality(String),
                basis LowCardinality(String),
                overall_percentile Float32,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (student_id, day)""",
            # The rules' memory (open episodes, streaks): survives restarts of the service.
            """CREATE TABLE IF NOT EXISTS rule_memory (
                student_id String,
                memory String,
                day Date,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY student_id""",
            # Comparison-group statistics per day and source (no identifiers; internal benchmarks).
            """CREATE TABLE IF NOT EXISTS cohort_daily (
                day Date,
                basis LowCardinality(String),
                group_key String,
                source LowCardinality(String),
                students UInt32,
                mean Nullable(Float64),
                median Nullable(Float64),
                q1 Nullable(Float64),
                q3 Nullable(Float64),
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY (day, basis, group_key, source)""",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        [
            # The staff directory (issue 6). Every load is kept with its time: readers take the latest
            # load, and the history says who could see whom when (for audits of past access).
            """CREATE TABLE IF NOT EXISTS staff (
                staff_id String,
                name String,
                email String,
                role LowCardinality(String),
                scope String,
                loaded_at DateTime64(3, 'UTC')
            ) ENGINE = MergeTree
            ORDER BY (loaded_at, staff_id)""",
        ],
    )
)

#: Columns of trend_weekly (anonymised, disclosure-controlled trends), in insert order.
TREND_COLUMNS = (
    "week",
    "programme_code",
    "year_of_study",
    "mode",
    "school",
    "source",
    "students_rounded",
    "events_rounded",
    "mean_events",
    "computed_at",
)

#: Every table that holds personal data, with the column naming the student (retention deletes here).
PERSONAL_TABLES: dict[str, str] = {
    "activity_daily": "student_id",
    "activity_weekly": "student_id",
    "students": "student_id",
    "absences": "student_id",
    "alerts": "student_id",
    "daily_scores": "student_id",
    "rule_memory": "student_id",
}


def connect(settings: Settings) -> Client:
    """A clickhouse-connect client for the configured ClickHouse (chDB when no URL is set)."""
    url = settings.clickhouse_url.get_secret_value()
    if url:
        return clickhouse_connect.get_client(dsn=url, database=settings.clickhouse_database)
    settings.chdb_path.parent.mkdir(parents=True, exist_ok=True)
    dsn = f"chdb://{settings.chdb_path}"
    clickhouse_connect.get_client(dsn=dsn).command(
        f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_database}"
    )
    return clickhouse_connect.get_client(dsn=dsn, database=settings.clickhouse_database)


def migrate(client: Client) -> int:
    """Apply pending migrations; safe to run any number of times. Returns the schema version."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    for version, statements in MIGRATIONS:
        if version in applied:
            continue
        for statement in statements:
            client.command(statement)
        client.insert(
            "schema_migrations", [[version, datetime.now(UTC)]], column_names=["version", "applied_at"]
        )
        log.info("schema migrated version=%d", version)
    return max(v for v, _ in MIGRATIONS)


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
        self.insert(
            "evaluator_progress",
            [(partition, progress.started_on, progress.evaluated_through, datetime.now(UTC))],
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
        return [RosterRecord.model_validate(dict(zip(STUDENT_COLUMNS[:-1], r, strict=True))) for r in rows]

    def all_absences(self) -> list[Absence]:
        rows = self.query("SELECT student_id, from_date, to_date, reason FROM absences FINAL")
        return [Absence(student_id=s, from_date=f, to_date=t, reason=r) for s, f, t, r in rows]

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
        return [
            StaffRow(staff_id=i, name=n, email=e, role=r, scope=s)  # type: ignore[arg-type]
            for i, n, e, r, s in rows
        ]

    def write_audit(self, entries: Iterable[AuditEntry]) -> None:
        """Append audit entries (who read which students' personal data, when, through what)."""
        self.insert(
            "access_audit",
            [(e.at, e.staff_id, e.action.value, e.via, list(e.student_ids)) for e in entries],
            ("at", "staff_id", "action", "via", "student_ids"),
        )

    def audit_rows(self) -> list[tuple[Any, ...]]:
        return self.query("SELECT at, staff_id, action, via, student_ids FROM access_audit ORDER BY at")


STUDENT_COLUMNS = (
    "student_id",
    "given_name",
    "family_name",
    "email",
    "programme_code",
    "programme_name",
    "school",
    "year_of_study",
    "mode",
    "status",
    "start_date",
    "leave_date",
    "personal_tutor_id",
    "updated_at",
)
ALERT_COLUMNS = (
    "alert_id",
    "student_id",
    "rule",
    "raised_on",
    "episode_start",
    "days_silent",
    "last_active_on",
    "programme_code",
    "year_of_study",
    "mode",
    "school",
    "personal_tutor_id",
    "explanation",
    "created_at",
    "about_rule",
    "score",
    "band",
    "figures",
)
#: What the alert readers return (everything but the write timestamp).
ALERT_FIELDS = tuple(c for c in ALERT_COLUMNS if c != "created_at")
