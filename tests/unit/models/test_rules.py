"""The no_engagement rule, its exemptions, and the evaluator's once-per-episode sweep."""

import uuid
from datetime import date, timedelta

import pytest

from models.activity import StudentActivity
from models.alerts import ALERT_NAMESPACE, Rule, alert_id
from models.evaluation import PartitionProgress, next_days_to_evaluate
from models.roster import Absence
from models.rules import RuleSettings, days_away, exempt, no_engagement
from streams.evaluator import Evaluator, StudentView
from tests.factories import TERM_START, roster_record

RULES = RuleSettings(no_engagement_days=7, start_exemption_days=14)
START = TERM_START


student = roster_record


def test_last_activity_on_d_alerts_on_d_plus_7() -> None:
    last = date(2026, 10, 12)
    assert no_engagement(student(), [], last, last + timedelta(days=6), RULES) is None
    alert = no_engagement(student(), [], last, last + timedelta(days=7), RULES)
    assert alert is not None
    assert alert.raised_on == date(2026, 10, 19)
    assert alert.episode_start == date(2026, 10, 13)
    assert alert.days_silent == 7
    assert alert.last_active_on == last
    assert "last active on Monday 12 October 2026" in alert.explanation
    assert alert.alert_id == alert_id("s1", Rule.NO_ENGAGEMENT, date(2026, 10, 13))


@pytest.mark.parametrize("about", [None, Rule.LOW_ATTENDANCE])
@pytest.mark.parametrize("student_id", ["s1", "S0012345", "étudiant-7"])
def test_alert_id_is_the_uuid5_of_student_rule_and_episode(student_id: str, about: Rule | None) -> None:
    """Ids already stored and announced must never change: alert_id is uuid5 computed by hand."""
    suffix = f"|{about.value}" if about else ""
    name = f"{student_id}|escalation|2026-10-13{suffix}"
    expected = str(uuid.uuid5(ALERT_NAMESPACE, name))
    assert alert_id(student_id, Rule.ESCALATION, date(2026, 10, 13), about) == expected


def test_never_active_student_alerted_on_first_day_after_exemption() -> None:
    assert no_engagement(student(), [], None, START + timedelta(days=13), RULES) is None
    alert = no_engagement(student(), [], None, START + timedelta(days=14), RULES)
    assert alert is not None
    assert alert.raised_on == date(2026, 10, 5)
    assert "since the course started" in alert.explanation


def test_continuing_student_silence_counts_from_monitoring_start() -> None:
    record = student(start_date=date(2024, 9, 23), year_of_study=3)
    monitoring = date(2026, 9, 21)
    assert no_engagement(record, [], None, monitoring + timedelta(days=5), RULES, monitoring) is None
    alert = no_engagement(record, [], None, monitoring + timedelta(days=6), RULES, monitoring)
    assert alert is not None
    assert alert.episode_start == monitoring
    assert "since monitoring began" in alert.explanation


@pytest.mark.parametrize(
    ("changes", "absences", "reason"),
    [
        ({"status": "withdrawn"}, [], "status is withdrawn"),
        ({"status": "interrupted"}, [], "status is interrupted"),
        ({"leave_date": date(2026, 10, 1)}, [], "has left"),
        (
            {},
            [
                Absence(
                    student_id="s1",
                    from_date=date(2026, 10, 10),
                    to_date=date(2026, 11, 1),
                    reason="placement",
                )
            ],
            "approved placement",
        ),
    ],
)
def test_exemptions_stop_alerts(changes: dict, absences: list[Absence], reason: str) -> None:
    day = date(2026, 10, 20)
    assert exempt(student(**changes), absences, day, RULES) == reason
    assert no_engagement(student(**changes), absences, None, day, RULES) is None


def test_evaluator_raises_each_episode_once_and_includes_silent_students() -> None:
    active = StudentActivity(
        last_active=date(2026, 10, 19).toordinal(),
        days={date(2026, 10, d).toordinal(): [1, 0, 0, 0, 0, 0, 0, 0] for d in (1, 19)},
    )
    views = [
        StudentView(student("silent"), (), None),
        StudentView(student("active"), (), active),
    ]
    evaluator = Evaluator(RULES)
    first = evaluator.judge_day(date(2026, 10, 5), views).alerts
    assert [a.student_id for a in first] == ["silent"]
    # The same episode is not raised again on later days.
    assert evaluator.judge_day(date(2026, 10, 6), views).alerts == []
    # The active student (last active 19 Oct) is alerted on 26 Oct, once; the silent student's episode,
    # open for 21 days by then, escalates (once).
    late = evaluator.judge_day(date(2026, 10, 26), views).alerts
    assert [(a.student_id, a.rule) for a in late] == [
        ("silent", Rule.ESCALATION),
        ("active", Rule.NO_ENGAGEMENT),
    ]
    assert evaluator.judge_day(date(2026, 10, 27), views).alerts == []


