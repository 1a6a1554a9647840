"""Alert triage: the one form handler behind every triage action (acknowledge, snooze, assign, note,
referral, outcome, resolve, reopen), written through the student's case (models.cases): an action on
any of a case's alerts is an action on the case. Plain HTML forms: each carries the CSRF token and an
action id chosen when the form was drawn, so a form sent twice stores one action (models.cases.decide)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from models.access import AccessDenied, Action, IdentityRequired, Staff, UnknownStaff
from models.cases import (
    ActionKind,
    CaseAction,
    CaseRefused,
    CaseRequest,
    CaseState,
    StudentCases,
    case_state,
    decide,
)
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import Subject
from ops.staff.auth.web import credential_of, csrf_matches
from ops.staff.deps import StaffDeps
from ops.staff.web.common import NotFound, error_page, record_read, redirect, refused, viewer_of
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import actions_by_alert, alert_subject, load_cases, write_actions

FIELDS = ("action_id", "kind", "detail", "until", "channel", "assignee", "service")


def request_from(form: Mapping[str, object]) -> CaseRequest:
    """The triage request a posted form carries (every field a string, cut to a safe length)."""
    return CaseRequest(**{name: str(form.get(name, ""))[:4000] for name in FIELDS})


@dataclass(frozen=True, slots=True)
class PostedForm:
    """A case or triage form that passed the identity and CSRF checks: who sent it, the request it
    carries, the form itself (for its other fields) and the credential the guard verified."""

    viewer: Staff
    wanted: CaseRequest
    form: Mapping[str, object]
    credential: str


async def posted_form(deps: StaffDeps, request: Request) -> PostedForm | Response:
    """The posted case or triage form, or the page refusing it: no verified identity (refused) or a
    CSRF token that is not the session's (403, "Form expired")."""
    try:
        viewer = viewer_of(request)
    except (IdentityRequired, UnknownStaff) as error:
        return refused(deps, request, "triage", error)
    form = await request.post()
    if not await csrf_matches(deps.sessions, request, str(form.get("csrf_token", ""))):
        return error_page(
            deps, "triage", 403, "Form expired", "This form has expired. Reload the page and try again."
        )
    return PostedForm(viewer, request_from(form), form, credential_of(request))


def admitted_student(
    deps: StaffDeps,
    viewer: Staff,
    subject: tuple[str, str, str, str] | None,
    credential: str,
    not_found: str,
) -> RosterLine:
    """The student a form acts on, as the access policy needs them, once the viewer may act on
    them (the refusal audited). Raises NotFound(`not_found`) for no such student (`subject` None)
    and, the same answer, for one outside the viewer's scope."""
    if subject is None:
        raise NotFound(not_found)
    try:
        deps.reads.admit(viewer, Subject(*subject), Action.CASE_ACTION, "web", credential)
    except AccessDenied:
        raise NotFound(not_found) from None
    return RosterLine(subject[0], "", subject[2], "", subject[3], 0, "", subject[1])


def store_action(deps: StaffDeps, viewer: Staff, action: CaseAction) -> None:
    """Store one decided action and audit it as a case_action on its student."""
    write_actions(deps.store, [action])
    record_read(deps.reads, viewer, Action.CASE_ACTION, [action.student_id])


def not_saved(deps: StaffDeps, wanted: CaseRequest, error: CaseRefused, back: str) -> Response:
    """A refused action: counted by its kind (an unknown kind as a note), the reason shown (400)
    with a link `back`."""
    kind = wanted.kind if wanted.kind in {k.value for k in ActionKind} else "note"
    deps.metrics.case_actions.labels(kind=kind, outcome="refused").inc()
    return error_page(deps, "triage", 400, "Not saved", str(error), back=back)


async def action_stored(deps: StaffDeps, action: CaseAction) -> None:
    """Count a stored action; the caseload shows it at once: the one student's row in the
    precomputed view is redone."""
    deps.metrics.case_actions.labels(kind=action.kind.value, outcome="stored").inc()
    await deps.views.moved(action.student_id)


def case_on(cases: StudentCases | None, alert_id: str, store: ClickHouseStore, day: date) -> CaseState:
    """The case an alert's form acts on: the student's case holding the alert; for an alert that
    opens no case (re_engaged), the open case, else the alert's own actions as before cases."""
    if cases is not None:
        case = cases.holding(alert_id) or cases.current
        if case is not None:
            return case.state
    return case_state(alert_id, actions_by_alert(store, [alert_id]).get(alert_id, ()), day)


def take_action(
    deps: StaffDeps, viewer: Staff, alert_id: str, request: CaseRequest, credential: str = ""
) -> CaseAction:
    """Decide and store one triage action. Raises NotFound (also for an alert about a student outside
    the viewer's scope NOW, by the student's current roster record: the same answer as for no such
    alert, the refusal audited) or CaseRefused; audited."""
    store = deps.store
    subject = alert_subject(store, alert_id)  # the student's scope as the roster has it now
    student = admitted_student(deps, viewer, subject, credential, f"no alert {alert_id}")
    day = deps.today()
    state = case_on(
        load_cases(store, day, [student.student_id]).get(student.student_id), alert_id, store, day
    )
    action = decide(
        request,
        state,
        viewer=viewer,
        student=student,
        directory=deps.directory(),
        services=list(deps.settings.support_services),
        now=deps.now(),  # the service's clock, as the alerts' (audit rows keep the wall clock)
        today=day,
        on_alert=alert_id,
    )
    store_action(deps, viewer, action)
    return action


async def triage_form(deps: StaffDeps, request: Request, alert_id: str) -> Response:
    """POST /app/alerts/{id}/actions: store the action, then back to the student's page (303)."""
    posted = await posted_form(deps, request)
    if isinstance(posted, Response):
        return posted
    try:
        action = await deps.pages.run(
            take_action, deps, posted.viewer, alert_id, posted.wanted, posted.credential
        )
    except NotFound as error:
        return error_page(deps, "triage", 404, "Alert not found", str(error))
    except CaseRefused as error:
        back = str(posted.form.get("back", "")) or "/app"
        return not_saved(deps, posted.wanted, error, back if back.startswith("/app/students/") else "/app")
    await action_stored(deps, action)
    page = f"/app/students/{quote(action.student_id, safe='')}"
    location = f"{page}?done={action.kind.value}#alert-{quote(alert_id, safe='')}"
    return redirect(deps, "triage", location)
