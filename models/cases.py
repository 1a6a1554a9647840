"""Alert triage: the case that staff open on an alert, as data and rules. Pure: no I/O.

A case is the list of actions taken on one alert (acknowledge, snooze, assign, note, referral, outcome,
resolve, reopen), each stored with who and when (sinks.clickhouse.cases). Its state is *derived* from
those actions, never stored beside them, so a replayed or repeated write cannot make them disagree.
`decide` turns what a member of staff asked for into the action to store, or refuses with the reason:

- only staff who may see the student (models.access) act on the student's alert;
- an alert may be assigned only to a colleague who may see the student (the same policy);
- a resolved case takes no action but `reopen`; a snooze needs a later date and a reason;
- an outcome is recorded against a referral that has none yet.

Every action carries an id chosen when the form was drawn, so a form sent twice writes one action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from models.access import Staff, StaffDirectory, StudentRef, UnknownStaff, may_see

#: Referral services when the settings name none (LDE_SUPPORT_SERVICES).
DEFAULT_SUPPORT_SERVICES: tuple[str, ...] = (
    "wellbeing",
    "disability",
    "money advice",
    "academic skills",
    "careers",
)
#: The longest free text kept with an action (a note, a reason, an outcome).
MAX_DETAIL = 2000
#: The furthest a snooze may reach.
MAX_SNOOZE_DAYS = 120
_ACTION_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class ActionKind(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    SNOOZE = "snooze"
    ASSIGN = "assign"
    NOTE = "note"
    REFER = "refer"
    OUTCOME = "outcome"
    RESOLVE = "resolve"
    REOPEN = "reopen"


class Channel(StrEnum):
    """How a note's contact happened."""

    MEETING = "meeting"
    EMAIL = "email"
    CALL = "call"
    OTHER = "other"


class CaseStatus(StrEnum):
    OPEN = "open"  # nobody has acted yet
    IN_PROGRESS = "in progress"  # acknowledged, noted, referred or assigned
    SNOOZED = "snoozed"  # set aside until a date (then in progress again)
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class CaseAction:
    """One stored action. `detail` is the note, the snooze reason or the outcome, in staff's words."""

    action_id: str
    alert_id: str
    student_id: str
    kind: ActionKind
    staff_id: str
    at: datetime
    detail: str = ""
    until: date | None = None  # snooze
    channel: str = ""  # note
    assignee: str = ""  # assign
    service: str = ""  # refer, outcome


@dataclass(frozen=True, slots=True)
class Referral:
    service: str
    referred_by: str
    at: datetime
    outcome: str = ""
    outcome_at: datetime | None = None


@dataclass(frozen=True)
class CaseState:
    """What has been done about one alert so far (derived by `case_state`)."""

    alert_id: str
    status: CaseStatus = CaseStatus.OPEN
    acknowledged_by: str = ""
    acknowledged_at: datetime | None = None
    assignee: str = ""
    snoozed_until: date | None = None
    snooze_reason: str = ""
    last_note: CaseAction | None = None
    referrals: tuple[Referral, ...] = ()
    history: tuple[CaseAction, ...] = field(default=())

    @property
    def latest(self) -> CaseAction | None:
        return self.history[-1] if self.history else None

    @property
    def is_open(self) -> bool:
        return self.status is not CaseStatus.RESOLVED

    @property
    def pending_referrals(self) -> list[str]:
        return [r.service for r in self.referrals if not r.outcome]


def _order(actions: Iterable[CaseAction]) -> list[CaseAction]:
    """Time order; ties (one form, one second) broken by id so every reader agrees."""
    unique = {a.action_id: a for a in actions}
    return sorted(unique.values(), key=lambda a: (a.at, a.action_id))


def case_state(alert_id: str, actions: Iterable[CaseAction], today: date) -> CaseState:
    """The case of one alert from its actions (any order, repeats ignored), as of `today`: a snooze
    whose date has come is over, and the case is in progress again."""
    state = CaseState(alert_id)
    for a in _order(x for x in actions if x.alert_id == alert_id):
        state = _apply(state, a)
    if state.status is CaseStatus.SNOOZED and state.snoozed_until and state.snoozed_until <= today:
        state = replace(state, status=CaseStatus.IN_PROGRESS, snoozed_until=None)
    return state


def _apply(state: CaseState, a: CaseAction) -> CaseState:
    history = (*state.history, a)
    active = CaseStatus.IN_PROGRESS
    if a.kind is ActionKind.ACKNOWLEDGE:
        return replace(
            state, status=active, acknowledged_by=a.staff_id, acknowledged_at=a.at, history=history
        )
    if a.kind is ActionKind.SNOOZE:
        return replace(
            state, status=CaseStatus.SNOOZED, snoozed_until=a.until, snooze_reason=a.detail, history=history
        )
    if a.kind is ActionKind.ASSIGN:
        status = state.status if state.status is CaseStatus.SNOOZED else active
        return replace(state, status=status, assignee=a.assignee, history=history)
    if a.kind is ActionKind.NOTE:
        status = state.status if state.status is CaseStatus.SNOOZED else active
        return replace(state, status=status, last_note=a, history=history)
    if a.kind is ActionKind.REFER:
        referral = Referral(a.service, a.staff_id, a.at)
        return replace(state, status=active, referrals=(*state.referrals, referral), history=history)
    if a.kind is ActionKind.OUTCOME:
        referrals = list(state.referrals)
        for i, r in enumerate(referrals):
            if r.service == a.service and not r.outcome:
                referrals[i] = replace(r, outcome=a.detail, outcome_at=a.at)
                break
        return replace(state, referrals=tuple(referrals), history=history)
    if a.kind is ActionKind.RESOLVE:
        return replace(state, status=CaseStatus.RESOLVED, snoozed_until=None, history=history)
    return replace(state, status=active, history=history)  # reopen


