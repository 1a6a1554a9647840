"""ClickHouse schema: the versioned migrations, the column lists of the tables, and the connection.

Production talks HTTP to a ClickHouse server; the embedded default is chDB in-process through the
same clickhouse-connect client (`chdb://` DSN). Only one process may open a chDB path, so in the
embedded stack only the running service opens it and other commands use its HTTP API.

Every table that a replay could write twice is a ReplacingMergeTree keyed by what makes a row unique,
and rows carry absolute values (never deltas), so writing the same batch again changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from ops.settings import Settings

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

MIGRATIONS.append(
    (
        5,
        [
            # Issue 15: refused reads are audited too, with how the identity was verified.
            "ALTER TABLE access_audit ADD COLUMN IF NOT EXISTS outcome LowCardinality(String) "
            "DEFAULT 'allowed'",
            "ALTER TABLE access_audit ADD COLUMN IF NOT EXISTS credential String DEFAULT ''",
            # Personal API tokens: only the SHA-256 of each token is kept; revocation is a newer row.
            """CREATE TABLE IF NOT EXISTS api_tokens (
                token_id String,
                token_sha256 String,
                staff_id String,
                label String,
                issued_by String,
                issued_at DateTime64(3, 'UTC'),
                expires_at Nullable(DateTime64(3, 'UTC')),
                revoked_at Nullable(DateTime64(3, 'UTC')),
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(updated_at)
            ORDER BY token_id""",
        ],
    )
)

MIGRATIONS.append(
    (
        6,  # 5 is issue 15's api_tokens (merged on main while this was built)
        [
            # Alert triage (issue 16): every action staff take on an alert, with who and when. Personal
            # data (retention erases it with the student). One row per action id: a form sent twice
            # writes the same row again, which the ReplacingMergeTree keeps once.
            """CREATE TABLE IF NOT EXISTS case_actions (
                action_id String,
                alert_id String,
                student_id String,
                kind LowCardinality(String),
                staff_id String,
                at DateTime64(3, 'UTC'),
                detail String,
                until Nullable(Date),
                channel LowCardinality(String),
                assignee String,
                service LowCardinality(String)
            ) ENGINE = ReplacingMergeTree
            ORDER BY (student_id, alert_id, action_id)""",
        ],
    )
)

MIGRATIONS.append(
    (
        7,
        [
            # The alert outbox (issue 23): every delivery of an alert (email to a member of staff,
            # POST to a webhook), recorded before the alerts batch commits and sent by the drainers
            # (ops.runtime.delivery). The highest version of a delivery is its state. Personal data.
            """CREATE TABLE IF NOT EXISTS alert_outbox (
                alert_id String,
                student_id String,
                channel LowCardinality(String),
                target String,
                recorded_at DateTime64(3, 'UTC'),
                status LowCardinality(String),
                attempts UInt32,
                next_attempt_at Nullable(DateTime64(3, 'UTC')),
                last_error String,
                version UInt64,
                alert String,
                updated_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (alert_id, channel, target)""",
        ],
    )
)

MIGRATIONS.append(
    (
        8,
        [
            # Feed freshness (issue 23): the newest event time per source, restored at start so that
            # a feed silent across a restart still raises LdeFeedSilent. No personal data.
            """CREATE TABLE IF NOT EXISTS feed_freshness (
                source LowCardinality(String),
                newest_at DateTime64(3, 'UTC')
            ) ENGINE = ReplacingMergeTree(newest_at)
            ORDER BY source""",
        ],
    )
)

#: Columns of api_tokens, in insert order.
API_TOKEN_COLUMNS = (
    "token_id",
    "token_sha256",
    "staff_id",
    "label",
    "issued_by",
    "issued_at",
    "expires_at",
    "revoked_at",
    "updated_at",
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
    "case_actions": "student_id",
    "alert_outbox": "student_id",
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
