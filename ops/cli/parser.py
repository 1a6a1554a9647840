"""The `lde` command line: every command, its flags and help, each bound to its function."""

from __future__ import annotations

import argparse

from ops.cli import backfill, credentials
from ops.cli.data import cmd_absences_load, cmd_db_migrate, cmd_ingest, cmd_roster_load, cmd_staff_load
from ops.cli.jobs import cmd_job_daily, cmd_privacy_check
from ops.cli.reads import (
    cmd_alerts,
    cmd_export_anonymised,
    cmd_report_student,
    cmd_report_weekly,
    cmd_student_show,
)
from ops.cli.run import cmd_demo, cmd_edge, cmd_quality, cmd_replay, cmd_simulate, cmd_up, cmd_web
from ops.cli.tokens import cmd_token_issue, cmd_token_list, cmd_token_revoke


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lde", description="Learner Digital Engagement")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "up", help="run the service (on the embedded stack by default) until stopped"
    ).set_defaults(func=cmd_up)
    sub.add_parser(
        "web",
        help="serve the staff web app, sign-in and the personal-data API as a process of its own "
        "(production: any number behind the proxy, reading ClickHouse and Redis)",
    ).set_defaults(func=cmd_web)
    sub.add_parser(
        "edge",
        help="serve the collector, xAPI and Canvas endpoints as a process of their own (production: "
        "any number behind the proxy, publishing to Kafka)",
    ).set_defaults(func=cmd_edge)

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

    credentials.add_parser(sub)  # lde collector hash-secret (issue 17)

    p = sub.add_parser("ingest", help="publish activity events from a file or stdin")
    p.add_argument(
        "--format",
        required=True,
        help="input format: lde-jsonl, caliper, xapi, ezproxy, papercut, pc-logons, remote-sessions, "
        "library-loans, attendance, canvas-live-events (JSONL), canvas-web-logs (DAP web_logs, JSONL or CSV)",
    )
    p.add_argument(
        "--user-map",
        metavar="FILE",
        help="canvas-web-logs: Canvas user id -> SIS id, from the DAP pseudonyms table (JSONL or CSV) or a "
        "CSV canvas_user_id,sis_user_id",
    )
    p.add_argument("file", help="path (gzip is read as such), or - for standard input")
    p.set_defaults(func=cmd_ingest)

    backfill.add_parser(sub)  # lde backfill (issue 28)

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

    token = sub.add_parser("token", help="personal API tokens (administrators)").add_subparsers(
        dest="action", required=True
    )
    p = token.add_parser("issue", help="issue a token acting as a member of staff (printed once)")
    p.add_argument("--staff", required=True, help="the staff id the token acts as")
    p.add_argument("--label", default="", help="what the token is for")
    p.add_argument("--days", type=int, default=90, help="days until it expires (0: never)")
    p.set_defaults(func=cmd_token_issue)
    p = token.add_parser("revoke", help="revoke a token by its id")
    p.add_argument("token_id")
    p.set_defaults(func=cmd_token_revoke)
    p = token.add_parser("list", help="every token issued, with its state (never the token)")
    p.add_argument("--format", choices=["text", "jsonl"], default="text")
    p.set_defaults(func=cmd_token_list)

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
    p.add_argument(
        "--profiles",
        action="store_true",
        help="add the populations of issue 24 (sparse part-timers, approved absences, no sessions, "
        "a tiny school) and a reading week, as lde quality simulates them",
    )
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
