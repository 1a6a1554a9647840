"""Alert triage: the case's state from its actions, what may be done next, and who may be given it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from models.access import Grant, Role, Staff, StaffDirectory
from models.cases import (
    MAX_DETAIL,
    ActionKind,
    CaseAction,
    CaseAlert,
    CaseRefused,
    CaseRequest,
    CaseState,
    CaseStatus,
    allowed_actions,
    assignable,
    case_actions,
    case_state,
    decide,
    describe,
    loose_note,
    raise_concern,
    student_cases,
)

TODAY = date(2026, 11, 10)
NOW = datetime(2026, 11, 10, 9, 30, tzinfo=UTC)
SERVICES = ("wellbeing", "disability", "money advice", "academic skills")


@dataclass(frozen=True)
class Student:
    student_id: str = "900412771"
    personal_tutor_id: str = "S1042"
    programme_code: str = "BSC-CS"
    school: str = "Computing"


TUTOR = Staff("S1042", "Dr Helen Park", "h@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
OTHER_TUTOR = Staff("S2210", "Dr Owen Hughes", "o@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
LEADER = Staff("S1001", "Prof Ian Mercer", "i@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-CS"),))
OTHER_LEADER = Staff("S2001", "Dr Ruth Ellis", "r@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-PSY"),))
OFFICER = Staff("S9001", "Jo Marsh", "j@x.ac.uk", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),))
DIRECTORY = StaffDirectory([TUTOR, OTHER_TUTOR, LEADER, OTHER_LEADER, OFFICER])


def act(kind: ActionKind, n: int, **fields: object) -> CaseAction:
    values: dict[str, object] = {"staff_id": "S1042", "at": NOW + timedelta(minutes=n)}
    values.update(fields)
    return CaseAction(f"action-{n:04d}", "alert-1", "900412771", kind, **values)  # type: ignore[arg-type]


def run(request: CaseRequest, state: CaseState | None = None, viewer: Staff = TUTOR) -> CaseAction:
    return decide(
        request,
        state or CaseState("alert-1"),
        viewer=viewer,
        student=Student(),
        directory=DIRECTORY,
        services=SERVICES,
        now=NOW,
        today=TODAY,
    )


def test_a_case_with_no_actions_is_open_and_offers_acknowledge_first() -> None:
    state = case_state("alert-1", [], TODAY)
    assert state.status is CaseStatus.OPEN
    assert state.latest is None
    assert allowed_actions(state)[0] is ActionKind.ACKNOWLEDGE
    assert ActionKind.OUTCOME not in allowed_actions(state)  # nothing referred yet
    assert ActionKind.REOPEN not in allowed_actions(state)


def test_a_full_round_acknowledge_note_referral_outcome_resolved() -> None:
    actions = [
        act(ActionKind.ACKNOWLEDGE, 1),
        act(ActionKind.NOTE, 2, channel="meeting", detail="met in office hours"),
        act(ActionKind.REFER, 3, service="wellbeing"),
        act(ActionKind.OUTCOME, 4, service="wellbeing", detail="seen by the wellbeing team"),
        act(ActionKind.RESOLVE, 5),
    ]
    state = case_state("alert-1", reversed(actions), TODAY)  # stored order does not matter
    assert state.status is CaseStatus.RESOLVED
    assert state.acknowledged_by == "S1042"
    assert state.last_note is not None and state.last_note.detail == "met in office hours"
    assert state.referrals[0].outcome == "seen by the wellbeing team"
    assert state.pending_referrals == []
    assert [a.kind for a in state.history] == [a.kind for a in actions]
    assert allowed_actions(state) == [ActionKind.REOPEN]


def test_repeated_actions_count_once_and_other_alerts_are_ignored() -> None:
    ack = act(ActionKind.ACKNOWLEDGE, 1)
    other = CaseAction("action-9999", "alert-2", "900412771", ActionKind.RESOLVE, "S1042", NOW)
    state = case_state("alert-1", [ack, ack, other], TODAY)
    assert len(state.history) == 1
    assert state.status is CaseStatus.IN_PROGRESS


def test_a_snooze_holds_until_its_date_then_the_case_is_back_in_progress() -> None:
    snooze = act(ActionKind.SNOOZE, 1, until=TODAY + timedelta(days=7), detail="reading week")
    assert case_state("alert-1", [snooze], TODAY).status is CaseStatus.SNOOZED
    assert case_state("alert-1", [snooze], TODAY + timedelta(days=6)).snooze_reason == "reading week"
    later = case_state("alert-1", [snooze], TODAY + timedelta(days=7))
    assert later.status is CaseStatus.IN_PROGRESS
    assert later.snoozed_until is None


def test_a_snoozed_case_offers_no_second_snooze_and_a_note_keeps_it_snoozed() -> None:
    snooze = act(ActionKind.SNOOZE, 1, until=TODAY + timedelta(days=7), detail="reading week")
    note = act(ActionKind.NOTE, 2, channel="email", detail="emailed")
    state = case_state("alert-1", [snooze, note], TODAY)
    assert state.status is CaseStatus.SNOOZED
    assert ActionKind.SNOOZE not in allowed_actions(state)


def test_reopen_brings_a_resolved_case_back() -> None:
    state = case_state("alert-1", [act(ActionKind.RESOLVE, 1), act(ActionKind.REOPEN, 2)], TODAY)
    assert state.status is CaseStatus.IN_PROGRESS
    assert ActionKind.RESOLVE in allowed_actions(state)


def test_decide_keeps_who_when_and_the_fields_of_each_kind() -> None:
    note = run(CaseRequest("form-0001", "note", detail=" phoned ", channel="call"))
    assert (note.kind, note.staff_id, note.at, note.detail, note.channel) == (
        ActionKind.NOTE,
        "S1042",
        NOW,
        "phoned",
        "call",
    )
    snooze = run(CaseRequest("form-0002", "snooze", detail="placement", until="2026-11-20"))
    assert snooze.until == date(2026, 11, 20)
    refer = run(CaseRequest("form-0003", "refer", service="money advice"))
    assert refer.service == "money advice"


def test_a_form_sent_twice_gives_the_stored_action_back() -> None:
    first = run(CaseRequest("form-0001", "acknowledge"))
    state = case_state("alert-1", [first], TODAY)
    again = decide(
        CaseRequest("form-0001", "acknowledge"),
        state,
        viewer=TUTOR,
        student=Student(),
        directory=DIRECTORY,
        services=SERVICES,
        now=NOW + timedelta(seconds=5),
        today=TODAY,
    )
    assert again == first


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (CaseRequest("bad", "acknowledge"), "action id"),
        (CaseRequest("form-0001", "delete"), "unknown action"),
        (CaseRequest("form-0001", "outcome", service="wellbeing", detail="x"), "cannot outcome"),
        (CaseRequest("form-0001", "snooze", detail="x", until="next week"), "give a date"),
        (CaseRequest("form-0001", "snooze", detail="x", until="2026-11-10"), "after today"),
        (CaseRequest("form-0001", "snooze", detail="x", until="2027-06-01"), "at most"),
        (CaseRequest("form-0001", "snooze", until="2026-11-20"), "needs a reason"),
        (CaseRequest("form-0001", "note", detail=""), "needs some text"),
        (CaseRequest("form-0001", "note", detail="x", channel="fax"), "unknown contact"),
        (CaseRequest("form-0001", "note", detail="x" * (MAX_DETAIL + 1)), "under"),
        (CaseRequest("form-0001", "refer", service="astrology"), "unknown support service"),
        (CaseRequest("form-0001", "assign", assignee="S0000"), "no colleague"),
        (CaseRequest("form-0001", "assign", assignee="S2210"), "may not see"),
        (CaseRequest("form-0001", "assign", assignee="S2001"), "may not see"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(request_: CaseRequest, reason: str) -> None:
    with pytest.raises(CaseRefused, match=reason):
        run(request_)


def test_staff_outside_the_students_scope_may_not_act() -> None:
    with pytest.raises(CaseRefused, match="may not act"):
        run(CaseRequest("form-0001", "acknowledge"), viewer=OTHER_TUTOR)
    assert run(CaseRequest("form-0001", "acknowledge"), viewer=OFFICER).staff_id == "S9001"


def test_an_outcome_needs_a_pending_referral_to_that_service() -> None:
    state = case_state("alert-1", [act(ActionKind.REFER, 1, service="wellbeing")], TODAY)
    with pytest.raises(CaseRefused, match="no referral to 'disability'"):
        run(CaseRequest("form-0001", "outcome", service="disability", detail="x"), state)
    outcome = run(CaseRequest("form-0001", "outcome", service="wellbeing", detail="seen"), state)
    assert outcome.service == "wellbeing"


def test_a_resolved_case_refuses_everything_but_reopen() -> None:
    state = case_state("alert-1", [act(ActionKind.RESOLVE, 1)], TODAY)
    with pytest.raises(CaseRefused, match="resolved"):
        run(CaseRequest("form-0001", "note", detail="x"), state)
    assert run(CaseRequest("form-0001", "reopen"), state).kind is ActionKind.REOPEN


def test_the_alert_goes_only_to_colleagues_who_may_see_the_student() -> None:
    ids = [s.staff_id for s in assignable(Student(), DIRECTORY)]
    assert ids == ["S1001", "S1042", "S9001"]
    assert run(CaseRequest("form-0001", "assign", assignee="S1001")).assignee == "S1001"


def test_describe_names_the_person_and_the_day() -> None:
    names = {"S1042": "Dr Helen Park", "S1001": "Prof Ian Mercer"}
    assert describe(act(ActionKind.ACKNOWLEDGE, 1), names) == "acknowledged by Dr Helen Park on Tue 10 Nov"
    assert describe(act(ActionKind.ASSIGN, 1, assignee="S1001"), names).startswith(
        "assigned to Prof Ian Mercer"
    )
    assert describe(act(ActionKind.NOTE, 1, channel="call", detail="x")).startswith("noted (call) by S1042")


# -- a student's cases (issue 27) --------------------------------------------------------------------
SID = "900412771"


def alert(n: int, raised_on: date, rule: str = "no_engagement") -> CaseAlert:
    return CaseAlert(f"alert-{n}", SID, rule, raised_on)


def on(alert_id: str, kind: ActionKind, at: datetime, n: int, **fields: object) -> CaseAction:
    values: dict[str, object] = {"staff_id": "S1042", "at": at}
    values.update(fields)
    return CaseAction(f"action-{n:04d}", alert_id, SID, kind, **values)  # type: ignore[arg-type]


def day(d: int, hour: int = 10) -> datetime:
    return datetime(2026, 11, d, hour, tzinfo=UTC)


def test_alerts_while_a_case_is_open_join_it_and_resolving_closes_it() -> None:
    alerts = [
        alert(1, date(2026, 11, 2)),
        alert(2, date(2026, 11, 4), "escalation"),
        alert(3, date(2026, 11, 9)),
    ]
    actions = [
        on("alert-1", ActionKind.ACKNOWLEDGE, day(3), 1),
        on("alert-2", ActionKind.REFER, day(5), 2, service="wellbeing"),
        on("alert-1", ActionKind.RESOLVE, day(6), 3),
    ]
    result = student_cases(SID, reversed(alerts), actions, TODAY)
    first, second = result.cases
    assert [a.alert_id for a in first.alerts] == ["alert-1", "alert-2"]
    assert first.case_id == "case-alert-1" and first.status is CaseStatus.RESOLVED
    assert first.state.referrals[0].service == "wellbeing"  # an action on alert 2 is on the same case
    assert [a.alert_id for a in second.alerts] == ["alert-3"]  # after resolution: a new case
    assert second.status is CaseStatus.OPEN
    assert result.current == second
    assert result.holding("alert-2") == first
    assert result.holding("alert-9") is None


def test_actions_stored_per_alert_before_cases_join_the_students_case() -> None:
    """Issue 27's complaint: a full round on one alert left the others 'no action yet'."""
    alerts = [alert(1, date(2026, 11, 2)), alert(2, date(2026, 11, 2), "low_attendance")]
    actions = [
        on("alert-1", ActionKind.ACKNOWLEDGE, day(3), 1),
        on("alert-1", ActionKind.NOTE, day(3, 11), 2, channel="meeting", detail="met"),
    ]
    (case,) = student_cases(SID, alerts, actions, TODAY).cases
    assert case.status is CaseStatus.IN_PROGRESS
    assert len(case.alerts) == 2


