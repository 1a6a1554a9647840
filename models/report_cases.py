"""A student's open case as the weekly report shows it (issue 27): so that an open case reappears
every Monday until it is resolved, and overdue cases and follow-ups due stand out. Pure: no I/O.

The report judges each case as it stood at the end of the reported week (`as_of`: the Sunday), by
the same clock as the caseload (models.case_clock), and names the follow-ups due by the end of the
week in which the report is read (`due_by`: the Sunday after).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from models.case_clock import OverduePolicy, awaiting_since, follow_up_due, is_overdue
from models.cases import Case, CaseAction, CaseAlert, StudentCases, describe, student_cases
from models.timebuckets import day_words


@dataclass(frozen=True, slots=True)
class ReportCase:
    """One open case: since when, in what state, whose, what was last done, and what is due."""

    opened_on: date
    status: str  # models.cases.CaseStatus value: open, in progress, snoozed
    owner: str  # a name (the staff id when the directory has none)
    alerts: int
    last_action: str  # models.cases.describe of the latest action; '' when nobody has acted
    follow_up: date | None
    awaiting_since: date | None  # a call for action unanswered since that day
    overdue: bool
    follow_up_due: bool  # the follow-up date falls by the end of the reader's week, unanswered

    @property
    def needs_action(self) -> bool:
        """Overdue, awaiting an action, or a follow-up due: what the report's case list holds."""
        return self.overdue or self.awaiting_since is not None or self.follow_up_due

    def words(self) -> str:
        """The case in one sentence, whole (never cut): state, what is due, what was done last; days
        as the pages show them ("Thu 26 Nov")."""
        parts = [f"Case open since {day_words(self.opened_on)} ({self.status}; owner {self.owner})"]
        if self.overdue and self.awaiting_since is not None:
            parts.append(f"OVERDUE: waiting for action since {day_words(self.awaiting_since)}")
        elif self.awaiting_since is not None:
            parts.append(f"awaiting action since {day_words(self.awaiting_since)}")
        if self.follow_up is not None:
            due = "follow-up DUE" if self.follow_up_due else "follow-up"
            parts.append(f"{due} {day_words(self.follow_up)}")
        parts.append(f"last action: {self.last_action}" if self.last_action else "no action yet")
        return "; ".join(parts) + "."


def report_case(
    case: Case, tutor_id: str, names: Mapping[str, str], as_of: date, due_by: date, policy: OverduePolicy
) -> ReportCase:
    """The report's view of one open case."""
    last = case.last_action
    owner = case.owner(tutor_id)
    return ReportCase(
        opened_on=case.opened_at.date(),
        status=case.status.value,
        owner=names.get(owner, owner),
        alerts=len(case.alerts),
        last_action=describe(last, dict(names)) if last is not None else "",
        follow_up=case.follow_up,
        awaiting_since=awaiting_since(case, as_of),
        overdue=is_overdue(case, as_of, policy),
        follow_up_due=follow_up_due(case, due_by),
    )


def cases_as_of(
    student_id: str, alerts: Iterable[CaseAlert], actions: Iterable[CaseAction], as_of: date
) -> StudentCases:
    """The student's cases as they stood at the end of `as_of`: alerts raised and actions taken later
    are left out, so a report of a past week says what its readers would have read then."""
    return student_cases(
        student_id,
        [a for a in alerts if a.raised_on <= as_of],
        [a for a in actions if a.at.date() <= as_of],
        as_of,
    )


def reader_week_end(week_start: date) -> date:
    """The Sunday of the week after the reported one: the week in which its Monday report is read."""
    return week_start + timedelta(days=13)


@dataclass(frozen=True, slots=True)
class CaseTotals:
    """The report's case counts: open cases, awaiting action, overdue, follow-ups due."""

    open: int = 0
    awaiting_action: int = 0
    overdue: int = 0
    follow_up_due: int = 0


def case_totals(cases: Sequence[ReportCase | None]) -> CaseTotals:
    """The counts over the open cases given (None: a student with no open case)."""
    shown = [c for c in cases if c is not None]
    return CaseTotals(
        len(shown),
        sum(c.awaiting_since is not None for c in shown),
        sum(c.overdue for c in shown),
        sum(c.follow_up_due for c in shown),
    )
