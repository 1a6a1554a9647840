"""The `lde` command. Every command reads the one Settings object (LDE_ environment variables)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.roster import CsvRowError, load_absences, load_roster
from ops.api import ServiceClient
from ops.settings import Settings
from sinks.errors import StackError


def _fail(message: str, code: int = 2) -> int:
    print(f"lde: {message}", file=sys.stderr)
    return code


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from ops import service

    return service.run(settings)


def _load_csv(settings: Settings, path: Path, kind: str) -> int:
    from ops.ingest import redacted_record
    from sinks.kafka import Publisher

    if not path.is_file():
        return _fail(f"{path}: no such file")
    loader = load_roster if kind == "roster" else load_absences
    good: list[Any] = []
    errors: list[CsvRowError] = []
    for item in loader(path):
        if isinstance(item, CsvRowError):
            errors.append(item)
        else:
            good.append(item)
    publisher = Publisher(settings)
    try:
        sent = publisher.send_roster(good) if kind == "roster" else publisher.send_absences(good)
        for error in errors:
            publisher.send_dead_letter(
                redacted_record(str(error)), error.reason, f"{kind}-csv", f"{path}:{error.line}"
            )
    finally:
        publisher.close()
    print(f"{kind}: {len(good)} records published ({sent} messages), {len(errors)} invalid")
    for error in errors:
        print(f"  invalid {path}:{error.line}: {error.reason}", file=sys.stderr)
    return 0 if good or not errors else 1


def cmd_roster_load(settings: Settings, args: argparse.Namespace) -> int:
    return _load_csv(settings, Path(args.file), "roster")


def cmd_absences_load(settings: Settings, args: argparse.Namespace) -> int:
    return _load_csv(settings, Path(args.file), "absences")


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from ops.ingest import UnknownFormat, UpstreamBroken, ingest
    from sinks.kafka import Publisher

    if args.file != "-" and not Path(args.file).is_file():
        return _fail(f"{args.file}: no such file")
    publisher = Publisher(settings)
    try:
        # Binary: ingest decodes (UTF-8, bad bytes replaced) and reads canonical JSONL in blocks.
        if args.file == "-":
            summary = ingest(sys.stdin.buffer, args.format, publisher, "stdin", settings.timezone)
        else:
            with Path(args.file).open("rb") as handle:
                summary = ingest(handle, args.format, publisher, args.file, settings.timezone)
    except UpstreamBroken as error:
        if error.summary is not None:  # what was published and dead-lettered before the stop
            print("\n".join(error.summary.lines()), file=sys.stderr)
        return _fail(str(error), 3)
    except UnknownFormat as error:
        return _fail(str(error))
    finally:
        publisher.close()
    print("\n".join(summary.lines()))
    return 0


def _direct_store(settings: Settings) -> tuple[Any, str]:
    """Open ClickHouse from this process (only when no service holds the chDB folder)."""
    from sinks import clickhouse

    try:
        store = clickhouse.ClickHouseStore(clickhouse.connect(settings))
        clickhouse.migrate(store.client)
    except Exception as error:
        raise StackError(f"no service is running and ClickHouse could not be opened: {error}") from None
    where = "directly from chDB (no service running)" if settings.mode == "embedded" else "from ClickHouse"
    return store, where


def _service(settings: Settings) -> ServiceClient | None:
    client = ServiceClient(settings, timeout=600)
    return client if client.running() else None


STAFF_HEADER = "X-LDE-Staff"


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


def _viewer(settings: Settings, store: Any, staff_id: str | None) -> Any:
    """The access policy's viewer for a direct (no service) read."""
    from models.access import IdentityRequired, UnknownStaff
    from ops.reports import load_directory

    try:
        return load_directory(store).viewer(staff_id, settings.operator_access)
    except UnknownStaff as error:
        raise RefusedRead(str(error), 2) from None
    except IdentityRequired as error:
        raise RefusedRead(str(error), 3) from None


