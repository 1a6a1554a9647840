"""Issue 22, item 4: scope follows the roster as it is now. After a roster load moves a student to
another tutor, the new tutor sees the student's open cases the same day (in /v1/alerts, the caseload
and the triage form) and the old tutor loses them everywhere: the API, the pages and triage, each
refusal answered as "not found" and audited. Through the real service, on the report data set."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from sinks import clickhouse
from sinks.clickhouse import ClickHouseStore
from tests.integration import report_data
from tests.integration.web_helpers import fetch, seed_data_dir, service_on

pytestmark = pytest.mark.integration

MOVED = "900201777"  # S1042's tutee with an open no_engagement alert, moved to S2210
OLD, NEW = "S1042", "S2210"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventTimeRun, Path]]:
    data_dir = tmp_path_factory.mktemp("roster-move")
    seed_data_dir(data_dir)
    # the caseload view rebuilt within 2 s of a roster load (30 s by default): the test waits less
    with service_on(data_dir, {"LDE_WEB_VIEW_REFRESH_SECONDS": "2"}) as run:
        yield run, data_dir


def alert_students(run: EventTimeRun, staff: str) -> set[str]:
    page = fetch(run, "/v1/alerts", staff)
    assert page.status == 200, page.body
    return {row["student_id"] for row in json.loads(page.body)}


def caseload(run: EventTimeRun, staff: str) -> set[str]:
    return set(re.findall(r'href="/app/students/(\d+)"', fetch(run, "/app", staff).body))


def test_a_roster_move_takes_the_open_cases_to_the_new_tutor(served: tuple[EventTimeRun, Path]) -> None:
    run, data_dir = served
    # before: the case is the old tutor's
    assert MOVED in alert_students(run, OLD) and MOVED not in alert_students(run, NEW)
    assert MOVED in caseload(run, OLD) and MOVED not in caseload(run, NEW)
    page = fetch(run, f"/app/students/{MOVED}", OLD)
    form = next(f for f in page.forms("note"))
    action = form.pop("_action")
    assert action == f"/app/students/{MOVED}/case"  # the student's case (issue 27)

    # `lde roster load` with the student's record naming the new tutor
    record = next(r for r in report_data.roster() if r.student_id == MOVED)
    run.publish(roster=[record.model_copy(update={"personal_tutor_id": NEW})])
    assert wait_until(lambda: MOVED in alert_students(run, NEW), 60, 0.3), "the new tutor never saw it"

    # the new tutor has the case everywhere, the same day: every read and action checks the roster
    # now; the caseload list is the precomputed view, rebuilt on a roster load within
    # LDE_WEB_VIEW_REFRESH_SECONDS (issue 26), then loaded by the standby renderer
    assert wait_until(lambda: MOVED in caseload(run, NEW), 90, 0.5), "not on the new tutor's caseload"
    assert wait_until(lambda: MOVED not in caseload(run, OLD), 90, 0.5), "still on the old tutor's caseload"
    assert fetch(run, f"/app/students/{MOVED}", NEW).status == 200
    note = {**form, "channel": "meeting", "detail": "Introduced myself as the new tutor"}
    assert fetch(run, action, NEW, note).status == 303
    # the old tutor has lost it everywhere, and each refusal looks like "not found"
    assert MOVED not in alert_students(run, OLD)
    for path in (f"/app/students/{MOVED}", f"/v1/students/{MOVED}", f"/v1/activity/{MOVED}"):
        assert fetch(run, path, OLD).status == 404, path
    stale = {**form, "action_id": "f-00000077", "channel": "email", "detail": "still mine?"}
    refused = fetch(run, action, OLD, stale)
    missing = fetch(run, "/app/students/000000000/case", OLD, stale)
    assert refused.status == missing.status == 404
    assert "may not act" not in refused.body and MOVED not in refused.body
    assert refused.body == missing.body

    run.stop()  # chDB has one owner: read what was stored with the service stopped
    try:
        store = ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
        try:
            notes = store.query(
                "SELECT staff_id, detail FROM case_actions FINAL WHERE student_id = {s:String}", {"s": MOVED}
            )
            refusals = store.query(
                "SELECT action, student_ids FROM access_audit WHERE staff_id = {s:String} "
                "AND outcome = 'refused'",
                {"s": OLD},
            )
        finally:
            store.close()
    finally:
        run.start()
    assert (NEW, "Introduced myself as the new tutor") in notes
    assert all(staff != OLD for staff, _ in notes)  # the old tutor's note was not stored
    refused_actions = {action for action, ids in refusals if ids == [MOVED]}
    assert {"case_action", "student_view", "activity_view"} <= refused_actions
