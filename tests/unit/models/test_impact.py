"""The programme impact summary: cases opened, time to first action, acted on within three working
days, re-engaged within 14 days of the first contact; small groups suppressed, counts rounded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from models.cases import ActionKind, Case, CaseAction, CaseAlert, student_cases
from models.impact import first_contact, impact_summary
from models.workdays import WorkingCalendar

MONDAY = date(2026, 11, 2)
CAL = WorkingCalendar()


def case(n: int, acted_after_days: int | None, channel: str = "meeting") -> Case:
    sid = f"9000000{n:02d}"
    alert = CaseAlert(f"alert-{n}", sid, "no_engagement", MONDAY - timedelta(days=1))  # known Monday
    actions = []
    if acted_after_days is not None:
        at = datetime.combine(MONDAY + timedelta(days=acted_after_days), datetime.min.time(), UTC)
        actions.append(
            CaseAction(
                f"action-{n:04d}", alert.alert_id, sid, ActionKind.NOTE, "S1", at, "x", channel=channel
            )
        )
    return student_cases(sid, [alert], actions, MONDAY + timedelta(days=30)).cases[0]


def test_figures_over_ten_cases() -> None:
    # acted on after 1, 1, 2, 2, 3 working days (Tue, Tue, Wed, Wed, Thu), 4 (Fri), 7 days (Mon: 5)
    cases = [case(i, d) for i, d in enumerate([1, 1, 2, 2, 3, 4, 7, 1, 2])] + [case(9, None)]
    back = {"900000000": [MONDAY + timedelta(days=10)], "900000001": [MONDAY + timedelta(days=30)]}
    summary = impact_summary(
        "BSC-CS", cases, back, CAL, MONDAY - timedelta(days=7), MONDAY + timedelta(days=6)
    )
    assert summary.cases_opened == 10
    assert summary.median_working_days_to_first_action == 2.0
    assert summary.share_acted_within_3_working_days == 0.7  # 7 of 10 (one never acted on)
    assert summary.share_re_engaged_within_14_days == round(1 / 9, 3)  # of the 9 contacted


def test_small_groups_are_suppressed_and_counts_rounded() -> None:
    cases = [case(i, 1) for i in range(4)]
    summary = impact_summary("BA-ART", cases, {}, CAL, MONDAY, MONDAY + timedelta(days=6))
    assert summary.cases_opened == 5  # 4 rounded to the nearest 5
    assert summary.median_working_days_to_first_action is None
    assert summary.share_acted_within_3_working_days is None
    assert summary.share_re_engaged_within_14_days is None


def test_only_cases_opened_in_the_period_count_and_only_real_contacts() -> None:
    cases = [case(i, 1) for i in range(10)]
    assert (
        impact_summary(
            "X", cases, {}, CAL, MONDAY + timedelta(days=1), MONDAY + timedelta(days=6)
        ).cases_opened
        == 0
    )
    assert first_contact(case(1, 1, channel="other")) is None
    assert first_contact(case(1, 1, channel="call")) == MONDAY + timedelta(days=1)