def _alerts_rows(settings: Settings, staff_id: str | None = None) -> tuple[list[dict[str, Any]], str]:
    client = _service(settings)
    if client is not None:
        rows = client.get("/v1/alerts", headers=_as_header(staff_id))
        _refusal(rows)
        return rows, f"from the running service at {settings.service_url}"
    from ops.personal import alerts_view

    store, where = _direct_store(settings)
    viewer = _viewer(settings, store, staff_id)
    return json.loads(json.dumps(alerts_view(store, viewer, "cli"), default=str)), where


def cmd_db_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if _service(settings) is not None:
        print("the running service applied the migrations at start-up; nothing to do")
        return 0
    from sinks import clickhouse

    store, where = _direct_store(settings)
    print(f"schema at version {clickhouse.migrate(store.client)} ({where})")
    return 0


def cmd_job_daily(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    client = _service(settings)
    if client is not None:
        query = f"?dry_run={'1' if args.dry_run else '0'}" + (f"&as_of={as_of}" if as_of else "")
        run = client.post("/v1/jobs/daily" + query)
        where = f"in the running service at {settings.service_url}"
    else:
        from datetime import UTC, datetime

        from models.timebuckets import zone
        from ops.jobs import daily_job
        from sinks import redis_store

        store, where = _direct_store(settings)
        as_of = as_of or datetime.now(UTC).astimezone(zone(settings.timezone)).date()
        ledger = redis_store.AlertLedger(redis_store.connect(settings))
        # Without the service the embedded broker is not running (and kept nothing): no tombstones to send.
        job = daily_job(settings, store, ledger, broker=settings.mode == "production")
        run = job.run(as_of, args.dry_run).as_dict()
    print(f"daily job {run['status']} ({'dry run, ' if run['dry_run'] else ''}as of {run['as_of']}, {where})")
    for step, figures in run["steps"].items():
        print(f"  {step}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return 0 if run["status"] == "success" else 1


def cmd_privacy_check(settings: Settings, args: argparse.Namespace) -> int:
    from ops.privacy import report, search_clickhouse, search_redis

    client = _service(settings)
    if client is not None:
        places = client.get(f"/v1/privacy/{args.student_id}")
    else:
        from sinks import redis_store

        store, _ = _direct_store(settings)
        places = search_clickhouse(store, args.student_id)
        places.update(search_redis(redis_store.connect(settings), args.student_id))
    print(report(places, args.student_id))
    return 1 if places else 0


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


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from ops.simulator import simulate, write_files

    sim = simulate(students=args.students, weeks=args.weeks, seed=args.seed, timezone=settings.timezone)
    paths = write_files(sim, Path(args.out))
    print(
        f"simulated {len(sim.students)} students over {sim.weeks} weeks "
        f"from {sim.term_start} (seed {sim.seed})"
    )
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    import tempfile
    from datetime import date

    from ops.replay import read_replay_input, replay, write_alerts_jsonl

    roster_items = list(load_roster(Path(args.roster)))
    absence_items = list(load_absences(Path(args.absences))) if args.absences else []
    bad = [i for i in roster_items + absence_items if isinstance(i, CsvRowError)]
    for error in bad:
        print(f"  invalid row skipped: {error}", file=sys.stderr)
    with Path(args.events).open(encoding="utf-8", errors="replace") as handle:
        data = read_replay_input(
            (r for r in roster_items if not isinstance(r, CsvRowError)),
            (a for a in absence_items if not isinstance(a, CsvRowError)),
            handle,
            settings.timezone,
        )
    through = date.fromisoformat(args.through)
    first = date.fromisoformat(args.first) if args.first else None
    with tempfile.TemporaryDirectory(prefix="lde-replay-") as work:
        alerts = replay(settings, data, through, Path(work) / "data", first)
    with Path(args.out).open("w") as out:
        count = write_alerts_jsonl(alerts, out)
    events = sum(len(v) for v in data.events_by_day.values())
    print(
        f"replayed {events} events for {len(data.roster)} students through {through}: "
        f"{count} alerts written to {args.out} ({data.invalid_lines} invalid lines skipped)"
    )
    return 0


def cmd_student_show(settings: Settings, args: argparse.Namespace) -> int:
    from ops.student import render_text

    client = _service(settings)
    if client is not None:
        report = client.get(f"/v1/students/{args.student_id}", headers=_as_header(args.as_staff))
        _refusal(report)
    else:
        from models.access import AccessDenied
        from ops.personal import student_view
        from ops.reports import UnknownStudent

        store, _ = _direct_store(settings)
        viewer = _viewer(settings, store, args.as_staff)
        try:
            report = student_view(store, viewer, args.student_id, "cli")
        except UnknownStudent as error:
            raise RefusedRead(str(error), 2) from None
        except AccessDenied as error:
            raise RefusedRead(str(error), 3) from None
    print(json.dumps(report, indent=2, default=str) if args.format == "json" else render_text(report))
    return 0


def cmd_staff_load(settings: Settings, args: argparse.Namespace) -> int:
    from models.access import read_staff_csv

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{path}: no such file")
    rows, errors = read_staff_csv(path)
    if errors:
        for error in errors:
            print(f"  invalid {path}:{error.line}: {error.reason}", file=sys.stderr)
        return _fail(f"{path}: {len(errors)} invalid rows; nothing loaded (the directory is unchanged)", 1)
    client = _service(settings)
    if client is not None:
        answer = client.post("/v1/staff", path.read_bytes(), headers={"Content-Type": "text/csv"})
        if "error" in answer:
            return _fail(f"{path}: {answer['error']}; nothing loaded", 1)
        count, where = answer["staff"], f"in the running service at {settings.service_url}"
    else:
        from ops.personal import load_staff_rows

        store, where = _direct_store(settings)
        try:
            count = len(load_staff_rows(store, rows))
        except ValueError as error:
            return _fail(f"{path}: {error}; nothing loaded", 1)
    print(
        f"staff: {count} members with {len(rows)} roles loaded ({where}); earlier loads are kept as history"
    )
    return 0


def _week(text: str | None, settings: Settings) -> Any:
    from datetime import UTC, datetime

    from models.reports import last_complete_week, parse_week
    from models.timebuckets import zone

    if text:
        return parse_week(text)
    return last_complete_week(datetime.now(UTC).astimezone(zone(settings.timezone)).date())


def cmd_report_weekly(settings: Settings, args: argparse.Namespace) -> int:
    import shutil

    from models.access import UnknownStaff
    from models.reports import BadWeek, week_label
    from ops.reports import FolderDelivery, NoStaffDirectory, ReportJob, smtp_delivery
    from sinks.mail import DeliveryError

    try:
        week = _week(args.week, settings)
    except BadWeek as error:
        return _fail(str(error))
    if not args.out and not args.send:
        return _fail("say where the reports go: --out DIR, or --send to email them")
    client = _service(settings)
    if client is not None:
        query = f"?week={week_label(week)}&delivery={'smtp' if args.send else 'folder'}"
        query += "".join(f"&staff={s}" for s in args.staff or [])
        run = client.post("/v1/reports/weekly" + query)
        if "error" in run:
            return _fail(str(run["error"]))
        where = f"by the running service at {settings.service_url}"
        if args.out:
            out = Path(args.out) / week_label(week)
            out.mkdir(parents=True, exist_ok=True)
            for name in run.get("files", []):
                shutil.copy2(name, out / Path(name).name)
    else:
        store, where = _direct_store(settings)
        try:
            delivery = smtp_delivery(settings) if args.send else FolderDelivery(Path(args.out))
            run = ReportJob(store, settings).run(week, delivery, args.staff).as_dict()
        except (NoStaffDirectory, UnknownStaff, DeliveryError) as error:
            return _fail(str(error))
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
    from ops.reports import UnknownStudent, render_student_report, student_report

    try:
        week = _week(args.week, settings)
    except BadWeek as error:
        return _fail(str(error))
    client = _service(settings)
    if client is not None:
        answer = client.get(
            f"/v1/reports/student/{args.student_id}?week={week_label(week)}",
            headers=_as_header(args.as_staff),
        )
        _refusal(answer)
        files: dict[str, Any] = {"html": answer["html"], "txt": answer["txt"]}
        files["pdf"] = base64.b64decode(answer["pdf_base64"])
    else:
        store, _ = _direct_store(settings)
        viewer = _viewer(settings, store, args.as_staff)
        try:
            report = student_report(store, args.student_id, week, viewer, "cli", settings.min_cohort_size)
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

    from ops.personal import export_anonymised, export_text

    try:
        first, last = date.fromisoformat(args.first), date.fromisoformat(args.last)
    except ValueError as error:
        return _fail(f"--from/--to: {error} (write dates as YYYY-MM-DD)")
    if last < first:
        return _fail("--to is before --from")
    kind = "jsonl" if args.out.endswith(".jsonl") else "csv"
    client = _service(settings)
    if client is not None:
        rows = client.get(f"/v1/export/anonymised?from={first}&to={last}", headers=_as_header(args.as_staff))
        _refusal(rows)
    else:
        store, _ = _direct_store(settings)
        rows = export_anonymised(store, first, last, _viewer(settings, store, args.as_staff), "cli")
    Path(args.out).write_text(export_text(rows, kind), encoding="utf-8")
    print(f"anonymised export: {len(rows)} cohort x week x source rows from {first} to {last} in {args.out}")
    return 0


def cmd_quality(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from ops.tools.quality import measure, table
    except ModuleNotFoundError as error:
        if error.name not in ("ops.tools", "ops.tools.quality"):
            raise  # a tool's own import broke: a bug, shown as one
        # The production image leaves ops/tools out (.dockerignore).
        return _fail("lde quality is a development tool: run it from a source checkout")
    results = measure(settings, args.students, args.weeks, args.seeds)
    print(table(results, args.students, args.weeks, args.seeds))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from ops.demo import run_demo

    return run_demo(settings, students=args.students, weeks=args.weeks, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lde", description="Learner Digital Engagement")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "up", help="run the service (on the embedded stack by default) until stopped"
    ).set_defaults(func=cmd_up)

    roster = sub.add_parser("roster", help="student roster").add_subparsers(dest="action", required=True)
    p = roster.add_parser("load", help="publish a roster CSV (student records export)")
    p.add_argument("file")
    p.set_defaults(func=cmd_roster_load)

    absences = sub.add_parser("absences", help="approved absences").add_subparsers(
        dest="action", required=True
    )
    p = absences.add_parser("load", help="publish an absences CSV")
    p.add_argument("file")
    p.set_defaults(func=cmd_absences_load)

    p = sub.add_parser("ingest", help="publish activity events from a file or stdin")
    p.add_argument(
        "--format",
        required=True,
        help="input format: lde-jsonl, caliper, xapi, ezproxy, papercut, pc-logons, remote-sessions, "
        "library-loans, attendance",
    )
    p.add_argument("file", help="path, or - for standard input")
    p.set_defaults(func=cmd_ingest)

    as_help = "the member of staff reading (the access policy applies; default: the operator)"
    p = sub.add_parser("alerts", help="list alerts")
    p.add_argument("--format", choices=("table", "jsonl"), default="table")
    p.add_argument("--as", dest="as_staff", metavar="STAFF_ID", help=as_help)
    p.set_defaults(func=cmd_alerts)

    db = sub.add_parser("db", help="ClickHouse schema").add_subparsers(dest="action", required=True)
    db.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_db_migrate)

    job = sub.add_parser("job", help="scheduled jobs, on demand").add_subparsers(dest="action", required=True)
    p = job.add_parser("daily", help="trends, compaction and retention (normally at 02:30 local)")
    p.add_argument("--as-of", help="the day to run as (YYYY-MM-DD; default today)")
    p.add_argument("--dry-run", action="store_true", help="report what would change, change nothing")
    p.set_defaults(func=cmd_job_daily)

    privacy = sub.add_parser("privacy", help="personal data checks").add_subparsers(
        dest="action", required=True
    )
    p = privacy.add_parser("check", help="list every store where a student's data remains")
    p.add_argument("student_id")
    p.set_defaults(func=cmd_privacy_check)

    student = sub.add_parser("student", help="one student's view").add_subparsers(
        dest="action", required=True
    )
    p = student.add_parser("show", help="band, score, activity against comparable students, alerts")
    p.add_argument("student_id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--as", dest="as_staff", metavar="STAFF_ID", help=as_help)
    p.set_defaults(func=cmd_student_show)

    staff = sub.add_parser("staff", help="staff directory").add_subparsers(dest="action", required=True)
    p = staff.add_parser(
        "load", help="replace the staff directory from a CSV (staff_id,name,email,role,scope)"
    )
    p.add_argument("file")
    p.set_defaults(func=cmd_staff_load)

    report = sub.add_parser("report", help="reports").add_subparsers(dest="action", required=True)
    p = report.add_parser("weekly", help="each member of staff's weekly report (HTML, text, PDF)")
    p.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week)")
    p.add_argument("--staff", nargs="+", metavar="STAFF_ID", help="only these members of staff")
    p.add_argument("--out", help="write the reports into DIR/WEEK/")
    p.add_argument("--send", action="store_true", help="email them through LDE_SMTP_*")
    p.set_defaults(func=cmd_report_weekly)
    p = report.add_parser("student", help="a student's own report: their figures against averages only")
    p.add_argument("student_id")
    p.add_argument("--week", help="ISO week (default: the last complete week)")
    p.add_argument("--out", help="write HTML, text and PDF into DIR (default: text to standard output)")
    p.add_argument("--as", dest="as_staff", metavar="STAFF_ID", help=as_help)
    p.set_defaults(func=cmd_report_student)

    export = sub.add_parser("export", help="data for third parties").add_subparsers(
        dest="action", required=True
    )
    p = export.add_parser("anonymised", help="cohort-level trends, no identifiers, disclosure-controlled")
    p.add_argument("--from", dest="first", required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", required=True, help="last day (YYYY-MM-DD)")
    p.add_argument("--out", required=True, help="FILE.csv (or FILE.jsonl)")
    p.add_argument("--as", dest="as_staff", metavar="STAFF_ID", help="who exports (audited)")
    p.set_defaults(func=cmd_export_anonymised)

    p = sub.add_parser("quality", help="alert recall/precision against the simulator's ground truth")
    p.add_argument("--students", type=int, default=2000)
    p.add_argument("--weeks", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("simulate", help="write a synthetic university's roster, events and ground truth")
    p.add_argument("--students", type=int, default=500)
    p.add_argument("--weeks", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="simulation")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="run a history through the agents and rules on the event-time clock")
    p.add_argument("--roster", required=True, help="roster CSV")
    p.add_argument("--absences", help="absences CSV")
    p.add_argument("--events", required=True, help="canonical events, JSONL")
    p.add_argument("--through", required=True, help="last local day to judge (YYYY-MM-DD)")
    p.add_argument("--from", dest="first", help="first local day to judge (default: the first event's day)")
    p.add_argument("--out", required=True, help="where to write the alerts (JSONL)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("demo", help="run the service on a simulated term and show the alerts")
    p.add_argument("--students", type=int, default=600)
    p.add_argument("--weeks", type=int, default=10)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as error:  # pydantic's message names the bad LDE_ variable
        return _fail(f"invalid settings: {error}")
    try:
        return int(args.func(settings, args))
    except StackError as error:
        return _fail(str(error))
    except RefusedRead as error:
        return _fail(str(error), error.code)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
