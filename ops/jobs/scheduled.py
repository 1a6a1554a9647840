"""The service's scheduled jobs: the daily job and the weekly reports, each run on the Faust leader at
its configured local time, or on request (HTTP, `lde job daily`, `lde report weekly`), one at a time,
off the event loop, timed and counted in /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import faust

from models.clock import Clock
from models.reports import last_complete_week
from models.timebuckets import local_today
from ops.jobs.daily import daily_job
from ops.jobs.reports.weekly import Delivery, FolderDelivery, ReportJob, smtp_delivery
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.redis_store import AlertLedger

log = logging.getLogger("lde.jobs")


def clock_today(clock: Clock, tz: ZoneInfo) -> date:
    """Today in the institution's time zone on the service's clock (the wall clock when the event
    clock has not started)."""
    return local_today(clock.now() or datetime.now(UTC), tz)


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
        """The two crontabs, in local time, on the leader only."""
        s = self.settings
        hour, minute = s.daily_job_time.split(":")
        app.crontab(f"{int(minute)} {int(hour)} * * *", timezone=self.tz, on_leader=True)(self._daily_tick)
        hour, minute = s.report_time.split(":")
        app.crontab(f"{int(minute)} {int(hour)} * * {s.report_day}", timezone=self.tz, on_leader=True)(
            self._weekly_tick
        )

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

    async def _weekly_tick(self) -> None:
        try:
            await self.run_weekly_reports()
        except Exception as error:  # logged and counted; run it by hand with `lde report weekly`
            self.metrics.job_runs.labels(job="weekly_reports", status="failed").inc()
            log.error("weekly_reports_failed error=%r", error)

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

    async def _daily_tick(self) -> None:
        try:
            await self.run_daily_job()
        except Exception as error:  # logged and counted; the next day's run retries everything
            log.error("daily_job_failed error=%r", error)
