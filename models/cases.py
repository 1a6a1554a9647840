"""Cases: one per student episode, from LDE's concern alerts and staff's actions. Pure: no I/O.

A student has at most one open case (issue 27). The first concern alert while none is open opens one,
and every concern alert raised while it is open joins it; resolving closes it; the next alert opens a
new one. Staff may open one themselves ("raise a concern", with a reason) and record a note outside
any alert. A case has an owner (the student's personal tutor unless changed), a follow-up date and a
history: acknowledged, note (a meeting is a note whose contact is a meeting), referral, outcome,
follow-up set, owner changed (assign), snoozed, resolved, reopened.

Every action is stored with who and when (sinks.clickhouse.cases); a case, its members and its state
are *derived* from the student's alerts and actions (`student_cases`), never stored beside them, so
a replayed or repeated write cannot make them disagree, and the actions stored per alert before cases
existed join the student's case through their alert. `decide` turns what a member of staff asked for
into the action to store, or refuses with the reason:

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
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from models.access import Staff, StaffDirectory, StudentRef, UnknownStaff, may_see
from models.timebuckets import day_words

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
    RAISE = "raise"  # staff open a case themselves ("raise a concern"), with a reason
    FOLLOW_UP = "follow_up"  # a follow-up date set (in `until`)


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
    """One stored action. `detail` is the note, the snooze reason, the outcome or a raised concern's
    reason, in staff's words. `alert_id` is the alert the form was on; '' for an action on the
    student's case as a whole (raise a concern, a note outside any alert, a follow-up date)."""

    action_id: str
    alert_id: str
    student_id: str
    kind: ActionKind
    staff_id: str
    at: datetime
    detail: str = ""
    until: date | None = None  # snooze, follow-up
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
    follow_up: date | None = None
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
    if a.kind is ActionKind.FOLLOW_UP:
        status = state.status if state.status is CaseStatus.SNOOZED else active
        return replace(state, status=status, follow_up=a.until, history=history)
    if a.kind is ActionKind.RESOLVE:
        return replace(state, status=CaseStatus.RESOLVED, snoozed_until=None, follow_up=None, history=history)
    return replace(state, status=active, history=history)  # reopen, raise


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


def case_actions(state: CaseState) -> list[ActionKind]:
    """What may be done to a student's case: the alert forms' actions and, while it is open, a
    follow-up date (offered on the case as a whole, not on each alert)."""
    kinds = allowed_actions(state)
    if state.is_open:
        kinds.insert(-1, ActionKind.FOLLOW_UP)
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
    on_alert: str | None = None,
) -> CaseAction:
    """The action to store for a request, or CaseRefused saying why not. `state` is the case acted
    on (a student's case: `Case.state`); `on_alert` the alert the form was on ('' for the case as a
    whole), the state's own alert id when not given."""
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
    if kind is ActionKind.RAISE:
        raise CaseRefused("this student already has a case: add a note to it instead")
    if kind not in case_actions(state):
        raise CaseRefused(f"cannot {kind.value} a case that is {state.status.value}")
    detail = request.detail.strip()
    if len(detail) > MAX_DETAIL:
        raise CaseRefused(f"the text is {len(detail)} characters long; keep it under {MAX_DETAIL}")
    alert_id = state.alert_id if on_alert is None else on_alert
    action = CaseAction(request.action_id, alert_id, student.student_id, kind, viewer.staff_id, now)
    if kind is ActionKind.FOLLOW_UP:
        return replace(action, until=_later_date(request.until, today, "a follow-up"), detail=detail)
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
    return _later_date(text, today, "a snooze")


