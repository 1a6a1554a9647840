"""The student page (for staff): engagement by week and by day against the comparison group, per
source; attendance; every alert with its explanation, figures and case history; the triage forms.
The read goes through the access policy and is audited (ops.jobs.reports.personal.student_view)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.access import AccessDenied, IdentityRequired, Staff, StaffDirectory, UnknownStaff
from models.cases import assignable
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import AuditedReads, UnknownStudent
from ops.jobs.reports.personal import student_view
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.web.common import names_of, refused, render, respond, viewer_of
from ops.staff.web.views.student import (
    AlertCard,
    AttendanceWeek,
    DaySeries,
    TriageChoices,
    alert_cards,
    attendance_weeks,
    day_series,
    days_back,
)
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import caseload as queries
from sinks.clickhouse import students as student_queries
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import actions_for_student

#: What the page says after a triage form was stored (by the action's kind).
SAVED = {
    "acknowledge": "alert acknowledged",
    "snooze": "alert snoozed",
    "assign": "alert assigned",
    "note": "note added",
    "refer": "referral recorded",
    "outcome": "outcome recorded",
    "resolve": "case resolved",
    "reopen": "case reopened",
}
#: Days shown on the daily timeline.
TIMELINE_DAYS = 28


@dataclass(frozen=True)
class StudentPage:
    figures: dict[str, Any]  # ops.jobs.reports.student.student_view_figures
    days: list[DaySeries]
    attendance: list[AttendanceWeek]
    cards: list[AlertCard]
    choices: TriageChoices
    compared_with: str


def comparison_members(store: ClickHouseStore, student_id: str, min_group: int) -> tuple[list[str], str]:
    """The ids of the student's comparison group (cohort, else programme) and its name; the group's
    figures are only ever shown as averages and quartiles."""
    key = student_queries.cohort_key(store, student_id)
    if key is None:
        return [], "nobody"
    programme, year, mode = key
    group = student_queries.ComparisonGroup.cohort(programme, year, mode)
    members, basis = student_queries.group_member_ids(store, group), "cohort"
    if len(members) < min_group:
        members = student_queries.group_member_ids(
            store, student_queries.ComparisonGroup.programme(programme)
        )
        basis = "programme"
    return members, f"{basis} ({len(members)} students)"


def load_student_page(
    store: ClickHouseStore,
    reads: AuditedReads,
    viewer: Staff,
    student_id: str,
    directory: StaffDirectory,
    names: dict[str, str],
    services: list[str],
    as_of: date,
    min_group: int,
) -> StudentPage:
    """Raises UnknownStudent or AccessDenied (before reading anything else); audited."""
    figures = student_view(store, reads, viewer, student_id, "web")
    last = date.fromisoformat(figures["as_of"])
    days = days_back(last, TIMELINE_DAYS)
    members, compared_with = comparison_members(store, student_id, min_group)
    rows = queries.daily_counts(store, sorted({student_id, *members}), days[0], days[-1])
    weeks = [date.fromisoformat(w) for w in figures["weeks"]]
    own_rows = queries.daily_counts(store, [student_id], weeks[0], weeks[-1] + timedelta(days=6))
    alerts = store.alerts(student_id=student_id)
    by_alert: dict[str, list[Any]] = defaultdict(list)
    for action in actions_for_student(store, student_id):
        by_alert[action.alert_id].append(action)
    scope = student_queries.access_scope(store, student_id)
    assert scope is not None  # student_view found the student
    ref = RosterLine(scope[0], figures["name"], scope[2], "", scope[3], 0, "", scope[1])
    choices = TriageChoices(assignable(ref, directory), services)
    return StudentPage(
        figures,
        day_series(student_id, rows, members, days, min_group),
        attendance_weeks(student_id, own_rows, weeks),
        alert_cards(alerts, by_alert, names, as_of),
        choices,
        compared_with,
    )


def student_html(page: StudentPage, viewer: Staff, csrf: str, notice: str = "", error: str = "") -> str:
    return render(
        "student.html",
        page=page,
        viewer=viewer,
        csrf_token=csrf,
        new_id=lambda: str(uuid.uuid4()),
        notice=notice,
        error=error,
    )


async def student_page(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """GET /app/students/{id}: everything about one student a member of staff may see."""
    try:
        viewer = viewer_of(request)
        page = await deps.pages.run(
            load_student_page,
            deps.store,
            deps.reads,
            viewer,
            student_id,
            deps.directory(),
            names_of(deps),
            list(deps.settings.support_services),
            deps.today(),
            deps.settings.min_cohort_size,
        )
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(deps, request, "student", error)
    deps.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    done = str(request.query.get("done", ""))
    notice = f"Saved: {SAVED[done]}." if done in SAVED else ""  # fixed words: nothing from the address
    body = student_html(page, viewer, await csrf_token(deps.sessions, request), notice=notice)
    return respond(deps, "student", body)
