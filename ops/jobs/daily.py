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
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import jobs as queries
from sinks.kafka import Publisher
from sinks.redis_store import AlertLedger
from sinks.statement_ledger import StatementLedger

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
        done = queries.recorded_trend_weeks(self.store)
        rows = queries.weekly_events_by_cohort(self.store, before=last_week)
        sizes = queries.cohort_sizes(self.store)
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
            queries.write_trends(self.store, out)
        return {"weeks": len({r[0] for r in out}), "rows": len(out)}

    def _compaction(self, as_of: date, dry_run: bool) -> dict[str, Any]:
        cutoff = compaction_cutoff(as_of, self.policy)
        pending = queries.daily_rows_before(self.store, cutoff)
        if not dry_run and pending:
            queries.roll_up_daily_rows(self.store, cutoff)
        return {"cutoff": cutoff.isoformat(), "daily_rows_rolled_up": pending}

    def _retention(self, as_of: date, dry_run: bool) -> dict[str, Any]:
        due = students_due_for_deletion(self.store.students(), as_of, self.policy)
        # Students already erased from `students` may still have rows elsewhere after a killed run.
        orphans = sorted(queries.orphan_student_ids(self.store) - set(due))
        erase = due + orphans
        counts: dict[str, int] = {}
        if erase:
            counts.update(queries.personal_row_counts(self.store, erase))
        if not dry_run and erase:
            if self.tombstones is not None:
                self.tombstones(erase)
            queries.erase_students(self.store, erase)
            counts["redis_keys"] = self.ledger.forget(erase)
            if self.ledger.client is not None:  # the xAPI statement ledger (issue 17)
                statements = StatementLedger(self.ledger.client)
                counts["redis_keys"] += statements.forget(erase)
        return {"students": len(erase), "rows": counts}

    def _record(self, run: JobRun) -> None:
        queries.record_job_run(
            self.store,
            run_id=run.run_id,
            job="daily",
            as_of=run.as_of,
            dry_run=run.dry_run,
            started_at=run.started_at,
            finished_at=run.finished_at or datetime.now(UTC),
            status=run.status,
            details=json.dumps(run.steps),
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