def _later_date(text: str, today: date, what: str) -> date:
    """A date after today and at most MAX_SNOOZE_DAYS away (a snooze's end, a follow-up)."""
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise CaseRefused(f"{what}: {text!r} is not a date; give a date like 2026-12-01") from None
    if until <= today:
        raise CaseRefused(f"{what} must be after today")
    if (until - today).days > MAX_SNOOZE_DAYS:
        raise CaseRefused(f"{what} may be {MAX_SNOOZE_DAYS} days away at most")
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
    """One line for the report and the case's history: "noted (call) by Dr Helen Park on Tue 3 Nov"
    (dates as every page and report shows them, `day_words`)."""
    names = names or {}
    who = names.get(action.staff_id, action.staff_id)
    when = day_words(action.at.date())
    until = day_words(action.until) if action.until else ""
    what = {
        ActionKind.ACKNOWLEDGE: "acknowledged",
        ActionKind.SNOOZE: f"snoozed until {until} ({action.detail})",
        ActionKind.ASSIGN: f"assigned to {names.get(action.assignee, action.assignee)}",
        ActionKind.NOTE: f"noted ({action.channel})",
        ActionKind.REFER: f"referred to {action.service}",
        ActionKind.OUTCOME: f"outcome from {action.service}: {action.detail}",
        ActionKind.RESOLVE: "resolved",
        ActionKind.REOPEN: "reopened",
        ActionKind.RAISE: "concern raised",
        ActionKind.FOLLOW_UP: f"follow-up set for {until}",
    }[action.kind]
    return f"{what} by {who} on {when}"


