"""Personal-data reads and reports, through the access policy: `lde alerts`, `lde student show`,
`lde report weekly|student` and `lde export anonymised`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.cli.common import direct_store, fail, running_service
from ops.http.proxy import STAFF_HEADER
from ops.settings import Settings

if TYPE_CHECKING:  # the CLI starts without ClickHouse's client loaded
    from models.access import Staff
    from sinks.clickhouse import ClickHouseStore


class RefusedRead(Exception):
    """The access policy refused a read; carries the exit code (3 denied, 2 unknown staff or student)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _as_header(staff_id: str | None) -> dict[str, str]:
    return {STAFF_HEADER: staff_id} if staff_id else {}


def _refusal(answer: Any) -> None:
    """Turn the service's JSON refusal ({"error", "status"}) into a RefusedRead."""
    if isinstance(answer, dict) and "error" in answer and "status" in answer:
        raise RefusedRead(str(answer["error"]), 3 if answer["status"] in (401, 403) else 2)


def _viewer(settings: Settings, store: ClickHouseStore, staff_id: str | None) -> Staff:
    """The access policy's viewer for a direct (no service) read."""
    from models.access import IdentityRequired, UnknownStaff
    from ops.jobs.reports.weekly import load_directory

    try:
        return load_directory(store).viewer(staff_id, settings.operator_access)
    except UnknownStaff as error:
        raise RefusedRead(str(error), 2) from None
    except IdentityRequired as error:
        raise RefusedRead(str(error), 3) from None


def _alerts_rows(settings: Settings, staff_id: str | None = None) -> tuple[list[dict[str, Any]], str]:
    client = running_service(settings)
    if client is not None:
        rows = client.get("/v1/alerts", headers=_as_header(staff_id))
        _refusal(rows)
        return rows, f"from the running service at {settings.service_url}"
    from ops.jobs.reports.audited import AuditedReads
    from ops.jobs.reports.personal import alerts_view

    store, where = direct_store(settings)
    viewer = _viewer(settings, store, staff_id)
    rows = alerts_view(store, AuditedReads.of_store(store), viewer, "cli")
    return json.loads(json.dumps(rows, default=str)), where


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    rows, where = _alerts_rows(settings, args.as_staff)
    if args.format == "jsonl":
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{len(rows)} alerts, read {where}")
        for row in rows:
            print(
                f"{row['raised_on']}  {row['rule']:<14} student {row['student_id']:<10} "
                f"{row['programme_code']} y{row['year_of_study']} {row['mode']}  "
                f"tutor {row['personal_tutor_id']}"
                f"  {row['explanation']}"
            )
    return 0


def cmd_student_show(settings: Settings, args: argparse.Namespace) -> int:
    from ops.jobs.reports.student import student_view_text

    client = running_service(settings)
    if client is not None:
        report = client.get(f"/v1/students/{args.student_id}", headers=_as_header(args.as_staff))
        _refusal(report)
    else:
        from models.access import AccessDenied
        from ops.jobs.reports.audited import AuditedReads, UnknownStudent
        from ops.jobs.reports.personal import student_view

        store, _ = direct_store(settings)
        viewer = _viewer(settings, store, args.as_staff)
        try:
            report = student_view(store, AuditedReads.of_store(store), viewer, args.student_id, "cli")
        except UnknownStudent as error:
            raise RefusedRead(str(error), 2) from None
        except AccessDenied as error:
            raise RefusedRead(str(error), 3) from None
    print(json.dumps(report, indent=2, default=str) if args.format == "json" else student_view_text(report))
    return 0


def _week(text: str | None, settings: Settings) -> Any:
    from datetime import UTC, datetime

    from models.reports import last_complete_week, parse_week
    from models.timebuckets import local_today, zone

    if text:
        return parse_week(text)
    return last_complete_week(local_today(datetime.now(UTC), zone(settings.timezone)))


