"""Weekly reports: load the week from ClickHouse, cut it per member of staff with the access policy,
render, deliver (SMTP or a folder) and audit each delivery.

Used by the service's schedule (default Monday 07:00 local), `POST /v1/reports/weekly`,
`lde report weekly` and the benchmark. The student's own report is ops.jobs.reports.student.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from models.access import Action, AuditEntry, StaffDirectory
from models.identifiers import file_stem
from models.reports import (
    WeeklyReport,
    build_weekly_reports,
    week_label,
)
from ops.jobs.reports.audited import AuditedReads
from ops.jobs.reports.render import Renderer
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.reports import load_week
from sinks.mail import DeliveryError, SmtpMailer, compose, write_files

log = logging.getLogger("lde.reports")


class NoStaffDirectory(RuntimeError):
    """Reports need a staff directory, and none was loaded."""

    def __init__(self) -> None:
        super().__init__("no staff directory is loaded: run `lde staff load FILE.csv` first")


def load_directory(store: ClickHouseStore) -> StaffDirectory:
    return StaffDirectory.from_rows(store.staff_rows())


# -- delivery ----------------------------------------------------------------------------------------
@dataclass
class Rendered:
    report: WeeklyReport
    html: str
    text: str
    pdf: bytes

    @property
    def stem(self) -> str:
        return f"lde-weekly-{self.report.label}-{self.report.staff.staff_id}"


class Delivery(Protocol):
    """Where a rendered report goes; returns the audit `via` (email, folder). Raises DeliveryError."""

    def deliver(self, rendered: Rendered) -> str: ...


@dataclass
class FolderDelivery:
    """Writes DIR/WEEK/STAFF_ID.{html,txt,pdf}."""

    folder: Path
    written: list[Path] = field(default_factory=list)

    def deliver(self, rendered: Rendered) -> str:
        target = self.folder / rendered.report.label
        try:
            stem = file_stem(rendered.report.staff.staff_id)  # never a path (issue 22)
        except ValueError as error:
            raise DeliveryError(str(error), permanent=True) from None
        self.written += write_files(
            target, stem, {"html": rendered.html, "txt": rendered.text, "pdf": rendered.pdf}
        )
        return "folder"


@dataclass
class SmtpDelivery:
    """Emails each report (HTML and text alternatives, the PDF attached) to the member of staff."""

    mailer: SmtpMailer
    sender: str

    def deliver(self, rendered: Rendered) -> str:
        report = rendered.report
        concern = sum(1 for s in report.students if s.concern_alerts or s.band in ("None", "Low"))
        cases = len(report.cases)
        message = compose(
            self.sender,
            report.staff.name,
            report.staff.email,
            f"LDE weekly report {report.label}: {len(report.students)} students, {concern} of concern, "
            f"{cases} case{'s' if cases != 1 else ''} needing action",
            rendered.text,
            rendered.html,
            ((f"{rendered.stem}.pdf", rendered.pdf),),
        )
        self.mailer.send(message)
        return "email"


def smtp_delivery(settings: Settings) -> SmtpDelivery:
    if not settings.smtp_host:
        raise DeliveryError("LDE_REPORT_DELIVERY=smtp needs LDE_SMTP_HOST", permanent=True)
    return SmtpDelivery(mailer_from(settings), settings.smtp_from)


def mailer_from(settings: Settings) -> SmtpMailer:
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_security,
        settings.smtp_user,
        settings.smtp_password,
        settings.smtp_timeout_seconds,
    )


@dataclass
class ReportRun:
    week: str
    reports: int = 0
    delivered: int = 0
    students: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # staff id -> reason
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "reports": self.reports,
            "delivered": self.delivered,
            "students": self.students,
            "failures": self.failures,
            "seconds": self.seconds,
        }


class ReportJob:
    """Builds, renders, delivers and audits the weekly reports. Blocking; run it off the event loop."""

    def __init__(
        self,
        store: ClickHouseStore,
        settings: Settings,
        reads: AuditedReads | None = None,
        retry_delays: Sequence[float] = (1.0, 4.0),
    ) -> None:
        self.store = store
        self.settings = settings
        self.reads = reads or AuditedReads.of_store(store)
        self.retry_delays = retry_delays

    def run(self, week_start: date, delivery: Delivery, staff_ids: Sequence[str] | None = None) -> ReportRun:
        """Every member of staff's report (or the named ones'). Raises NoStaffDirectory, UnknownStaff.

        A failed delivery is retried (transient errors only), then recorded in the run's failures;
        the other reports still go. Only delivered reports are audited, each as one entry.
        """
        run = ReportRun(week_label(week_start))
        started = time.perf_counter()
        directory = load_directory(self.store)
        if not len(directory):
            raise NoStaffDirectory()
        min_group = self.settings.min_cohort_size
        data = load_week(self.store, week_start, min_group, policy=self.settings.overdue_policy)
        reports = build_weekly_reports(data, directory, staff_ids)
        run.seconds["load"] = round(time.perf_counter() - started, 3)
        renderer = Renderer(self.settings.report_email_max_students, min_group)
        entries: list[AuditEntry] = []
        render_s = deliver_s = 0.0
        try:
            for report in reports:
                t0 = time.perf_counter()
                rendered = Rendered(
                    report, renderer.html(report), renderer.text(report), renderer.pdf(report)
                )
                t1 = time.perf_counter()
                render_s += t1 - t0
                run.reports += 1
                run.students += len(report.students)
                try:
                    via = self._deliver(delivery, rendered)
                except DeliveryError as error:
                    run.failures[report.staff.staff_id] = str(error)
                    log.error("weekly_report_failed staff=%s error=%r", report.staff.staff_id, str(error))
                    continue
                finally:
                    deliver_s += time.perf_counter() - t1
                run.delivered += 1
                entries.append(self.reads.stamp(report.staff, Action.WEEKLY_REPORT, via, report.student_ids))
        finally:
            self.reads.write(entries)
        run.seconds.update(render=round(render_s, 3), deliver=round(deliver_s, 3))
        run.seconds["total"] = round(time.perf_counter() - started, 3)
        log.info(
            "weekly_reports week=%s reports=%d delivered=%d failed=%d seconds=%.1f",
            run.week,
            run.reports,
            run.delivered,
            len(run.failures),
            run.seconds["total"],
        )
        return run

    def _deliver(self, delivery: Delivery, rendered: Rendered) -> str:
        for delay in (*self.retry_delays, None):
            try:
                return delivery.deliver(rendered)
            except DeliveryError as error:
                if error.permanent or delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")