def test_staff_raise_a_concern_and_a_note_without_a_case_is_kept_apart() -> None:
    note = on("", ActionKind.NOTE, day(2), 1, channel="call", detail="sounded low")
    raised = on("", ActionKind.RAISE, day(3), 2, detail="told me they may withdraw", staff_id="S1001")
    later_alert = alert(5, date(2026, 11, 4))
    follow = on("", ActionKind.FOLLOW_UP, day(5), 3, until=date(2026, 11, 12))
    result = student_cases(SID, [later_alert], [follow, raised, note], TODAY)
    (case,) = result.cases
    assert result.loose_notes == (note,)
    assert (case.case_id, case.opened_by, case.reason) == (
        "case-action-0002",
        "S1001",
        "told me they may withdraw",
    )
    assert case.alerts == (later_alert,)  # the alert joins the raised case
    assert case.follow_up == date(2026, 11, 12)
    assert case.status is CaseStatus.IN_PROGRESS
    assert case.owner("S1042") == "S1042"


def test_an_action_on_an_alert_comes_after_the_alert_whatever_the_clocks_say() -> None:
    """A replay's alerts carry event time; an action typed before it (wall clock) still joins."""
    early = on("alert-1", ActionKind.ACKNOWLEDGE, datetime(2026, 1, 1, tzinfo=UTC), 1)
    (case,) = student_cases(SID, [alert(1, date(2026, 11, 2))], [early], TODAY).cases
    assert case.status is CaseStatus.IN_PROGRESS


