"""Alert triage's actions on real chDB: idempotent writes, reads per alert and student, the weekly
report's line per alert, and retention (erased with the student; the privacy check finds them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.access import StaffRow
from models.alerts import Alert, Rule
from models.case_clock import OverduePolicy, case_line
from models.cases import ActionKind, CaseAction, CaseStatus, case_state
from models.retention import week_start
from models.rules import RuleSettings, no_engagement
from models.workdays import WorkingCalendar
from ops.jobs.daily import DailyJob
from ops.jobs.privacy import search_clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.cases import (
    actions_by_alert,
    actions_by_student,
    actions_for_student,
    load_cases,
    programme_impact,
    write_actions,
)
from sinks.clickhouse.reports import load_week
from sinks.redis_store import AlertLedger
from tests.integration.conftest import roster_record
from tests.integration.test_daily_job import LEAVER, POLICY, STAYER, seed

pytestmark = pytest.mark.integration
AT = datetime(2025, 10, 13, 10, 0, tzinfo=UTC)


def leaver_alert(store: ClickHouseStore) -> dict[str, object]:
    return store.alerts(student_id=LEAVER)[0]


def round_of(alert_id: str) -> list[CaseAction]:
    return [
        CaseAction("a-0001", alert_id, LEAVER, ActionKind.ACKNOWLEDGE, "S1042", AT),
        CaseAction(
            "a-0002",
            alert_id,
            LEAVER,
            ActionKind.NOTE,
            "S1042",
            AT + timedelta(hours=1),
            "spoke",
            channel="call",
        ),
        CaseAction(
            "a-0003",
            alert_id,
            LEAVER,
            ActionKind.REFER,
            "S1042",
            AT + timedelta(hours=2),
            service="wellbeing",
        ),
    ]


def test_actions_are_stored_once_per_id_and_read_back_whole(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    alert_id = str(leaver_alert(store)["alert_id"])
    actions = round_of(alert_id)
    write_actions(store, actions)
    write_actions(store, actions[:2])  # a form sent twice, a retried insert
    assert actions_for_student(store, LEAVER) == actions
    assert actions_by_alert(store, [alert_id]) == {alert_id: actions}
    assert actions_by_alert(store, ["no-such-alert"]) == {}
    assert actions_for_student(store, STAYER) == []
    state = case_state(alert_id, actions_by_alert(store)[alert_id], AT.date())
    assert state.status is CaseStatus.IN_PROGRESS
    assert state.pending_referrals == ["wellbeing"]


def test_the_weekly_report_shows_each_alerts_latest_action(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    alert = leaver_alert(store)
    store.write_staff(
        [
            StaffRow(
                staff_id="S1042",
                name="Dr Helen Park",
                email="h@x.ac.uk",
                role="personal_tutor",
                scope="tutees",
            )
        ],
        AT,
    )
    week = week_start(alert["raised_on"])  # type: ignore[arg-type]
    before = load_week(store, week, student_ids=[LEAVER])
    assert [a.action for s in before.students for a in s.alerts] == [""]
    write_actions(store, round_of(str(alert["alert_id"])))
    after = load_week(store, week, student_ids=[LEAVER])
    assert [a.action for s in after.students for a in s.alerts] == [
        "referred to wellbeing by Dr Helen Park on Mon 13 Oct"
    ]


def test_retention_erases_the_actions_and_the_privacy_check_finds_them_first(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    write_actions(store, round_of(str(leaver_alert(store)["alert_id"])))
    stayer_note = CaseAction("a-0009", "other", STAYER, ActionKind.NOTE, "S1042", AT, "x", channel="email")
    write_actions(store, [stayer_note])
    found = search_clickhouse(store, LEAVER)
    assert found["clickhouse:case_actions.student_id"] == 3
    job = DailyJob(store, ledger, POLICY, lambda ids: None)
    assert job.run(date(2026, 8, 1)).steps["retention"]["students"] == 1
    assert search_clickhouse(store, LEAVER) == {}
    assert actions_for_student(store, LEAVER) == []
    assert actions_for_student(store, STAYER) == [stayer_note]


# -- cases (issue 27) --------------------------------------------------------------------------------
def test_per_alert_actions_stored_before_cases_join_the_students_case(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    """Migration forward: rows written per alert (migration 6's shape) read as the student's case."""
    seed(store, ledger)
    first = leaver_alert(store)
    later = alert_for(LEAVER, date(2025, 10, 20), Rule.LOW_ATTENDANCE)
    store.write_alerts([later])
    write_actions(store, round_of(str(first["alert_id"])))
    cases = load_cases(store, date(2025, 10, 21), [LEAVER])[LEAVER]
    (case,) = cases.cases
    assert [a.alert_id for a in case.alerts] == [first["alert_id"], later.alert_id]
    assert case.status is CaseStatus.IN_PROGRESS and case.state.pending_referrals == ["wellbeing"]
    assert load_cases(store, date(2025, 10, 21), [STAYER]) == {}


def test_case_level_actions_are_idempotent_and_a_resolved_case_lets_the_next_alert_open_another(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    first = str(leaver_alert(store)["alert_id"])
    follow = CaseAction("a-0101", "", LEAVER, ActionKind.FOLLOW_UP, "S1042", AT, until=date(2025, 10, 20))
    resolve = CaseAction("a-0102", first, LEAVER, ActionKind.RESOLVE, "S1042", AT + timedelta(days=2))
    write_actions(store, [follow, resolve])
    write_actions(store, [follow])  # sent twice
    assert actions_by_student(store, [LEAVER]) == {LEAVER: [follow, resolve]}
    store.write_alerts([alert_for(LEAVER, date(2025, 10, 27), Rule.NO_ENGAGEMENT)])
    cases = load_cases(store, date(2025, 10, 28))[LEAVER]
    closed, opened = cases.cases
    assert closed.status is CaseStatus.RESOLVED and closed.state.history == (follow, resolve)
    assert opened.status is CaseStatus.OPEN and cases.current == opened
    line = case_line(cases, "S1042", date(2025, 10, 28), OverduePolicy())
    assert line is not None and (line.case_id, line.last_action) == (opened.case_id, "")


def test_retention_erases_a_leavers_case_actions_outside_any_alert_too(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    raised = CaseAction("a-0201", "", LEAVER, ActionKind.RAISE, "S1042", AT, "told me they may leave")
    write_actions(store, [raised])
    assert search_clickhouse(store, LEAVER)["clickhouse:case_actions.student_id"] == 1
    DailyJob(store, ledger, POLICY, lambda ids: None).run(date(2026, 8, 1))
    assert load_cases(store, date(2026, 8, 1), [LEAVER]) == {}
    assert search_clickhouse(store, LEAVER) == {}


def alert_for(student_id: str, raised_on: date, rule: Rule) -> Alert:
    """A concern alert of `rule` raised on a day (its text does not matter here)."""
    record = roster_record(student_id, start_date=date(2025, 9, 22))
    base = no_engagement(record, [], None, raised_on, RuleSettings())
    assert base is not None
    return base.model_copy(update={"rule": rule, "alert_id": f"{rule.value}-{student_id}-{raised_on}"})


def test_a_programmes_impact_summary_is_disclosure_controlled(
    store: ClickHouseStore, ledger: AlertLedger
) -> None:
    seed(store, ledger)
    write_actions(store, round_of(str(leaver_alert(store)["alert_id"])))
    programme = str(leaver_alert(store)["programme_code"])
    summary = programme_impact(store, programme, date(2025, 10, 1), date(2025, 10, 31), WorkingCalendar())
    assert summary.cases_opened == 0  # one case, rounded to the nearest 5
    assert summary.share_acted_within_3_working_days is None  # under 8 cases: suppressed
    assert (
        programme_impact(
            store, "NO-SUCH", date(2025, 10, 1), date(2025, 10, 31), WorkingCalendar()
        ).cases_opened
        == 0
    )
