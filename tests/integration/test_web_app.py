"""The staff web app over HTTP on the real service: the role matrix in the caseload, refusals,
a triage round (idempotent, refused requests change nothing), the student's own view, the programme
page, and the audit of every read. The browser's view of the same is tests/integration/test_web_browser.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.groups import report_comparison
from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.integration.test_role_matrix import AMINA, CS_EXTRA, CS_SAMPLE, PSY_EXTRA, REPORT_SCOPE, TOMASZ
from tests.integration.web_helpers import Page, fetch, seed_data_dir, service_on, store_while_stopped

pytestmark = pytest.mark.integration
SILENT_CS = "900201777"  # a tutee of S1042 with a no_engagement alert


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventTimeRun, dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("web")
    names = seed_data_dir(data_dir)
    with service_on(data_dir) as run:
        yield run, names, data_dir


def caseload_ids(page: Page) -> set[str]:
    return set(re.findall(r'href="/app/students/(\d+)"', page.body))


def test_each_member_of_staff_sees_exactly_their_scope(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    for staff, expected in REPORT_SCOPE.items():
        page = fetch(run, "/app", staff)
        assert page.status == 200, staff
        assert caseload_ids(page) == expected, staff
        for sid, name in names.items():
            if sid not in expected:
                assert sid not in page.body and name not in page.body, (staff, sid)


def test_the_caseload_filters_searches_sorts_and_pages(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, _, _ = served
    officer = "S9001"
    everyone = CS_SAMPLE | CS_EXTRA | PSY_EXTRA | {TOMASZ, AMINA}
    assert caseload_ids(fetch(run, "/app?programme=BSC-CS", officer)) == CS_SAMPLE | CS_EXTRA
    assert caseload_ids(fetch(run, "/app?no_action=1", officer)) == {SILENT_CS, "900700003"}
    assert caseload_ids(fetch(run, "/app?band=None", officer)) == {SILENT_CS, "900700003"}
    assert caseload_ids(fetch(run, "/app?q=Extra", officer)) == CS_EXTRA
    assert caseload_ids(fetch(run, f"/app?q={AMINA}", officer)) == {AMINA}
    first = fetch(run, "/app", officer)
    order = re.findall(r'href="/app/students/(\d+)"', first.body)
    assert set(order[:2]) == {SILENT_CS, "900700003"}, "alerts nobody acted on come first"
    by_name = re.findall(r'href="/app/students/(\d+)"', fetch(run, "/app?sort=name", officer).body)
    assert set(by_name) == everyone and by_name != order
    assert fetch(run, "/app?year=first", officer).status == 400
    assert fetch(run, "/app?sort=shoe", officer).status == 400
    # the 8-week line against each student's comparison group (models.groups), named once
    assert "<svg" in first.body and "cohort average" in first.body
    assert report_comparison(Settings().min_cohort_size) in first.body


def test_requests_without_a_known_identity_or_out_of_scope_are_refused(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    nobody = fetch(run, "/app")
    assert nobody.status == 401 and "/login?next=" in nobody.body
    assert fetch(run, "/app", "S0000").status == 403
    # outside scope looks like not found (issue 22): the same page as for a student who does not exist
    stranger = fetch(run, f"/app/students/{TOMASZ}", "S1042")
    assert stranger.status == 404 and names[TOMASZ] not in stranger.body
    missing = fetch(run, "/app/students/000000000", "S1042")
    assert stranger.body.replace(TOMASZ, "X") == missing.body.replace("000000000", "X")
    assert fetch(run, f"/app/students/{TOMASZ}/view", "S1042").status == 404
    assert fetch(run, "/app/students/000000000", "S9001").status == 404
    assert fetch(run, "/app/static/app.css").status == 200  # the stylesheet: public (sign-in pages use it)
    css = fetch(run, "/app/static/app.css", "S1042")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert fetch(run, "/app/static/..%2Fcommon.py", "S1042").status == 404


def test_the_programme_page_is_for_leaders_directors_and_officers(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    for staff in ("S1001", "S1000", "S9001"):
        page = fetch(run, "/app/programmes/BSC-CS", staff)
        assert page.status == 200, staff
        assert "Bands week by week" in page.body and "<svg" in page.body
    for staff in ("S1042", "S2001"):  # outside scope: the same answer as a programme that does not exist
        refused = fetch(run, "/app/programmes/BSC-CS", staff)
        assert refused.status == 404, staff
        assert refused.body.replace("BSC-CS", "X") == fetch(run, "/app/programmes/NOPE", staff).body.replace(
            "NOPE", "X"
        )
    assert fetch(run, "/app/programmes/NOPE", "S9001").status == 404
    links = {
        staff: set(re.findall(r'href="/app/programmes/([^"]+)"', fetch(run, "/app", staff).body))
        for staff in REPORT_SCOPE
    }
    assert links["S1042"] == set() and links["S1001"] == {"BSC-CS"} and links["S2001"] == {"BSC-PSY"}
    assert links["S1000"] == {"BSC-CS"} and "BSC-PSY" in links["S9001"]
    page = fetch(run, "/app/programmes/BSC-CS", "S1001")
    assert names[TOMASZ] not in page.body and names[AMINA] not in page.body


def post(run: EventTimeRun, staff: str, page: Page, kind: str, **fields: str) -> Page:
    form = page.forms(kind)[0]
    action = form.pop("_action")
    return fetch(run, action, staff, {**form, **fields})


def test_a_triage_round_is_stored_once_shown_and_refusals_change_nothing(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    tutor, path = "S1042", f"/app/students/{SILENT_CS}"
    page = fetch(run, path, tutor)
    assert page.status == 200 and "No action yet." in page.body
    done = post(run, tutor, page, "acknowledge")
    assert done.status == 303 and done.headers["Location"].startswith(f"{path}?done=acknowledge")
    page = fetch(run, path, tutor)
    assert "Saved" not in page.body  # the notice is only on the page the redirect names
    assert "case acknowledged" in fetch(run, f"{path}?done=acknowledge", tutor).body
    note_form = page.forms("note")[0]
    action = note_form.pop("_action")
    for _ in range(2):  # the same form sent twice
        sent = fetch(
            run, action, tutor, {**note_form, "channel": "meeting", "detail": "Met after the lecture"}
        )
        assert sent.status == 303
    assert fetch(run, f"{path}?done=note", tutor).body.count("<li>noted (meeting)") == 1  # stored once
    refused = post(run, tutor, fetch(run, path, tutor), "refer", service="astrology")
    assert refused.status == 400 and "unknown support service" in refused.body
    stranger = post(run, "S2210", page, "resolve")  # a tutor of other students: as if no such alert
    assert stranger.status == 404 and "may not act" not in stranger.body and SILENT_CS not in stranger.body
    assert post(run, tutor, page, "assign", assignee="S2210").status == 400  # cannot see the student
    assert post(run, tutor, page, "snooze", until="2026-11-01", detail="reading week").status == 400
    unknown = fetch(
        run, "/app/alerts/no-such-alert/actions", tutor, {"action_id": "f-00000001", "kind": "note"}
    )
    assert unknown.status == 404
    assert post(run, tutor, fetch(run, path, tutor), "assign", assignee="S1001").status == 303
    assert "Owner: Prof Ian Mercer" in fetch(run, "/app?q=Liam", "S9001").body
    assert post(run, tutor, fetch(run, path, tutor), "refer", service="wellbeing").status == 303
    assert (
        post(run, tutor, fetch(run, path, tutor), "outcome", service="wellbeing", detail="Seen").status == 303
    )
    assert post(run, tutor, fetch(run, path, tutor), "resolve", detail="Back on track").status == 303
    page = fetch(run, path, tutor)
    history = re.findall(r"<li>((?:acknowledged|noted|referred|outcome|resolved)[^<]*)</li>", page.body)
    assert [h.split(" ")[0] for h in history] == ["acknowledged", "noted", "referred", "outcome", "resolved"]
    assert all("Dr Helen Park" in h for h in history)
    assert "Met after the lecture" in page.body
    assert page.forms("reopen") and not page.forms("resolve")  # closed: reopen, or a note outside it
    assert page.forms("raise")  # and a new concern opens a new case
    caseload = fetch(run, "/app?no_action=1", "S9001")
    assert SILENT_CS not in caseload_ids(caseload)
    own = fetch(run, f"{path}/view", tutor)
    assert own.status == 200 and names[SILENT_CS] in own.body
    assert "Met after the lecture" not in own.body and "no_engagement" not in own.body
    for sid, name in names.items():
        if sid != SILENT_CS:
            assert sid not in own.body and name not in own.body


def test_every_page_read_is_in_the_access_audit(served: tuple[EventTimeRun, dict[str, str], Path]) -> None:
    run, _, data_dir = served
    fetch(run, "/app?q=Amina", "S3301")
    fetch(run, f"/app/students/{AMINA}", "S3301")
    fetch(run, f"/app/students/{TOMASZ}", "S3301")  # refused (404), and audited as refused
    fetch(run, "/app/programmes/BSC-CS", "S3301")
    with store_while_stopped(run, data_dir) as store:
        rows = store.query(
            "SELECT action, via, student_ids, outcome FROM access_audit WHERE staff_id = 'S3301' ORDER BY at"
        )
    assert ("caseload", "web", [AMINA], "allowed") in rows
    assert ("student_view", "web", [AMINA], "allowed") in rows
    assert ("student_view", "web", [TOMASZ], "refused") in rows
    assert ("programme_view", "web", [], "refused") in rows


def test_weekly_reports_through_the_service_name_no_server_path(
    served: tuple[EventTimeRun, dict[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 22: the weekly-report reply listed the server's absolute paths. It names files in the
    reports folder, and `lde report weekly --out` (which asks the running service) still copies them."""
    from ops import cli

    run, _, data_dir = served
    reply = run.client.post("/v1/reports/weekly?week=2026-W47&staff=S1042&delivery=folder")
    assert sorted(reply["files"]) == ["2026-W47/S1042.html", "2026-W47/S1042.pdf", "2026-W47/S1042.txt"]
    assert str(data_dir) not in str(reply) and str(tmp_path.anchor) != reply["files"][0][:1]
    monkeypatch.setenv("LDE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LDE_WEB_PORT", str(run.settings.web_port))
    out = tmp_path / "out"
    assert cli.main(["report", "weekly", "--week", "2026-W47", "--staff", "S1042", "--out", str(out)]) == 0
    assert "by the running service" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "2026-W47").iterdir()) == ["S1042.html", "S1042.pdf", "S1042.txt"]