def test_owner_changes_and_reopening_makes_the_case_current_again() -> None:
    actions = [
        on("alert-1", ActionKind.ASSIGN, day(3), 1, assignee="S1001"),
        on("alert-1", ActionKind.RESOLVE, day(4), 2),
        on("alert-1", ActionKind.REOPEN, day(5), 3),
    ]
    result = student_cases(SID, [alert(1, date(2026, 11, 2))], actions, TODAY)
    assert result.current is not None and result.current.owner("S1042") == "S1001"


def test_a_follow_up_needs_a_later_date_and_is_offered_on_open_cases_only() -> None:
    state = CaseState("case-alert-1")
    done = run(CaseRequest("form-0001", "follow_up", until="2026-11-17"), state)
    assert (done.kind, done.until) == (ActionKind.FOLLOW_UP, date(2026, 11, 17))
    assert ActionKind.FOLLOW_UP in case_actions(state)
    assert ActionKind.FOLLOW_UP not in allowed_actions(state)  # not on each alert's forms
    with pytest.raises(CaseRefused, match="after today"):
        run(CaseRequest("form-0002", "follow_up", until="2026-11-01"), state)
    with pytest.raises(CaseRefused, match="already has a case"):
        run(CaseRequest("form-0003", "raise", detail="x"), state)
    resolved = case_state("alert-1", [act(ActionKind.RESOLVE, 1)], TODAY)
    assert ActionKind.FOLLOW_UP not in case_actions(resolved)


