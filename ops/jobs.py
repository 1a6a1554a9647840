"""The daily job: anonymised trends, compaction and retention, with a run record.

Order matters and every step is idempotent, so running it twice gives the same result and a run killed
part-way completes when run again:
1. trends: cohort x week x source aggregates (disclosure-controlled, no identifiers) for every
   complete week not yet recorded; a recorded week is never recomputed, so later deletions of
   personal rows leave the trend totals unchanged;
2. compaction: per-student daily rows older than the compaction age are rolled up into weekly rows,
   then the daily rows are deleted;
3. retention: every student whose leave date plus the retention period has passed is erased from
   every store (ClickHouse rows, Redis keys, Faust tables and keyed topics through tombstones).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models.retention import (
    RetentionPolicy,
    compaction_cutoff,
    disclose_average,
    round_count,
    students_due_for_deletion,
)
from ops.settings import Settings
from sinks.clickhouse import PERSONAL_TABLES, TREND_COLUMNS, ClickHouseStore
from sinks.kafka import Publisher
from sinks.redis_store import AlertLedger

log = logging.getLogger("lde.jobs")

#: Publishes tombstones for erased students (roster, absences, activity state); None when no broker.
TombstonePublisher = Callable[[Sequence[str]], None]


@dataclass
class JobRun:
    run_id: str
    as_of: date
    dry_run: bool
    started_at: datetime
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "running"
    finished_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": "daily",
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "steps": self.steps,
        }


class DailyJob:
    """Thin shell over the pure retention rules: it only moves data between the stores."""

    def __init__(
        self,
        store: ClickHouseStore,
        ledger: AlertLedger,
        policy: RetentionPolicy,
        tombstones: TombstonePublisher | None,
        lateness_days: int = 3,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.policy = policy
        self.tombstones = tombstones
        self.lateness_days = lateness_days

    def run(self, as_of: date, dry_run: bool = False) -> JobRun:
        run = JobRun(str(uuid.uuid4()), as_of, dry_run, datetime.now(UTC))
        try:
            for name, step in (
                ("trends", self._trends),
                ("compaction", self._compaction),
                ("retention", self._retention),
            ):
                started = time.perf_counter()
                run.steps[name] = step(as_of, dry_run)
                run.steps[name]["seconds"] = round(time.perf_counter() - started, 3)
                log.info(
                    "daily_job step=%s %s", name, " ".join(f"{k}={v}" for k, v in run.steps[name].items())
                )
            run.status = "success"
        except Exception as error:
            run.status = "failed"
            run.steps["error"] = {"message": repr(error)}
            raise
        finally:
            run.finished_at = datetime.now(UTC)
            self._record(run)
        return run

    # -- steps ---------------------------------------------------------------------------------------
    def _trends(self, as_of: date, dry_run: bool) -> dict[str, Any]:
        """Aggregate every complete week (plus lateness) that has no trend rows yet."""
        last_week = as_of - timedelta(days=7 + self.lateness_days)
        last_week -= timedelta(days=last_week.weekday())
        done = {r[0] for r in self.store.query("SELECT DISTINCT week FROM trend_weekly")}
        rows = self.store.query(
            """
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
            """,
            {"cutoff": last_week},
        )
        sizes = {
            (p, y, m): n
            for p, y, m, n in self.store.query(
                "SELECT programme_code, year_of_study, mode, count() FROM students FINAL "
                "GROUP BY programme_code, year_of_study, mode"
            )
        }
        now = datetime.now(UTC)
        out = []
        for week, programme, year, mode, school, source, total in rows:
            if week in done:
                continue
            cohort = sizes.get((programme, year, mode), 0)
            out.append(
                (
                    week,
                    programme,
                    year,
                    mode,
                    school,
                    source,
                    round_count(cohort),
                    round_count(int(total)),
                    disclose_average(float(total), cohort),
                    now,
                )
            )
        if not dry_run and out:
            self.store.insert(
                "trend_weekly",
                out,
                TREND_COLUMNS,
            )
        return {"weeks": len({r[0] for r in out}), "rows": len(out)}

    def _compaction(self, as_of: date, dry_run: bool) -> dict[str, Any]:
        cutoff = compaction_cutoff(as_of, self.policy)
        pending = self.store.query(
            "SELECT count() FROM activity_daily FINAL WHERE day < {cutoff:Date}", {"cutoff": cutoff}
        )[0][0]
        if not dry_run and pending:
            self.store.command(
                """
                INSERT INTO activity_weekly (student_id, week, source, events, attended, last_day, version)
                SELECT student_id, toMonday(day) AS week, source, sum(events), sum(attended),
                       maxIf(day, source != 'attendance' OR attended > 0), max(version)
                FROM activity_daily FINAL WHERE day < {cutoff:Date}
                GROUP BY student_id, week, source
                """,
                {"cutoff": cutoff},
            )
            self.store.command(
                "ALTER TABLE activity_daily DELETE WHERE day < {cutoff:Date} SETTINGS mutations_sync = 2",
                {"cutoff": cutoff},
            )
        return {"cutoff": cutoff.isoformat(), "daily_rows_rolled_up": int(pending)}

    def _retention(self, as_of: date, dry_run: bool) -> dict[str, Any]:
        due = students_due_for_deletion(self.store.students(), as_of, self.policy)
        # Students already erased from `students` may still have rows elsewhere after a killed run.
        orphans = sorted(self._orphans() - set(due))
        erase = due + orphans
        counts: dict[str, int] = {}
        if erase:
            for table, column in PERSONAL_TABLES.items():
                counts[table] = int(
                    self.store.query(
                        f"SELECT count() FROM {table} WHERE {column} IN {{ids:Array(String)}}", {"ids": erase}
                    )[0][0]
                )
        if not dry_run and erase:
            if self.tombstones is not None:
                self.tombstones(erase)
            for table, column in PERSONAL_TABLES.items():
                self.store.command(
                    f"ALTER TABLE {table} DELETE WHERE {column} IN {{ids:Array(String)}} "
                    "SETTINGS mutations_sync = 2",
                    {"ids": erase},
                )
            # The access audit keeps who read what and when, but no longer whom (issue 6).
            self.store.command(
                "ALTER TABLE access_audit UPDATE student_ids = "
                "arrayFilter(x -> NOT has({ids:Array(String)}, x), student_ids) "
                "WHERE hasAny(student_ids, {ids:Array(String)}) SETTINGS mutations_sync = 2",
                {"ids": erase},
            )
            counts["redis_keys"] = self.ledger.forget(erase)
        return {"students": len(erase), "rows": counts}

    def _orphans(self) -> set[str]:
        """Ids with personal rows but no roster row: the leftovers of an interrupted erasure."""
        rows = self.store.query(
            "SELECT DISTINCT student_id FROM (SELECT student_id FROM activity_daily UNION ALL "
            "SELECT student_id FROM activity_weekly UNION ALL SELECT student_id FROM alerts) "
            "WHERE student_id NOT IN (SELECT student_id FROM students)"
        )
        return {r[0] for r in rows}

    def _record(self, run: JobRun) -> None:
        self.store.insert(
            "job_runs",
            [
                (
                    run.run_id,
                    "daily",
                    run.as_of,
                    run.dry_run,
                    run.started_at,
                    run.finished_at or datetime.now(UTC),
                    run.status,
                    json.dumps(run.steps),
                )
            ],
            ("run_id", "job", "as_of", "dry_run", "started_at", "finished_at", "status", "details"),
        )


def tombstone_publisher(settings: Settings) -> TombstonePublisher:
    """Send erased students' tombstones to the keyed topics, with a producer for each run."""

    def publish(student_ids: Sequence[str]) -> None:
        publisher = Publisher(settings)
        try:
            publisher.send_tombstones(student_ids)
        finally:
            publisher.close()

    return publish


def daily_job(settings: Settings, store: ClickHouseStore, ledger: AlertLedger, *, broker: bool) -> DailyJob:
    """The daily job as the settings configure it, for the service and the command line alike.
    `broker`: whether a broker is there to take the tombstones (the embedded one runs only inside
    the service, and keeps nothing across restarts: without it there is nothing to erase there)."""
    return DailyJob(
        store,
        ledger,
        settings.retention,
        tombstone_publisher(settings) if broker else None,
        lateness_days=max(1, settings.lateness_hours // 24),
    )