def cmd_report_weekly(settings: Settings, args: argparse.Namespace) -> int:
    import shutil

    from models.access import UnknownStaff
    from models.reports import BadWeek, week_label
    from ops.jobs.reports.weekly import FolderDelivery, NoStaffDirectory, ReportJob, smtp_delivery
    from sinks.mail import DeliveryError

    try:
        week = _week(args.week, settings)
    except BadWeek as error:
        return fail(str(error))
    if not args.out and not args.send:
        return fail("say where the reports go: --out DIR, or --send to email them")
    client = running_service(settings)
    if client is not None:
        query = f"?week={week_label(week)}&delivery={'smtp' if args.send else 'folder'}"
        query += "".join(f"&staff={s}" for s in args.staff or [])
        run = client.post("/v1/reports/weekly" + query)
        if "error" in run:
            return fail(str(run["error"]))
        where = f"by the running service at {settings.service_url}"
        if args.out:
            out = Path(args.out) / week_label(week)
            out.mkdir(parents=True, exist_ok=True)
            # the service names its files relative to the reports folder (no server paths in
            # answers): the CLI shares the data folder, so it finds them there
            for name in run.get("files", []):
                shutil.copy2(settings.reports_path / name, out / Path(name).name)
    else:
        store, where = direct_store(settings)
        try:
            delivery = smtp_delivery(settings) if args.send else FolderDelivery(Path(args.out))
            run = ReportJob(store, settings).run(week, delivery, args.staff).as_dict()
        except (NoStaffDirectory, UnknownStaff, DeliveryError) as error:
            return fail(str(error))
    target = "emailed" if args.send else f"written to {Path(args.out) / run['week']}"
    print(
        f"weekly reports {run['week']}: {run['delivered']} of {run['reports']} {target} "
        f"({run['students']} student entries; {where}; {run['seconds'].get('total', 0):.1f} s)"
    )
    for staff_id, reason in sorted(run["failures"].items()):
        print(f"  FAILED {staff_id}: {reason}", file=sys.stderr)
    return 1 if run["failures"] else 0


def cmd_report_student(settings: Settings, args: argparse.Namespace) -> int:
    import base64

    from models.access import AccessDenied
    from models.reports import BadWeek, week_label
    from ops.jobs.reports.audited import AuditedReads, UnknownStudent
    from ops.jobs.reports.student import render_student_report, student_weekly_report

    try:
        week = _week(args.week, settings)
    except BadWeek as error:
        return fail(str(error))
    client = running_service(settings)
    if client is not None:
        answer = client.get(
            f"/v1/reports/student/{args.student_id}?week={week_label(week)}",
            headers=_as_header(args.as_staff),
        )
        _refusal(answer)
        files: dict[str, Any] = {"html": answer["html"], "txt": answer["txt"]}
        files["pdf"] = base64.b64decode(answer["pdf_base64"])
    else:
        store, _ = direct_store(settings)
        viewer = _viewer(settings, store, args.as_staff)
        try:
            reads = AuditedReads.of_store(store)
            report = student_weekly_report(
                store, reads, args.student_id, week, viewer, "cli", settings.min_cohort_size
            )
        except UnknownStudent as error:
            raise RefusedRead(str(error), 2) from None
        except AccessDenied as error:
            raise RefusedRead(str(error), 3) from None
        files = render_student_report(report)
    if not args.out:
        print(files["txt"], end="")
        return 0
    from sinks.mail import write_files

    paths = write_files(Path(args.out), f"lde-student-{args.student_id}-{week_label(week)}", files)
    print("student report written: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_export_anonymised(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from ops.jobs.reports.audited import AuditedReads
    from ops.jobs.reports.personal import export_anonymised, export_text

    try:
        first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    except ValueError as error:
        return fail(f"--from/--to: {error} (write dates as YYYY-MM-DD)")
    if last < first:
        return fail("--to is before --from")
    kind = "jsonl" if args.out.endswith(".jsonl") else "csv"
    client = running_service(settings)
    if client is not None:
        rows = client.get(f"/v1/export/anonymised?from={first}&to={last}", headers=_as_header(args.as_staff))
        _refusal(rows)
    else:
        store, _ = direct_store(settings)
        viewer = _viewer(settings, store, args.as_staff)
        rows = export_anonymised(store, AuditedReads.of_store(store), first, last, viewer, "cli")
    Path(args.out).write_text(export_text(rows, kind), encoding="utf-8")
    print(f"anonymised export: {len(rows)} cohort x week x source rows from {first} to {last} in {args.out}")
    return 0
