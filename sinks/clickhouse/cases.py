"""Cases' queries: the actions staff took (models.cases), written and read, and a student's cases.

Writes are idempotent: an action's id is chosen when its form is drawn, and the table keeps one row
per (student, alert, action id), so a form sent twice (or a retried insert) stores one action. An
action on a student's case as a whole (a raised concern, a note outside any alert, a follow-up date)
has alert id ''. Readers return CaseAction values; cases and their state are derived from the
student's concern alerts and actions by models.cases, in bulk per scope (`load_cases`: two queries
whatever the scope's size), so the caseload and the reports read one open case per student without
a table of derived state that could disagree with the actions. The actions stored per alert before
cases existed (migration 6) need no rewrite: they join the student's case through their alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date
from typing import Any

from models.cases import ActionKind, CaseAction, CaseAlert, StudentCases, student_cases
from models.impact import ImpactSummary, impact_summary
from models.reports import CONCERN_RULES
from models.workdays import WorkingCalendar
from sinks.clickhouse.store import ClickHouseStore
from sinks.clickhouse.students import access_scope

CASE_COLUMNS = (
    "action_id",
    "alert_id",
    "student_id",
    "kind",
    "staff_id",
    "at",
    "detail",
    "until",
    "channel",
    "assignee",
    "service",
)
_SELECT = f"SELECT {', '.join(CASE_COLUMNS)} FROM case_actions FINAL"


def write_actions(store: ClickHouseStore, actions: Iterable[CaseAction]) -> int:
    """Store actions (repeats of a stored action id change nothing). Returns how many were given."""
    rows = [
        (
            a.action_id,
            a.alert_id,
            a.student_id,
            a.kind.value,
            a.staff_id,
            a.at,
            a.detail,
            a.until,
            a.channel,
            a.assignee,
            a.service,
        )
        for a in actions
    ]
    store.insert("case_actions", rows, CASE_COLUMNS)
    return len(rows)


def _action(row: Sequence[Any]) -> CaseAction:
    action_id, alert_id, student_id, kind, staff_id, at, detail, until, channel, assignee, service = row
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return CaseAction(
        action_id,
        alert_id,
        student_id,
        ActionKind(kind),
        staff_id,
        at,
        detail,
        until,
        channel,
        assignee,
        service,
    )


def actions_for_student(store: ClickHouseStore, student_id: str) -> list[CaseAction]:
    """Every action on any of the student's alerts, oldest first."""
    rows = store.query(
        f"{_SELECT} WHERE student_id = {{sid:String}} ORDER BY at, action_id", {"sid": student_id}
    )
    return [_action(r) for r in rows]


def actions_by_alert(
    store: ClickHouseStore, alert_ids: Sequence[str] | None = None
) -> dict[str, list[CaseAction]]:
    """Actions per alert id (all alerts, or the ones named), oldest first: one query for a caseload."""
    where = " WHERE alert_id IN {ids:Array(String)}" if alert_ids is not None else ""
    rows = store.query(f"{_SELECT}{where} ORDER BY at, action_id", {"ids": list(alert_ids or [])})
    out: dict[str, list[CaseAction]] = defaultdict(list)
    for row in rows:
        action = _action(row)
        out[action.alert_id].append(action)
    return dict(out)


def alert_subject(store: ClickHouseStore, alert_id: str) -> tuple[str, str, str, str] | None:
    """(student_id, personal_tutor_id, programme_code, school) of an alert's student as the roster
    has them NOW (not as recorded on the alert when it was raised: a student moved to another tutor
    takes their open cases along), as the access policy needs them; None for an unknown alert or a
    student no longer on the roster."""
    rows = store.query(
        "SELECT student_id FROM alerts FINAL WHERE alert_id = {a:String} LIMIT 1", {"a": alert_id}
    )
    return access_scope(store, str(rows[0][0])) if rows else None


def _only(student_ids: Sequence[str] | None) -> str:
    return "student_id IN {ids:Array(String)}" if student_ids is not None else "1"


def concern_alerts(
    store: ClickHouseStore, student_ids: Sequence[str] | None = None
) -> dict[str, list[CaseAlert]]:
    """Every concern alert (the rules that open or join a case) per student, of everyone or of the
    students named; all of them, however old, so that an untouched case never drops out of sight."""
    rows = store.query(
        "SELECT DISTINCT alert_id, student_id, rule, raised_on FROM alerts "
        f"WHERE rule IN {{rules:Array(String)}} AND {_only(student_ids)}",
        {"rules": sorted(CONCERN_RULES), "ids": list(student_ids or [])},
    )
    out: dict[str, list[CaseAlert]] = defaultdict(list)
    for alert_id, student_id, rule, raised_on in rows:
        out[student_id].append(CaseAlert(alert_id, student_id, rule, raised_on))
    return dict(out)


def actions_by_student(
    store: ClickHouseStore, student_ids: Sequence[str] | None = None
) -> dict[str, list[CaseAction]]:
    """Every action per student (of everyone or of the students named), oldest first."""
    rows = store.query(
        f"{_SELECT} WHERE {_only(student_ids)} ORDER BY at, action_id", {"ids": list(student_ids or [])}
    )
    out: dict[str, list[CaseAction]] = defaultdict(list)
    for row in rows:
        action = _action(row)
        out[action.student_id].append(action)
    return dict(out)


def load_cases(
    store: ClickHouseStore, today: date, student_ids: Sequence[str] | None = None
) -> dict[str, StudentCases]:
    """Each student's cases (students with neither alerts nor actions left out), in two queries."""
    alerts = concern_alerts(store, student_ids)
    actions = actions_by_student(store, student_ids)
    return {
        sid: student_cases(sid, alerts.get(sid, ()), actions.get(sid, ()), today)
        for sid in sorted(alerts.keys() | actions.keys())
    }


def re_engaged_days(store: ClickHouseStore, student_ids: Sequence[str]) -> dict[str, list[date]]:
    """The days each named student's `re_engaged` alerts were raised (the impact summary's measure)."""
    rows = store.query(
        "SELECT DISTINCT student_id, raised_on FROM alerts WHERE rule = 're_engaged' "
        "AND student_id IN {ids:Array(String)} ORDER BY raised_on",
        {"ids": list(student_ids)},
    )
    out: dict[str, list[date]] = defaultdict(list)
    for student_id, raised_on in rows:
        out[student_id].append(raised_on)
    return dict(out)


def programme_impact(
    store: ClickHouseStore, programme_code: str, first: date, last: date, calendar: WorkingCalendar
) -> ImpactSummary:
    """The impact summary of a programme's cases opened from `first` to `last` (models.impact), in
    four queries. Disclosure-controlled: safe for leaders and directors."""
    ids = [
        row[0]
        for row in store.query(
            "SELECT student_id FROM students FINAL WHERE programme_code = {p:String}", {"p": programme_code}
        )
    ]
    cases = load_cases(store, last, ids)
    every = [c for student in cases.values() for c in student.cases]
    return impact_summary(programme_code, every, re_engaged_days(store, ids), calendar, first, last)