def allowed_actions(state: CaseState) -> list[ActionKind]:
    """What may be done next, in the order the triage form offers it."""
    if state.status is CaseStatus.RESOLVED:
        return [ActionKind.REOPEN]
    kinds = [ActionKind.NOTE, ActionKind.ASSIGN, ActionKind.REFER]
    if not state.acknowledged_by:
        kinds.insert(0, ActionKind.ACKNOWLEDGE)
    if state.status is not CaseStatus.SNOOZED:
        kinds.append(ActionKind.SNOOZE)
    if state.pending_referrals:
        kinds.append(ActionKind.OUTCOME)
    kinds.append(ActionKind.RESOLVE)
    return kinds


# -- deciding on a request ---------------------------------------------------------------------------
class CaseRefused(ValueError):
    """A triage request that cannot be taken, with the reason in words for the form."""


@dataclass(frozen=True, slots=True)
class CaseRequest:
    """What a triage form asked for, as submitted (strings, unchecked)."""

    action_id: str
    kind: str
    detail: str = ""
    until: str = ""
    channel: str = ""
    assignee: str = ""
    service: str = ""


def assignable(student: StudentRef, directory: StaffDirectory) -> list[Staff]:
    """Colleagues an alert about `student` may be given to: everyone the policy lets see the student."""
    return [s for s in directory if may_see(s, student)]


def decide(
    request: CaseRequest,
    state: CaseState,
    *,
    viewer: Staff,
    student: StudentRef,
    directory: StaffDirectory,
    services: Sequence[str],
    now: datetime,
    today: date,
) -> CaseAction:
    """The action to store for a request, or CaseRefused saying why not."""
    if not may_see(viewer, student):
        raise CaseRefused(f"{viewer.staff_id} may not act on alerts about student {student.student_id}")
    if not _ACTION_ID.match(request.action_id):
        raise CaseRefused("the form has no valid action id: reload the page and try again")
    try:
        kind = ActionKind(request.kind)
    except ValueError:
        raise CaseRefused(f"unknown action {request.kind!r}") from None
    if any(a.action_id == request.action_id for a in state.history):
        return next(a for a in state.history if a.action_id == request.action_id)  # sent twice: the same
    if kind not in allowed_actions(state):
        raise CaseRefused(f"cannot {kind.value} a case that is {state.status.value}")
    detail = request.detail.strip()
    if len(detail) > MAX_DETAIL:
        raise CaseRefused(f"the text is {len(detail)} characters long; keep it under {MAX_DETAIL}")
    action = CaseAction(request.action_id, state.alert_id, student.student_id, kind, viewer.staff_id, now)
    if kind is ActionKind.SNOOZE:
        until = _snooze_until(request.until, today)
        if not detail:
            raise CaseRefused("a snooze needs a reason")
        return replace(action, until=until, detail=detail)
    if kind is ActionKind.ASSIGN:
        return replace(action, assignee=_assignee(request.assignee.strip(), student, directory))
    if kind is ActionKind.NOTE:
        try:
            channel = Channel(request.channel or Channel.OTHER)
        except ValueError:
            raise CaseRefused(f"unknown contact {request.channel!r}: meeting, email, call or other") from None
        if not detail:
            raise CaseRefused("a note needs some text")
        return replace(action, channel=channel.value, detail=detail)
    if kind is ActionKind.REFER:
        if request.service not in services:
            raise CaseRefused(f"unknown support service {request.service!r}: one of {', '.join(services)}")
        return replace(action, service=request.service, detail=detail)
    if kind is ActionKind.OUTCOME:
        if request.service not in state.pending_referrals:
            raise CaseRefused(f"no referral to {request.service!r} is waiting for an outcome")
        if not detail:
            raise CaseRefused("an outcome needs some text")
        return replace(action, service=request.service, detail=detail)
    return replace(action, detail=detail)  # acknowledge, resolve, reopen: an optional comment


def _snooze_until(text: str, today: date) -> date:
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise CaseRefused(f"snooze until {text!r}: give a date like 2026-12-01") from None
    if until <= today:
        raise CaseRefused("a snooze must end after today")
    if (until - today).days > MAX_SNOOZE_DAYS:
        raise CaseRefused(f"a snooze may last {MAX_SNOOZE_DAYS} days at most")
    return until


def _assignee(staff_id: str, student: StudentRef, directory: StaffDirectory) -> str:
    try:
        colleague = directory.get(staff_id)
    except UnknownStaff:
        raise CaseRefused(f"no colleague {staff_id!r} in the staff directory") from None
    if not may_see(colleague, student):
        raise CaseRefused(f"{colleague.name} may not see this student, so cannot be given the alert")
    return colleague.staff_id


# -- words -------------------------------------------------------------------------------------------
def describe(action: CaseAction, names: dict[str, str] | None = None) -> str:
    """One line for the report and the alert: "noted (call) by Dr Helen Park on 2026-11-03"."""
    names = names or {}
    who = names.get(action.staff_id, action.staff_id)
    when = action.at.date().isoformat()
    what = {
        ActionKind.ACKNOWLEDGE: "acknowledged",
        ActionKind.SNOOZE: f"snoozed until {action.until} ({action.detail})",
        ActionKind.ASSIGN: f"assigned to {names.get(action.assignee, action.assignee)}",
        ActionKind.NOTE: f"noted ({action.channel})",
        ActionKind.REFER: f"referred to {action.service}",
        ActionKind.OUTCOME: f"outcome from {action.service}: {action.detail}",
        ActionKind.RESOLVE: "resolved",
        ActionKind.REOPEN: "reopened",
    }[action.kind]
    return f"{what} by {who} on {when}"