def test_decide_on_a_case_names_the_alert_the_form_was_on() -> None:
    done = decide(
        CaseRequest("form-0001", "acknowledge"),
        CaseState("case-alert-1"),
        viewer=TUTOR,
        student=Student(),
        directory=DIRECTORY,
        services=SERVICES,
        now=NOW,
        today=TODAY,
        on_alert="alert-2",
    )
    assert done.alert_id == "alert-2"


@pytest.mark.parametrize(
    ("request_", "open_case", "viewer", "reason"),
    [
        (CaseRequest("form-0001", "raise", detail="worried"), True, TUTOR, "already has an open case"),
        (CaseRequest("form-0001", "raise", detail=" "), False, TUTOR, "say what the concern is"),
        (CaseRequest("form-0001", "raise", detail="worried"), False, OTHER_TUTOR, "may not raise"),
        (CaseRequest("x", "raise", detail="worried"), False, TUTOR, "action id"),
        (CaseRequest("form-0001", "raise", detail="x" * (MAX_DETAIL + 1)), False, TUTOR, "under"),
    ],
)
def test_raising_a_concern_is_refused_with_a_reason(
    request_: CaseRequest, open_case: bool, viewer: Staff, reason: str
) -> None:
    cases = student_cases(SID, [alert(1, date(2026, 11, 2))] if open_case else [], [], TODAY)
    with pytest.raises(CaseRefused, match=reason):
        raise_concern(request_, cases, viewer=viewer, student=Student(), now=NOW)