def test_evaluating_a_past_day_ignores_later_activity() -> None:
    # Active on 1 Oct and again on 20 Oct: judging 12 Oct (after the fact) still sees the silence.
    state = StudentActivity(
        last_active=date(2026, 10, 20).toordinal(),
        days={
            date(2026, 10, 1).toordinal(): [1, 0, 0, 0, 0, 0, 0, 0],
            date(2026, 10, 20).toordinal(): [1, 0, 0, 0, 0, 0, 0, 0],
        },
    )
    alerts = Evaluator(RULES).judge_day(date(2026, 10, 8), [StudentView(student(), (), state)]).alerts
    assert len(alerts) == 1
    assert alerts[0].last_active_on == date(2026, 10, 1)


def test_days_still_to_evaluate() -> None:
    through = date(2026, 10, 10)
    assert next_days_to_evaluate({}, 0, through, None) == (through, through)
    assert next_days_to_evaluate({}, 0, through, date(2026, 10, 1)) == (date(2026, 10, 1), through)
    done = {0: PartitionProgress(date(2026, 10, 1), date(2026, 10, 8))}
    assert next_days_to_evaluate(done, 0, through, None) == (date(2026, 10, 9), through)
    assert next_days_to_evaluate({0: PartitionProgress(date(2026, 10, 1), through)}, 0, through, None) is None


def sick_leave(sid: str = "s1") -> Absence:
    return Absence(
        student_id=sid, from_date=date(2026, 10, 19), to_date=date(2026, 10, 30), reason="authorised_absence"
    )


def test_an_approved_absence_stops_the_clock_before_and_after() -> None:
    # Issue 24.3: last active Friday 16 Oct, sick leave 19-30 Oct. Saturday 31 Oct counts 17, 18 and
    # 31 Oct only: no alert; silent on, the 7th expected day is Wednesday 4 Nov.
    absences = [sick_leave()]
    last = date(2026, 10, 16)
    for day in (date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 3)):
        assert no_engagement(student(), absences, last, day, RULES) is None
    alert = no_engagement(student(), absences, last, date(2026, 11, 4), RULES)
    assert alert is not None
    assert alert.days_silent == 7
    assert alert.episode_start == date(2026, 10, 17)
    assert "12 days of approved absence not counted" in alert.explanation


def test_days_away_count_overlaps_once_and_a_non_teaching_week_does_not_stop_the_clock() -> None:
    overlapping = [
        sick_leave(),
        Absence(student_id="s1", from_date=date(2026, 10, 26), to_date=date(2026, 11, 1), reason="placement"),
    ]
    assert days_away(date(2026, 10, 17), date(2026, 11, 4), overlapping) == 14  # 19 Oct-1 Nov
    assert days_away(date(2026, 10, 17), date(2026, 10, 18), overlapping) == 0
    assert days_away(date(2026, 11, 4), date(2026, 11, 3), overlapping) == 0
    reading_week = date(2026, 10, 26)
    rules = RuleSettings(
        no_engagement_days=7, start_exemption_days=14, non_teaching_weeks=frozenset({reading_week})
    )
    assert (
        no_engagement(student(), [], date(2026, 10, 22), date(2026, 10, 29), rules) is None
    )  # exempt that day
    alert = no_engagement(student(), [], date(2026, 10, 22), date(2026, 11, 2), rules)
    assert alert is not None and alert.days_silent == 11 and "not counted" not in alert.explanation


def test_part_time_students_have_their_own_silence_threshold() -> None:
    rules = RuleSettings(no_engagement_days=7, part_time_no_engagement_days=14, start_exemption_days=14)
    part_timer = student(mode="PT")
    last = date(2026, 10, 12)
    assert no_engagement(part_timer, [], last, last + timedelta(days=13), rules) is None
    alert = no_engagement(part_timer, [], last, last + timedelta(days=14), rules)
    assert alert is not None and alert.days_silent == 14
    assert no_engagement(student(), [], last, last + timedelta(days=7), rules) is not None
