"""Alert triage's queries: the actions staff took on alerts (models.cases), written and read.

Writes are idempotent: an action's id is chosen when its form is drawn, and the table keeps one row
per (student, alert, action id), so a form sent twice (or a retried insert) stores one action.
Readers return CaseAction values; the case's state is derived from them by models.cases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from models.cases import ActionKind, CaseAction
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
