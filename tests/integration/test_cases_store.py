"""Alert triage's actions on real chDB: idempotent writes, reads per alert and student, the weekly
report's line per alert, and retention (erased with the student; the privacy check finds them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from models.access import StaffRow
from models.cases import ActionKind, CaseAction, CaseStatus, case_state
from models.retention import week_start
from ops.jobs.daily import DailyJob
from ops.jobs.privacy import search_clickhouse
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.cases import actions_by_alert, actions_for_student, write_actions
from sinks.clickhouse.reports import load_week
from sinks.redis_store import AlertLedger
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
        "referred to wellbeing by Dr Helen Park on 2025-10-13"
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
