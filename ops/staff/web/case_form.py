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

from models.access import Staff, StaffDirectory
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
from ops.staff.deps import StaffDeps
from ops.staff.web.common import NOT_VISIBLE_PAGE, NotFound, error_page, redirect
from ops.staff.web.triage import action_stored, admitted_student, not_saved, posted_form, store_action
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import load_cases
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
    student = admitted_student(deps, viewer, access_scope(store, student_id), credential, NOT_VISIBLE_PAGE)
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
    store_action(deps, viewer, action)
    return action


async def case_form(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """POST /app/students/{id}/case: store the action, then back to the student's page (303)."""
    posted = await posted_form(deps, request)
    if isinstance(posted, Response):
        return posted
    page = f"/app/students/{quote(student_id, safe='')}"
    try:
        action = await deps.pages.run(
            take_case_action, deps, posted.viewer, student_id, posted.wanted, posted.credential
        )
    except NotFound as error:
        return error_page(deps, "triage", 404, "Not found", str(error))
    except CaseRefused as error:
        return not_saved(deps, posted.wanted, error, back=page)
    await action_stored(deps, action)
    return redirect(deps, "triage", f"{page}?done={action.kind.value}#case")
