"""The daily job's queries (ops.jobs.daily.DailyJob): trends, compaction, retention and the run record.

Each is idempotent, as the job's steps must be: a run killed part-way completes when run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from models.schedule import RunRecord
from sinks.clickhouse.schema import PERSONAL_TABLES, TREND_COLUMNS
from sinks.clickhouse.store import ClickHouseStore

_WEEKLY_EVENTS_BY_COHORT_SQL = """
            SELECT week, s.programme_code, s.year_of_study, s.mode, s.school, source, sum(events)
            FROM (
                SELECT student_id, week, source, max(events) AS events FROM (
                    SELECT student_id, toMonday(day) AS week, source, sum(events) AS events
                    FROM activity_daily FINAL WHERE day < {cutoff:Date} GROUP BY student_id, week, source
                    UNION ALL
                    SELECT student_id, week, source, events
                    FROM activity_weekly FINAL WHERE week < {cutoff:Date}
                ) GROUP BY student_id, week, source
            ) AS a
            INNER JOIN (SELECT * FROM students FINAL) AS s ON a.student_id = s.student_id
            GROUP BY week, s.programme_code, s.year_of_study, s.mode, s.school, source
            """

_ROLL_UP_SQL = """
                INSERT INTO activity_weekly (student_id, week, source, events, attended, last_day, version)
                SELECT student_id, toMonday(day) AS week, source, sum(events), sum(attended),
                       maxIf(day, source != 'attendance' OR attended > 0), max(version)
                FROM activity_daily FINAL WHERE day < {cutoff:Date}
                GROUP BY student_id, week, source
                """


# -- trends ------------------------------------------------------------------------------------------
def recorded_trend_weeks(store: ClickHouseStore) -> set[date]:
    """The weeks that already have trend rows (a recorded week is never recomputed)."""
    return {r[0] for r in store.query("SELECT DISTINCT week FROM trend_weekly")}


def weekly_events_by_cohort(store: ClickHouseStore, before: date) -> list[tuple[Any, ...]]:
    """(week, programme, year, mode, school, source, events) of every week before `before`.

    Daily and compacted weekly rows alike: a week both hold (compaction ran part-way) counts once.
    """
    return store.query(_WEEKLY_EVENTS_BY_COHORT_SQL, {"cutoff": before})


def cohort_sizes(store: ClickHouseStore) -> dict[tuple[str, int, str], int]:
    """Students on the roster per cohort (programme, year of study, mode)."""
    return {
        (p, y, m): n
        for p, y, m, n in store.query(
            "SELECT programme_code, year_of_study, mode, count() FROM students FINAL "
            "GROUP BY programme_code, year_of_study, mode"
        )
    }


def write_trends(store: ClickHouseStore, rows: Sequence[Sequence[Any]]) -> None:
    """Append anonymised trend rows, in TREND_COLUMNS order."""
    store.insert("trend_weekly", rows, TREND_COLUMNS)


# -- compaction --------------------------------------------------------------------------------------
def daily_rows_before(store: ClickHouseStore, cutoff: date) -> int:
    """How many per-student daily rows are older than `cutoff` (what compaction would roll up)."""
    rows = store.query(
        "SELECT count() FROM activity_daily FINAL WHERE day < {cutoff:Date}", {"cutoff": cutoff}
    )
    return int(rows[0][0])


def roll_up_daily_rows(store: ClickHouseStore, cutoff: date) -> None:
    """Roll the daily rows older than `cutoff` up into weekly rows, then delete them. Blocks until the
    delete is done (mutations_sync = 2); the weekly rows are absolute, so a second run changes nothing."""
    store.command(_ROLL_UP_SQL, {"cutoff": cutoff})
    store.command(
        "ALTER TABLE activity_daily DELETE WHERE day < {cutoff:Date} SETTINGS mutations_sync = 2",
        {"cutoff": cutoff},
    )


# -- retention ---------------------------------------------------------------------------------------
def personal_row_counts(store: ClickHouseStore, student_ids: Sequence[str]) -> dict[str, int]:
    """Rows per personal table that name one of the students."""
    return {
        table: int(
            store.query(
                f"SELECT count() FROM {table} WHERE {column} IN {{ids:Array(String)}}", {"ids": student_ids}
            )[0][0]
        )
        for table, column in PERSONAL_TABLES.items()
    }


def erase_students(store: ClickHouseStore, student_ids: Sequence[str]) -> None:
    """Delete the students' rows from every personal table and their ids from the access audit.

    The access audit keeps who read what and when, but no longer whom (issue 6). Blocks until the
    mutations are done (mutations_sync = 2).
    """
    for table, column in PERSONAL_TABLES.items():
        store.command(
            f"ALTER TABLE {table} DELETE WHERE {column} IN {{ids:Array(String)}} SETTINGS mutations_sync = 2",
            {"ids": student_ids},
        )
    store.command(
        "ALTER TABLE access_audit UPDATE student_ids = "
        "arrayFilter(x -> NOT has({ids:Array(String)}, x), student_ids) "
        "WHERE hasAny(student_ids, {ids:Array(String)}) SETTINGS mutations_sync = 2",
        {"ids": student_ids},
    )


def orphan_student_ids(store: ClickHouseStore) -> set[str]:
    """Ids with personal rows but no roster row: the leftovers of an interrupted erasure."""
    rows = store.query(
        "SELECT DISTINCT student_id FROM (SELECT student_id FROM activity_daily UNION ALL "
        "SELECT student_id FROM activity_weekly UNION ALL SELECT student_id FROM alerts UNION ALL "
        "SELECT student_id FROM case_actions) "
        "WHERE student_id NOT IN (SELECT student_id FROM students)"
    )
    return {r[0] for r in rows}


# -- the run record ----------------------------------------------------------------------------------
def record_job_run(
    store: ClickHouseStore,
    *,
    run_id: str,
    job: str,
    as_of: date,
    dry_run: bool,
    started_at: datetime,
    finished_at: datetime,
    status: str,
    details: str,
) -> None:
    """Append one run of a job to job_runs (details: the steps as JSON)."""
    store.insert(
        "job_runs",
        [(run_id, job, as_of, dry_run, started_at, finished_at, status, details)],
        ("run_id", "job", "as_of", "dry_run", "started_at", "finished_at", "status", "details"),
    )


def job_run_records(store: ClickHouseStore, job: str, since: date) -> list[RunRecord]:
    """Every run of `job` recorded for a period (`as_of`) from `since` on, dry runs left out."""
    rows = store.query(
        "SELECT as_of, status, finished_at FROM job_runs "
        "WHERE job = {job:String} AND as_of >= {since:Date} AND NOT dry_run",
        {"job": job, "since": since},
    )
    return [RunRecord(r[0], r[1], r[2] if r[2].tzinfo else r[2].replace(tzinfo=UTC)) for r in rows]