def test_the_caseload_downloads_as_csv_in_scope_and_audited(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    import csv
    import io

    run, names, data_dir = served
    tutor = fetch(run, "/app/caseload.csv", "S1042")
    assert tutor.status == 200
    assert tutor.headers["Content-Type"].startswith("text/csv")
    disposition = tutor.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="lde-caseload-\d{4}-\d{2}-\d{2}\.csv"', disposition)
    rows = list(csv.DictReader(io.StringIO(tutor.body.lstrip("\ufeff"))))
    assert {r["student_id"] for r in rows} == REPORT_SCOPE["S1042"]  # the tutor's tutees, nobody else
    for sid, name in names.items():
        if sid not in REPORT_SCOPE["S1042"]:
            assert sid not in tutor.body and name not in tutor.body
    assert next(r for r in rows if r["student_id"] == SILENT_CS)["name"] == names[SILENT_CS]
    officer = list(
        csv.DictReader(io.StringIO(fetch(run, "/app/caseload.csv", "S9001").body.lstrip("\ufeff")))
    )
    assert len(officer) == len(REPORT_SCOPE["S9001"])  # every student in scope, not one page
    untouched = next(r for r in officer if r["student_id"] == "900700003")  # nobody has acted on it
    assert (untouched["case_status"], untouched["alerts"], untouched["owner"]) == (
        "open",
        "no_engagement 2026-11-17",
        "S5555",  # the tutor, not in the staff directory: by id
    )
    filtered = fetch(run, "/app/caseload.csv?programme=BSC-PSY", "S9001")
    assert {r["programme"] for r in csv.DictReader(io.StringIO(filtered.body.lstrip("\ufeff")))} == {
        "BSC-PSY"
    }
    assert fetch(run, "/app/caseload.csv?case=lost", "S1042").status == 400
    assert fetch(run, "/app/caseload.csv").status == 401
    with store_while_stopped(run, data_dir) as store:
        audit = store.query(
            "SELECT student_ids, outcome FROM access_audit "
            "WHERE staff_id = 'S1042' AND action = 'caseload_export'"
        )
    assert [(sorted(ids), outcome) for ids, outcome in audit] == [(sorted(REPORT_SCOPE["S1042"]), "allowed")]


def test_a_case_form_about_a_student_outside_scope_is_not_found_and_changes_nothing(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    run, names, _ = served
    form = {"action_id": "f-00000077", "kind": "raise", "detail": "worried"}
    stranger = fetch(run, f"/app/students/{TOMASZ}/case", "S1042", form)
    missing = fetch(run, "/app/students/000000000/case", "S1042", form)
    assert stranger.status == missing.status == 404
    assert stranger.body == missing.body and names[TOMASZ] not in stranger.body
    assert "worried" not in fetch(run, f"/app/students/{TOMASZ}", "S9001").body
    # with no case open: raise a concern (a reason needed), then the case is open and a note joins it
    amina = f"/app/students/{AMINA}"
    leader = "S3301"  # Amina's personal tutor
    assert fetch(run, f"{amina}/case", leader, {**form, "detail": " "}).status == 400
    assert fetch(run, f"{amina}/case", leader, {**form, "kind": "resolve"}).status == 400  # no case
    raised = fetch(run, f"{amina}/case", leader, form)
    assert raised.status == 303 and raised.headers["Location"] == f"{amina}?done=raise#case"
    page = fetch(run, amina, leader)
    assert "A member of staff raised a concern: worried" in page.body and not page.forms("raise")
    assert fetch(run, f"{amina}/case", leader, {**form, "action_id": "f-00000078"}).status == 400
    follow = {"action_id": "f-00000079", "kind": "follow_up", "until": "2026-12-01"}
    assert fetch(run, f"{amina}/case", leader, follow).status == 303
    assert "Follow-up" in fetch(run, amina, leader).body


def test_a_new_alert_after_resolving_opens_a_new_case(
    served: tuple[EventTimeRun, dict[str, str], Path],
) -> None:
    """On the event-time clock (replays, the demo): the resolve is stamped with the service's clock,
    so the evaluator's next alert, a day later in event time, opens a new case."""
    from datetime import UTC, date, datetime, timedelta

    from models.alerts import Alert, Rule, alert_id
    from models.cases import ActionKind
    from sinks.clickhouse.cases import actions_for_student

    run, _, data_dir = served
    officer, sid = "S9001", "900700003"  # its alert untouched so far
    path = f"/app/students/{sid}"
    # the service's event-time clock reaches the end of Thu 19 Nov (weeks behind the wall clock)
    run.publish(through=date(2026, 11, 19))
    assert wait_until(lambda: run.status()["clock"] is not None, 30, 0.2)
    clock = datetime.fromisoformat(run.status()["clock"])
    assert clock == datetime(2026, 11, 20, tzinfo=UTC)
    assert (
        post(run, officer, fetch(run, path, officer), "resolve", detail="Spoke to the student").status == 303
    )
    assert "The last case (opened Wed 18 Nov) was resolved" in fetch(run, path, officer).body
    # the evaluator's next alert, written with the service stopped as the stream would
    with store_while_stopped(run, data_dir) as store:
        # the resolve carries the service's clock (event time here), as the alerts do, not
        # the wall clock: the evaluator's next alert, a day later in event time, comes after it
        resolved = [a for a in actions_for_student(store, sid) if a.kind is ActionKind.RESOLVE]
        assert len(resolved) == 1
        assert resolved[0].at == clock, "the resolve is stamped on the service's clock"
        raised = date(2026, 11, 20)  # the next day the evaluator judges
        start = raised - timedelta(days=5)
        store.write_alerts(
            [
                Alert(
                    alert_id=alert_id(sid, Rule.LOW_ATTENDANCE, start),
                    student_id=sid,
                    rule=Rule.LOW_ATTENDANCE,
                    raised_on=raised,
                    episode_start=start,
                    days_silent=0,
                    last_active_on=None,
                    programme_code="BSC-CS",
                    year_of_study=1,
                    mode="FT",
                    school="",
                    personal_tutor_id="S5555",
                    explanation="Attended 0 of 6 timetabled sessions in the last 14 days.",
                )
            ]
        )
    page = fetch(run, path, officer)
    assert "Attended 0 of 6 timetabled sessions" in page.body.split('id="alerts-h"')[0]  # the box
    assert page.forms("resolve") and not page.forms("reopen")  # a new case, open
    assert "Case opened Wed 18 Nov (No engagement): resolved" in page.body  # the old one, closed
    row = re.search(rf'href="/app/students/{sid}".*?</tr>', fetch(run, f"/app?q={sid}", officer).body, re.S)
    assert row is not None and "no action yet" in row.group(0) and "low attendance" in row.group(0)
    assert "no engagement" not in row.group(0)  # the resolved case's alert is not the new case's
