"""A case's clock: when it is overdue, when its follow-up is due, and the caseload's counts. Pure.

Nothing expires unseen (issue 27): every call for action on an open case (its opening, each alert
that joins it, a follow-up date or a snooze's end once reached) must be answered by an action within
LDE_CASE_OVERDUE_WORKING_DAYS working days (models.workdays: weekends and closure days not counted),
or the case is overdue and goes up to the next role (models.access.CaseEscalation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from models.cases import ActionKind, Case, CaseStatus, StudentCases
from models.workdays import WorkingCalendar


@dataclass(frozen=True, slots=True)
class OverduePolicy:
    """How long a call for action may wait (LDE_CASE_OVERDUE_WORKING_DAYS) and on which calendar."""

    working_days: int = 3
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)


def awaiting_since(case: Case, today: date) -> date | None:
    """The day the case's latest call for action came, if nobody has acted since; None otherwise.

    A call for action is the case's opening, each alert that joins it, and a follow-up date or a
    snooze's end once reached. An action on or after that day answers it.
    """
    if not case.is_open or case.status is CaseStatus.SNOOZED:
        return None
    calls = [case.opened_at.date(), *(a.known_at.date() for a in case.alerts)]
    ends = [a.until for a in case.state.history if a.kind in _DATED and a.until and a.until <= today]
    calls += ends
    latest_call = max(d for d in calls if d <= today) if any(d <= today for d in calls) else None
    if latest_call is None:
        return None
    last = case.last_action
    if last is not None and last.at.date() >= latest_call:
        return None
    return latest_call


_DATED = frozenset({ActionKind.FOLLOW_UP, ActionKind.SNOOZE})


def is_overdue(case: Case, today: date, policy: OverduePolicy) -> bool:
    """Open, and a call for action has waited more than the policy's working days unanswered: a case
    opened on a Monday with nothing done is overdue on Friday (Tuesday to Thursday passed)."""
    since = awaiting_since(case, today)
    return since is not None and policy.calendar.elapsed(since, today) > policy.working_days


def acted_within(case: Case, working_days: int, calendar: WorkingCalendar) -> bool | None:
    """Whether the first action came within `working_days` of the opening (a raised concern is
    itself one); None while none has come."""
    first = case.state.history[0] if case.state.history else None
    if first is None:
        return None
    return calendar.elapsed(case.opened_at.date(), first.at.date()) <= working_days


def follow_up_due(case: Case, week_end: date) -> bool:
    """An open case whose follow-up date falls by `week_end` with no action since that date."""
    due = case.follow_up
    if not case.is_open or due is None or due > week_end:
        return False
    last = case.last_action
    return last is None or last.at.date() < due


@dataclass(frozen=True, slots=True)
class CaseCounts:
    """The caseload's four counts (issue 27): need action (nobody has acted), in progress (acted on,
    or set aside until a date), overdue (a call for action unanswered too long), follow-up due by the
    end of this week. Overdue cases count under their status as well."""

    need_action: int = 0
    in_progress: int = 0
    overdue: int = 0
    follow_up_due: int = 0


def count_cases(cases: Iterable[Case], today: date, policy: OverduePolicy) -> CaseCounts:
    """The counts of the open cases given (the caller chooses whose: a scope, a desk)."""
    week_end = today + timedelta(days=6 - today.weekday())
    need = progress = overdue = due = 0
    for case in cases:
        if not case.is_open:
            continue
        if case.status is CaseStatus.OPEN:
            need += 1
        else:
            progress += 1
        overdue += is_overdue(case, today, policy)
        due += follow_up_due(case, week_end)
    return CaseCounts(need, progress, overdue, due)


@dataclass(frozen=True, slots=True)
class CaseLine:
    """A student's open case as one row: what the caseload's "Being done" and its counts, sorts and
    exports read (issue 27), computed once per student and cheap to keep in a precomputed view."""

    student_id: str
    case_id: str
    status: CaseStatus
    owner: str
    opened_on: date
    alerts: int
    last_action: str  # the latest action's kind ('' when none yet)
    last_action_by: str
    last_action_on: date | None
    last_activity_on: date
    referrals: tuple[str, ...]  # services referred to and awaiting an outcome
    follow_up: date | None
    awaiting_since: date | None
    overdue: bool


def case_line(cases: StudentCases, tutor_id: str, today: date, policy: OverduePolicy) -> CaseLine | None:
    """The student's open case as a row (None when no case is open)."""
    case = cases.current
    if case is None:
        return None
    last = case.last_action
    return CaseLine(
        student_id=case.student_id,
        case_id=case.case_id,
        status=case.status,
        owner=case.owner(tutor_id),
        opened_on=case.opened_at.date(),
        alerts=len(case.alerts),
        last_action=last.kind.value if last else "",
        last_action_by=last.staff_id if last else "",
        last_action_on=last.at.date() if last else None,
        last_activity_on=case.last_activity.date(),
        referrals=tuple(case.state.pending_referrals),
        follow_up=case.follow_up,
        awaiting_since=awaiting_since(case, today),
        overdue=is_overdue(case, today, policy),
    )


def week_end(today: date) -> date:
    """The Sunday ending today's week (the caseload's "follow-up due this week")."""
    return today + timedelta(days=6 - today.weekday())


def line_follow_up_due(line: CaseLine, week_end: date) -> bool:
    """`follow_up_due` on a case's row: its follow-up date falls by `week_end`, no action since."""
    due = line.follow_up
    if due is None or due > week_end:
        return False
    return line.last_action_on is None or line.last_action_on < due


def count_lines(lines: Iterable[CaseLine], today: date) -> CaseCounts:
    """`count_cases` from the open cases' rows (what a precomputed caseload view keeps): the same
    four counts without the cases' histories."""
    end = week_end(today)
    need = progress = overdue = due = 0
    for line in lines:
        if line.status is CaseStatus.OPEN:
            need += 1
        else:
            progress += 1
        overdue += line.overdue
        due += line_follow_up_due(line, end)
    return CaseCounts(need, progress, overdue, due)


def next_step(line: CaseLine | None, today: date) -> str:
    """What to do next about a student's open case, in a tutor's words (the student page's box)."""
    if line is None:
        return "Nothing is open. If something worries you, raise a concern; a note can be added at any time."
    if line.status is CaseStatus.SNOOZED:
        return "Set aside for now; nothing to do until the date it comes back."
    if line.follow_up is not None and line_follow_up_due(line, today):
        return f"Follow up now: the follow-up date ({line.follow_up:%d %b}) has come."
    if line.overdue:
        return "Overdue: nobody has acted on this case yet. Contact the student and record what you did."
    if line.awaiting_since is not None and line.last_action:
        return "A new alert joined the case since the last action: look at it and record what you did."
    if line.status is CaseStatus.OPEN:
        return "Contact the student (a meeting, an email or a call) and record it."
    if line.referrals:
        return f"Waiting for {', '.join(line.referrals)}: record the outcome when you hear."
    if line.follow_up is not None:
        return f"In progress: follow up by {line.follow_up:%d %b}."
    return "In progress: set a follow-up date, or resolve the case when the student is back on track."