# -- a student's cases -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CaseAlert:
    """A concern alert as the cases need it (re_engaged is good news and opens nothing)."""

    alert_id: str
    student_id: str
    rule: str
    raised_on: date

    @property
    def known_at(self) -> datetime:
        """When the alert could first be seen: the day after the day it judged (so an action taken on
        that day comes before it)."""
        return datetime.combine(self.raised_on + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class Case:
    """One episode of concern about a student: opened by an alert or by staff, closed by resolving.

    `state` folds every action on the case (whichever alert's form it came from); `case_id` is
    derived: `case-` and the id of the alert or the raise action that opened it.
    """

    case_id: str
    student_id: str
    opened_at: datetime
    opened_by: str  # '' when LDE opened it with an alert, else the staff id who raised the concern
    reason: str  # the first alert's rule, or the concern raised in staff's words
    alerts: tuple[CaseAlert, ...]
    state: CaseState

    @property
    def is_open(self) -> bool:
        return self.state.is_open

    @property
    def status(self) -> CaseStatus:
        return self.state.status

    @property
    def follow_up(self) -> date | None:
        return self.state.follow_up

    @property
    def last_action(self) -> CaseAction | None:
        return self.state.latest

    @property
    def last_activity(self) -> datetime:
        """The latest of its opening, its alerts and its actions (the caseload sorts by it)."""
        times = [self.opened_at, *(a.known_at for a in self.alerts)]
        if self.state.latest:
            times.append(self.state.latest.at)
        return max(times)

    def owner(self, tutor_id: str) -> str:
        """Who owns it: the last colleague it was given to, else the student's personal tutor."""
        return self.state.assignee or tutor_id


@dataclass(frozen=True)
class StudentCases:
    """A student's cases, oldest first, and the notes recorded while no case was open."""

    student_id: str
    cases: tuple[Case, ...] = ()
    loose_notes: tuple[CaseAction, ...] = ()

    @property
    def current(self) -> Case | None:
        """The open case, if any (there is at most one)."""
        return next((c for c in reversed(self.cases) if c.is_open), None)

    @property
    def latest(self) -> Case | None:
        return self.cases[-1] if self.cases else None

    def holding(self, alert_id: str) -> Case | None:
        """The case an alert belongs to (None for an alert that opens no case)."""
        return next((c for c in self.cases if any(a.alert_id == alert_id for a in c.alerts)), None)


@dataclass
class _Building:
    case_id: str
    opened_at: datetime
    opened_by: str
    reason: str
    alerts: list[CaseAlert]
    state: CaseState

    def freeze(self, student_id: str) -> Case:
        return Case(
            self.case_id,
            student_id,
            self.opened_at,
            self.opened_by,
            self.reason,
            tuple(self.alerts),
            self.state,
        )


def student_cases(
    student_id: str, alerts: Iterable[CaseAlert], actions: Iterable[CaseAction], today: date
) -> StudentCases:
    """A student's cases from their concern alerts and every action on them (any order, repeats
    ignored), as of `today` (a snooze whose date has come is over).

    In time order: an alert joins the open case or opens one; a raised concern opens one when none
    is open (else it is a note on the open one); an action on an alert goes to the case holding the
    alert, one on no alert (or on an alert that opens no case) to the open case, and a note with no
    case open is kept as a loose note. Actions stored per alert before cases existed therefore join
    the student's case through their alert.
    """
    mine_alerts = {a.alert_id: a for a in alerts if a.student_id == student_id}
    mine_actions = _order(a for a in actions if a.student_id == student_id)
    timeline: list[tuple[datetime, int, str, CaseAlert | CaseAction]] = [
        (a.known_at, 0, a.alert_id, a) for a in mine_alerts.values()
    ]
    # an action on an alert comes after the alert, whatever the clocks said (a replay's alerts
    # carry event time, hand-typed actions wall time)
    timeline += [
        (
            max(a.at, mine_alerts[a.alert_id].known_at) if a.alert_id in mine_alerts else a.at,
            1,
            a.action_id,
            a,
        )
        for a in mine_actions
    ]
    timeline.sort(key=lambda item: item[:3])
    built: list[_Building] = []
    by_alert: dict[str, _Building] = {}
    current: _Building | None = None
    loose: list[CaseAction] = []
    for at, _, _, item in timeline:
        if isinstance(item, CaseAlert):
            if current is None:
                current = _Building(f"case-{item.alert_id}", at, "", item.rule, [], CaseState(""))
                built.append(current)
            current.alerts.append(item)
            by_alert[item.alert_id] = current
            continue
        target = by_alert.get(item.alert_id) or current
        if item.kind is ActionKind.RAISE and current is None:
            target = current = _Building(
                f"case-{item.action_id}", at, item.staff_id, item.detail, [], CaseState("")
            )
            built.append(current)
        if target is None:
            if item.kind is ActionKind.NOTE:
                loose.append(item)
            continue
        target.state = _apply(target.state, item)
        if target.state.is_open and current is None:
            current = target  # reopened
        elif not target.state.is_open and target is current:
            current = None
    cases = []
    for b in built:
        state = replace(b.state, alert_id=b.case_id)
        if state.status is CaseStatus.SNOOZED and state.snoozed_until and state.snoozed_until <= today:
            state = replace(state, status=CaseStatus.IN_PROGRESS, snoozed_until=None)
        b.state = state
        cases.append(b.freeze(student_id))
    return StudentCases(student_id, tuple(cases), tuple(loose))


def raise_concern(
    request: CaseRequest, cases: StudentCases, *, viewer: Staff, student: StudentRef, now: datetime
) -> CaseAction:
    """The action that opens a case on staff's own concern, or CaseRefused: only staff who may see
    the student, with a reason, and only while no case is open (then a note on it says the same)."""
    if not may_see(viewer, student):
        raise CaseRefused(f"{viewer.staff_id} may not raise a concern about student {student.student_id}")
    if not _ACTION_ID.match(request.action_id):
        raise CaseRefused("the form has no valid action id: reload the page and try again")
    for case in cases.cases:
        for done in case.state.history:
            if done.action_id == request.action_id:
                return done  # sent twice: the same
    if cases.current is not None:
        raise CaseRefused("this student already has an open case: add a note to it instead")
    reason = request.detail.strip()
    if not reason:
        raise CaseRefused("say what the concern is")
    if len(reason) > MAX_DETAIL:
        raise CaseRefused(f"the text is {len(reason)} characters long; keep it under {MAX_DETAIL}")
    return CaseAction(
        request.action_id, "", student.student_id, ActionKind.RAISE, viewer.staff_id, now, detail=reason
    )


def loose_note(
    request: CaseRequest, cases: StudentCases, *, viewer: Staff, student: StudentRef, now: datetime
) -> CaseAction:
    """A note outside any alert: on the open case when there is one, else kept with the student."""
    if cases.current is not None:
        raise CaseRefused("this student has an open case: add the note to it")
    if not may_see(viewer, student):
        raise CaseRefused(f"{viewer.staff_id} may not write about student {student.student_id}")
    if not _ACTION_ID.match(request.action_id):
        raise CaseRefused("the form has no valid action id: reload the page and try again")
    for done in cases.loose_notes:
        if done.action_id == request.action_id:
            return done
    detail = request.detail.strip()
    if not detail or len(detail) > MAX_DETAIL:
        raise CaseRefused(f"a note needs some text, under {MAX_DETAIL} characters")
    try:
        channel = Channel(request.channel or Channel.OTHER)
    except ValueError:
        raise CaseRefused(f"unknown contact {request.channel!r}: meeting, email, call or other") from None
    return CaseAction(
        request.action_id,
        "",
        student.student_id,
        ActionKind.NOTE,
        viewer.staff_id,
        now,
        detail,
        channel=channel.value,
    )
