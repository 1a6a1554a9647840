"""The service's scheduled jobs: the daily job and the weekly reports, run by the Faust leader when due
(models.schedule: once per period, caught up after a restart or a rebalance, recorded in job_runs),
or on request (HTTP, `lde job daily`, `lde report weekly`), one at a time, off the event loop, timed
and counted in /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import faust

from models.clock import Clock
from models.reports import last_complete_week
from models.schedule import Decision, Schedule, next_run
from models.timebuckets import local_today
from ops.jobs.daily import daily_job
from ops.jobs.reports.weekly import Delivery, FolderDelivery, ReportJob, smtp_delivery
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.jobs import job_run_records, record_job_run
from sinks.redis_store import AlertLedger, JobLocks
from sinks.retry import is_transient

log = logging.getLogger("lde.jobs")


def clock_now(clock: Clock) -> datetime:
    """Now on the service's clock: the event-time clock in replays and the demo, the wall clock in
    production; the wall clock when the event clock has no time yet (no watermark seen)."""
    return clock.now() or datetime.now(UTC)


def clock_today(clock: Clock, tz: ZoneInfo) -> date:
    """Today in the institution's time zone on the service's clock (the wall clock when the event
    clock has not started)."""
    return local_today(clock_now(clock), tz)


def record_period_run(
    store: ClickHouseStore,
    job: str,
    period: date,
    started: datetime,
    finished: datetime,
    status: str,
    details: dict[str, Any],
) -> None:
    """One scheduled run of `job` for `period` in job_runs (what models.schedule reads back)."""
    record_job_run(
        store,
        run_id=uuid.uuid4().hex,
        job=job,
        as_of=period,
        dry_run=False,
        started_at=started,
        finished_at=finished,
        status=status,
        details=json.dumps(details),
    )


class JobRunner:
    """Runs the daily job and the weekly reports for the service (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        ledger: AlertLedger,
        metrics: Metrics,
        clock: Clock,
        tz: ZoneInfo,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ledger = ledger
        self.metrics = metrics
        self.clock = clock
        self.tz = tz
        self._job_lock = asyncio.Lock()
        self._report_lock = asyncio.Lock()

    def schedule(self, app: faust.App) -> None:
        """The leader's check for due runs, on the wall clock only: a replay or a test on the event
        clock runs jobs on request (a replay must not send this Monday's reports)."""
        if self.settings.clock != "wall":
            return
        scheduler = Scheduler(
            self.settings,
            self.store,
            JobLocks(self.ledger.client),
            {"daily": self.scheduled_daily, "weekly_reports": self.scheduled_weekly},
            self.tz,
        )
        app.timer(self.settings.schedule_check_seconds, on_leader=True, name="scheduled_runs")(scheduler.tick)

    async def scheduled_daily(self, period: date) -> str:
        """The daily job of a period (it records its own run)."""
        run = await self.run_daily_job(as_of=period)
        return str(run["status"])

    async def scheduled_weekly(self, period: date) -> str:
        """The weekly reports of a period (the week before it), recorded in job_runs."""
        started = datetime.now(UTC)
        try:
            out = await self.run_weekly_reports(week_start=last_complete_week(period))
        except Exception as error:
            self.metrics.job_runs.labels(job="weekly_reports", status="failed").inc()
            self._record("weekly_reports", period, started, "failed", {"error": repr(error)})
            raise
        status = "success" if not out.get("failures") else "partial"
        self._record("weekly_reports", period, started, status, {"delivered": out.get("delivered")})
        return status

    def _record(
        self, job: str, period: date, started: datetime, status: str, details: dict[str, Any]
    ) -> None:
        record_period_run(self.store, job, period, started, datetime.now(UTC), status, details)

    def _report_delivery(self, kind: str) -> Delivery:
        if kind == "smtp":
            return smtp_delivery(self.settings)
        return FolderDelivery(self.settings.reports_path)

    async def run_weekly_reports(
        self, week_start: date | None = None, staff_ids: Sequence[str] | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """The weekly reports off the event loop, one run at a time."""
        if week_start is None:
            week_start = last_complete_week(clock_today(self.clock, self.tz))
        delivery = self._report_delivery(kind or self.settings.report_delivery)
        async with self._report_lock:
            started = time.perf_counter()
            job = ReportJob(self.store, self.settings)
            run = await asyncio.to_thread(job.run, week_start, delivery, staff_ids)
            self.metrics.weekly_reports.labels(outcome="delivered").inc(run.delivered)
            self.metrics.weekly_reports.labels(outcome="failed").inc(len(run.failures))
            status = "success" if not run.failures else "partial"
            self.metrics.job_runs.labels(job="weekly_reports", status=status).inc()
            self.metrics.job_seconds.labels(job="weekly_reports").observe(time.perf_counter() - started)
            if not run.failures:
                self.metrics.job_last_success.labels(job="weekly_reports").set(time.time())
            out = run.as_dict()
            if isinstance(delivery, FolderDelivery):
                out["files"] = [str(p) for p in delivery.written]
            return out

    async def run_daily_job(self, as_of: date | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Run the daily job off the event loop; one at a time."""
        as_of = as_of or clock_today(self.clock, self.tz)
        job = daily_job(self.settings, self.store, self.ledger, broker=True)
        async with self._job_lock:
            started = time.perf_counter()
            try:
                run = await asyncio.to_thread(job.run, as_of, dry_run)
            except Exception:
                self.metrics.job_runs.labels(job="daily", status="failed").inc()
                raise
            self.metrics.job_runs.labels(job="daily", status=run.status).inc()
            self.metrics.job_seconds.labels(job="daily").observe(time.perf_counter() - started)
            if run.status == "success" and not dry_run:
                self.metrics.job_last_success.labels(job="daily").set(time.time())
            return run.as_dict()


#: A scheduled job: runs one period, returns its status ("success", "partial", "failed").
ScheduledJob = Callable[[date], Awaitable[str]]


class Scheduler:
    """Runs every scheduled job that is due (models.schedule.next_run) and not being run by another
    leader (JobLocks), once per period. `tick` is the leader's timer: the first comes at start, the
    new leader's first after a rebalance."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        locks: JobLocks,
        jobs: dict[str, ScheduledJob],
        tz: ZoneInfo,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.locks = locks
        self.jobs = jobs
        self.tz = tz
        self.now = now
        self.retry_after = timedelta(minutes=settings.schedule_retry_minutes)
        self.schedules = {
            "daily": Schedule.parse("daily", settings.daily_job_time),
            "weekly_reports": Schedule.parse("weekly_reports", settings.report_time, settings.report_day),
        }

    async def tick(self) -> None:
        """One check; an outage of ClickHouse or Redis waits for the next tick, a bug is logged loudly."""
        try:
            await self.check()
        except Exception as error:
            if is_transient(error):
                log.warning("scheduled_runs_unchecked error=%r: next tick", error)
            else:
                log.exception("scheduled_runs_check_failed error=%r", error)

    async def check(self) -> dict[str, str]:
        """Run what is due now; returns what was done per job (run status, anchored, or waiting)."""
        done: dict[str, str] = {}
        for job, schedule in self.schedules.items():
            now = self.now()
            since = now.astimezone(self.tz).date() - timedelta(days=15)
            runs = await asyncio.to_thread(job_run_records, self.store, job, since)
            due = next_run(schedule, now, self.tz, runs, self.retry_after)
            if due.decision is Decision.ANCHOR:
                await asyncio.to_thread(self._anchor, job, due.period, now)
                done[job] = "anchored"
            elif due.decision is Decision.RUN:
                done[job] = await self._run(job, due.period)
            else:
                done[job] = "waiting"
        return done

    def _anchor(self, job: str, period: date, now: datetime) -> None:
        """A job never recorded here: its current period counts as done (no burst at installation)."""
        record_period_run(self.store, job, period, now, now, "anchored", {})
        log.info("scheduled_job_anchored job=%s period=%s", job, period)

    async def _run(self, job: str, period: date) -> str:
        if not await asyncio.to_thread(self.locks.take, job, period):
            return "running_elsewhere"
        log.info("scheduled_run_started job=%s period=%s", job, period)
        try:
            status = await self.jobs[job](period)
        except Exception as error:
            await asyncio.to_thread(self.locks.release, job, period)
            log.error("scheduled_run_failed job=%s period=%s error=%r", job, period, error)
            return "failed"
        if status == "failed":
            await asyncio.to_thread(self.locks.release, job, period)
        log.info("scheduled_run_done job=%s period=%s status=%s", job, period, status)
        return status
