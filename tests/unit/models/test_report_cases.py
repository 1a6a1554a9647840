"""The weekly report's cases (issue 27.5): an open case reappears every Monday until resolved, overdue
cases and follow-ups due stand out and come first; every bar of a report is on one scale."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from models.case_clock import OverduePolicy
from models.cases import ActionKind, CaseAction, CaseAlert
from models.report_cases import CaseTotals, ReportCase, case_totals, cases_as_of, reader_week_end, report_case
from models.reports import (
    TREND_WEEKS,
    GroupWeek,
    StudentWeek,
    nice_ceiling,
    order_by_concern,
    report_scale,
)
from models.workdays import WorkingCalendar

SID = "900412771"
POLICY = OverduePolicy(3, WorkingCalendar())
NAMES = {"S1042": "Dr Helen Park", "S2210": "Dr Sam Okafor"}
WEEK = date(2026, 11, 16)  # the reported week: Monday 16 to Sunday 22 November
SUNDAY = date(2026, 11, 22)


def at(d: int) -> datetime:
    return datetime(2026, 11, d, 10, tzinfo=UTC)


def action(i: int, d: int, kind: ActionKind, **fields: object) -> CaseAction:
    return CaseAction(f"action-{i:04d}", "", SID, kind, "S1042", at(d), **fields)  # type: ignore[arg-type]


ALERT = CaseAlert("alert-9", SID, "no_engagement", date(2026, 11, 9))


def case_for(actions: list[CaseAction], alerts: list[CaseAlert] | None = None) -> ReportCase:
    cases = cases_as_of(SID, alerts if alerts is not None else [ALERT], actions, SUNDAY)
    assert cases.current is not None
    return report_case(cases.current, "S1042", NAMES, SUNDAY, reader_week_end(WEEK), POLICY)


def test_an_untouched_case_is_overdue_and_says_since_when() -> None:
    case = case_for([])
    assert case.overdue and case.awaiting_since == date(2026, 11, 10) and case.needs_action
    assert case.owner == "Dr Helen Park" and case.status == "open" and case.alerts == 1
    assert case.words() == (
        "Case open since Tue 10 Nov (open; owner Dr Helen Park); OVERDUE: waiting for action since "
        "Tue 10 Nov; no action yet."
    )


def test_a_case_in_progress_with_a_follow_up_due_in_the_readers_week() -> None:
    case = case_for(
        [
            action(1, 11, ActionKind.NOTE, channel="meeting", detail="met"),
            action(2, 11, ActionKind.REFER, service="wellbeing"),
            action(3, 11, ActionKind.FOLLOW_UP, until=date(2026, 11, 26)),
        ]
    )
    assert not case.overdue and case.awaiting_since is None and case.status == "in progress"
    assert case.follow_up == date(2026, 11, 26) and case.follow_up_due and case.needs_action
    assert "follow-up DUE Thu 26 Nov" in case.words()
    assert "last action: follow-up set for Thu 26 Nov by Dr Helen Park on Wed 11 Nov" in case.words()


def test_a_follow_up_after_the_readers_week_and_an_answered_case_need_nothing() -> None:
    later = case_for(
        [action(1, 11, ActionKind.ACKNOWLEDGE), action(2, 11, ActionKind.FOLLOW_UP, until=date(2026, 12, 7))]
    )
    assert not later.needs_action and "follow-up Mon 7 Dec" in later.words()
    assert "DUE" not in later.words()


def test_a_joining_alert_unanswered_waits_but_is_not_yet_overdue() -> None:
    joined = CaseAlert("alert-19", SID, "low_attendance", date(2026, 11, 19))
    case = case_for([action(1, 11, ActionKind.ACKNOWLEDGE)], [ALERT, joined])
    assert case.awaiting_since == date(2026, 11, 20) and not case.overdue and case.alerts == 2
    assert "awaiting action since Fri 20 Nov" in case.words()


def test_later_alerts_and_actions_are_left_out_of_a_past_weeks_report() -> None:
    resolved_later = cases_as_of(SID, [ALERT], [action(1, 24, ActionKind.RESOLVE)], SUNDAY)
    assert resolved_later.current is not None  # it was open at the end of that week
    nothing_yet = cases_as_of(SID, [CaseAlert("a", SID, "no_engagement", date(2026, 11, 23))], [], SUNDAY)
    assert nothing_yet.current is None
    resolved = cases_as_of(SID, [ALERT], [action(1, 12, ActionKind.RESOLVE)], SUNDAY)
    assert resolved.current is None


def test_counts_of_the_open_cases() -> None:
    overdue = case_for([])
    fine = case_for([action(1, 11, ActionKind.ACKNOWLEDGE)])
    due = case_for([action(1, 11, ActionKind.FOLLOW_UP, until=date(2026, 11, 23))])
    assert case_totals([overdue, fine, due, None]) == CaseTotals(3, 1, 1, 1)
    assert case_totals([]) == CaseTotals()


def student(sid: str, band: str, alerts: int = 0, trend: int = 5, vle: int = 5) -> StudentWeek:
    from models.reports import AlertLine

    return StudentWeek(
        student_id=sid,
        name=sid,
        programme_code="CS",
        programme_name="CS",
        school="C",
        year_of_study=1,
        mode="FT",
        personal_tutor_id="S1042",
        band=band,
        score=50.0,
        week={"vle": vle, "attendance": 2},
        attended=1,
        trend=(trend,) * TREND_WEEKS,
        alerts=tuple(AlertLine(date(2026, 11, 17), "no_engagement", "x") for _ in range(alerts)),
        group="g",
    )


def test_overdue_cases_come_first_then_cases_needing_action_then_this_weeks_alerts() -> None:
    alert = student("alerted", "None", alerts=1)
    overdue = replace(student("overdue", "High"), case=case_for([]))
    due = replace(
        student("due", "Good"), case=case_for([action(1, 11, ActionKind.FOLLOW_UP, until=date(2026, 11, 23))])
    )
    quiet = replace(student("quiet", "Low"), case=case_for([action(1, 11, ActionKind.ACKNOWLEDGE)]))
    order = [s.student_id for s in order_by_concern([quiet, alert, due, overdue])]
    assert order == ["overdue", "due", "alerted", "quiet"]


def test_one_scale_for_every_row_of_a_report() -> None:
    small, big = student("a", "Good", trend=42, vle=3), student("b", "Good", trend=119, vle=17)
    group = GroupWeek("g", "cohort", 12, {"vle": 9.5}, 0.5, (130.0,) * TREND_WEEKS)
    scale = report_scale([small, big], {"g": group})
    assert scale.trend == 200 and scale.source("vle") == 20 and scale.source("attendance") == 1.0
    assert scale.source("library") == 1.0  # nobody used it: any scale draws nothing
    assert report_scale([small], {}).trend == 50  # the group is only what the report holds
    assert [nice_ceiling(v) for v in (0, 1, 1.5, 2.2, 3, 7, 10, 42, 119, 250, 251)] == [
        1,
        1,
        2,
        2.5,
        5,
        10,
        10,
        50,
        200,
        250,
        500,
    ]