def test_raising_a_concern_twice_gives_the_stored_action_back() -> None:
    empty = student_cases(SID, [], [], TODAY)
    first = raise_concern(
        CaseRequest("form-0001", "raise", detail="worried"), empty, viewer=TUTOR, student=Student(), now=NOW
    )
    assert (first.kind, first.alert_id, first.detail) == (ActionKind.RAISE, "", "worried")
    stored = student_cases(SID, [], [first], TODAY)
    again = raise_concern(
        CaseRequest("form-0001", "raise", detail="worried"), stored, viewer=TUTOR, student=Student(), now=NOW
    )
    assert again == first


@pytest.mark.parametrize(
    ("request_", "open_case", "reason"),
    [
        (CaseRequest("form-0001", "note", detail="met"), True, "add the note to it"),
        (CaseRequest("form-0001", "note", detail=""), False, "needs some text"),
        (CaseRequest("form-0001", "note", detail="x", channel="fax"), False, "unknown contact"),
        (CaseRequest("bad", "note", detail="x"), False, "action id"),
    ],
)
def test_a_note_outside_any_alert_is_refused_with_a_reason(
    request_: CaseRequest, open_case: bool, reason: str
) -> None:
    cases = student_cases(SID, [alert(1, date(2026, 11, 2))] if open_case else [], [], TODAY)
    with pytest.raises(CaseRefused, match=reason):
        loose_note(request_, cases, viewer=TUTOR, student=Student(), now=NOW)


def test_a_note_outside_any_alert_is_kept_with_the_student() -> None:
    done = loose_note(
        CaseRequest("form-0001", "note", detail="met", channel="meeting"),
        student_cases(SID, [], [], TODAY),
        viewer=TUTOR,
        student=Student(),
        now=NOW,
    )
    assert (done.alert_id, done.channel) == ("", "meeting")
    with pytest.raises(CaseRefused, match="may not write"):
        loose_note(
            CaseRequest("form-0001", "note", detail="met"),
            student_cases(SID, [], [], TODAY),
            viewer=OTHER_TUTOR,
            student=Student(),
            now=NOW,
        )


def test_describe_says_meetings_raised_concerns_and_follow_ups() -> None:
    assert describe(act(ActionKind.NOTE, 1, channel="meeting", detail="x")).startswith("noted (meeting) by")
    assert describe(act(ActionKind.RAISE, 1, detail="x")).startswith("concern raised by S1042")
    assert describe(act(ActionKind.FOLLOW_UP, 1, until=date(2026, 11, 20))).startswith(
        "follow-up set for Fri 20 Nov"
    )
