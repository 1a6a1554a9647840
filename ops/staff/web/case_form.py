"""The student's case: the one form handler behind the student page's "Record action" (issue 27).

Every form acts on the student's case, not on one alert: with a case open, any action the case
allows (models.cases.decide: acknowledge, note, follow-up date, referral and its outcome, change of
owner to a colleague who may see the student, set aside, resolve); with none open, raise a concern
(with a reason) or add a note; and reopen the last case, when it came from an alert. Plain HTML
forms with the session's CSRF token and an action id chosen when the form was drawn, so a form sent
twice stores one action. A student outside the viewer's scope is answered as one that does not exist
(404), the refusal audited.
"""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from models.access import AccessDenied, Action, IdentityRequired, Staff, StaffDirectory, UnknownStaff
from models.cases import (
    ActionKind,
    CaseAction,
    CaseRefused,
    CaseRequest,
    StudentCases,
    decide,
    loose_note,
    raise_concern,
)
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import Subject
from ops.staff.auth.web import credential_of, csrf_matches
from ops.staff.deps import StaffDeps
from ops.staff.web.common import NOT_VISIBLE_PAGE, NotFound, error_page, record_read, redirect, viewer_of
from ops.staff.web.common import refused as refused_page
from ops.staff.web.triage import request_from
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import load_cases, write_actions
from sinks.clickhouse.students import access_scope


def case_action(
    request: CaseRequest,
    cases: StudentCases,
    *,
    viewer: Staff,
    student: RosterLine,
    directory: StaffDirectory,
    services: list[str],
    now: datetime,
    today: date,
) -> CaseAction:
    """Which model decision a case form goes to (pure): raise or a loose note with no case open,
    reopen on the last case's alert, anything else on the open case (on its first alert, so that
    the action stays with the case it was taken on, whatever the clocks of alerts and actions)."""
    current = cases.current
    if request.kind == ActionKind.RAISE.value:
        return raise_concern(request, cases, viewer=viewer, student=student, now=now)
    if current is None and request.kind == ActionKind.NOTE.value:
        return loose_note(request, cases, viewer=viewer, student=student, now=now)
    target = current
    if target is None:
        latest = cases.latest
        if request.kind != ActionKind.REOPEN.value or latest is None or not latest.alerts:
            raise CaseRefused("this student has no open case: raise a concern or add a note")
        target = latest
    on_alert = target.alerts[0].alert_id if target.alerts else ""
    return decide(
        request,
        target.state,
        viewer=viewer,
        student=student,
        directory=directory,
        services=services,
        now=now,
        today=today,
        on_alert=on_alert,
    )


def take_case_action(
    deps: StaffDeps, viewer: Staff, student_id: str, request: CaseRequest, credential: str = ""
) -> CaseAction:
    """Decide and store one action on the student's case. Raises NotFound (a student not on the
    roster, or outside the viewer's scope by the roster now: the refusal audited) or CaseRefused;
    the action is audited as a case_action."""
    store = deps.store
    subject = access_scope(store, student_id)
    if subject is None:
        raise NotFound(NOT_VISIBLE_PAGE)
    try:
        deps.reads.admit(viewer, Subject(*subject), Action.CASE_ACTION, "web", credential)
    except AccessDenied:
        raise NotFound(NOT_VISIBLE_PAGE) from None
    student = RosterLine(subject[0], "", subject[2], "", subject[3], 0, "", subject[1])
    day = deps.views.current().as_of
    cases = load_cases(store, day, [student_id]).get(student_id) or StudentCases(student_id)
    action = case_action(
        request,
        cases,
        viewer=viewer,
        student=student,
        directory=deps.directory(),
        services=list(deps.settings.support_services),
        now=deps.now(),  # the service's clock, as the alerts' (audit rows keep the wall clock)
        today=day,
    )
    write_actions(store, [action])
    record_read(deps.reads, viewer, Action.CASE_ACTION, [student_id])
    return action


async def case_form(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """POST /app/students/{id}/case: store the action, then back to the student's page (303)."""
    metrics = deps.metrics
    try:
        viewer = viewer_of(request)
    except (IdentityRequired, UnknownStaff) as error:
        return refused_page(deps, request, "triage", error)
    form = await request.post()
    if not await csrf_matches(deps.sessions, request, str(form.get("csrf_token", ""))):
        return error_page(
            deps, "triage", 403, "Form expired", "This form has expired. Reload the page and try again."
        )
    wanted = request_from(form)
    page = f"/app/students/{quote(student_id, safe='')}"
    try:
        action = await deps.pages.run(
            take_case_action, deps, viewer, student_id, wanted, credential_of(request)
        )
    except NotFound as error:
        return error_page(deps, "triage", 404, "Not found", str(error))
    except CaseRefused as error:
        kind = wanted.kind if wanted.kind in {k.value for k in ActionKind} else "note"
        metrics.case_actions.labels(kind=kind, outcome="refused").inc()
        return error_page(deps, "triage", 400, "Not saved", str(error), back=page)
    metrics.case_actions.labels(kind=action.kind.value, outcome="stored").inc()
    # The caseload shows the action at once: the one student's row in the precomputed view is redone.
    await deps.views.moved(action.student_id)
    return redirect(deps, "triage", f"{page}?done={action.kind.value}#case")
