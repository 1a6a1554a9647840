"""The student page (for staff), shortest first (issue 27): one box saying what is happening, the open
case and what to do next, with every action behind one "Record action" control (a <details>, no
script); the open case's alerts with their figures as a labelled table; then one weekly timeline per
source in weight order with alerts, absences and case actions marked. The read goes through the
access policy and is audited (ops.jobs.reports.personal.student_view)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.access import AccessDenied, IdentityRequired, Staff, StaffDirectory, UnknownStaff
from models.case_clock import OverduePolicy, case_line
from models.cases import StudentCases, assignable
from models.reports import SOURCE_LABELS
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import AuditedReads, UnknownStudent
from ops.jobs.reports.personal import student_view
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.web.common import names_of, refused, render, respond, viewer_of
from ops.staff.web.views.student import TriageChoices, attendance_weeks
from ops.staff.web.views.student_case import (
    CaseBox,
    FigureTable,
    Timeline,
    by_weight,
    case_box,
    figure_table,
    rule_words,
    timelines,
    week_marks,
)
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import caseload as queries
from sinks.clickhouse import students as student_queries
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import load_cases

#: What the page says after a form was stored (by the action's kind).
SAVED = {
    "acknowledge": "case acknowledged",
    "snooze": "case set aside",
    "assign": "owner changed",
    "note": "note added",
    "refer": "referral recorded",
    "outcome": "outcome recorded",
    "resolve": "case resolved",
    "reopen": "case reopened",
    "raise": "concern raised: a case is open",
    "follow_up": "follow-up date set",
}


@dataclass(frozen=True)
class StudentPage:
    figures: dict[str, Any]  # ops.jobs.reports.student.student_view_figures
    box: CaseBox
    timelines: list[Timeline]
    alert_figures: dict[str, FigureTable]
    choices: TriageChoices
    compared_with: str  # the one sentence naming the comparison group (models.groups.compared_with)
    unused: list[str]  # sources with no use in these weeks (no timeline drawn)
    as_of: date


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
    policy: OverduePolicy,
    weights: Mapping[str, float],
) -> StudentPage:
    """Raises UnknownStudent or AccessDenied (before reading anything else); audited."""
    figures = student_view(store, reads, viewer, student_id, "web", min_group=min_group)
    scope = student_queries.access_scope(store, student_id)
    assert scope is not None  # student_view found the student
    ref = RosterLine(scope[0], figures["name"], scope[2], "", scope[3], 0, "", scope[1])
    weeks = [date.fromisoformat(w) for w in figures["weeks"]]
    own_rows = queries.daily_counts(store, [student_id], weeks[0], weeks[-1] + timedelta(days=6))
    attended = {w.week: (w.expected, w.attended) for w in attendance_weeks(student_id, own_rows, weeks)}
    alerts = store.alerts(student_id=student_id)
    cases = load_cases(store, as_of, [student_id]).get(student_id) or StudentCases(student_id)
    line = case_line(cases, scope[1], as_of, policy)
    box = case_box(cases, line, alerts, figures.get("band"), names, as_of)
    every_action = [a for c in cases.cases for a in c.state.history] + list(cases.loose_notes)
    marks = week_marks(weeks, alerts, student_queries.student_absences(store, student_id), every_action)
    order = by_weight(weights)
    drawn = timelines(figures, attended, marks, order)
    shown = {t.source for t in drawn}
    return StudentPage(
        figures=figures,
        box=box,
        timelines=drawn,
        alert_figures={str(a["alert_id"]): figure_table(a.get("figures") or {}, order) for a in alerts},
        choices=TriageChoices(assignable(ref, directory), services),
        compared_with=str(figures["compared_with"]),
        unused=[SOURCE_LABELS[s] for s in order if s not in shown],
        as_of=as_of,
    )


def student_html(
    page: StudentPage,
    viewer: Staff,
    csrf: str,
    notice: str = "",
    error: str = "",
    names: Mapping[str, str] | None = None,
) -> str:
    return render(
        "student.html",
        page=page,
        names=names or {},
        viewer=viewer,
        csrf_token=csrf,
        new_id=lambda: str(uuid.uuid4()),
        notice=notice,
        error=error,
        rule_words=rule_words,
        status_words=STATUS_WORDS,
    )


#: A case's status as the box says it.
STATUS_WORDS = {
    "open": "open, no action yet",
    "in progress": "in progress",
    "snoozed": "set aside",
    "resolved": "resolved",
}


async def student_page(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """GET /app/students/{id}: everything about one student a member of staff may see."""
    settings = deps.settings
    try:
        viewer = viewer_of(request)

        def work() -> StudentPage:
            return load_student_page(
                deps.store,
                deps.reads,
                viewer,
                student_id,
                deps.directory(),
                names_of(deps),
                list(settings.support_services),
                deps.views.current().as_of,
                settings.min_cohort_size,
                settings.overdue_policy,
                settings.engagement_weights,
            )

        page = await deps.pages.run(work)
    except (IdentityRequired, UnknownStaff, AccessDenied, UnknownStudent) as error:
        return refused(deps, request, "student", error)
    deps.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    done = str(request.query.get("done", ""))
    notice = f"Saved: {SAVED[done]}." if done in SAVED else ""  # fixed words: nothing from the address
    body = student_html(
        page, viewer, await csrf_token(deps.sessions, request), notice=notice, names=names_of(deps)
    )
    return respond(deps, "student", body)
