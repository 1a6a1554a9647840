"""The stateful evaluator: episodes raised once, closed by re-engagement, escalated once, cooled down,
remembered across restarts; low engagement and low attendance against the cohort."""

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.activity import StudentActivity
from models.alerts import Rule
from models.benchmarks import ComparisonFeatures, GroupCodes, comparison_ready
from models.engagement import EngagementSettings
from models.evaluation import StudentMemory
from models.events import ActivityEvent
from models.roster import Absence, StudentStatus, StudyMode
from models.rules import RuleSettings
from models.timebuckets import zone
from streams.evaluator import Evaluator, StudentView
from streams.sweep import RosterColumns, round_tenths
from tests.factories import TERM_START, roster_record

LONDON = zone("Europe/London")
START = TERM_START
RULES = RuleSettings(no_engagement_days=7, start_exemption_days=14)


record = roster_record


class Term:
    """A small cohort and a day-by-day driver over the evaluator."""

    def __init__(
        self, students: int = 10, engagement: EngagementSettings | None = None, **changes: object
    ) -> None:
        self.states = {f"s{i}": StudentActivity() for i in range(students)}
        self.views = [StudentView(record(sid, **changes), (), state) for sid, state in self.states.items()]
        self.evaluator = Evaluator(RULES, engagement)
        self.offset = 0

    def act(self, sid: str, day: date, source: str = "vle", count: int = 5, **attributes: object) -> None:
        self.offset += 1
        events = [
            ActivityEvent.model_validate(
                {
                    "event_id": f"{sid}-{day}-{source}-{i}-{self.offset}",
                    "student_id": sid,
                    "source": source,
                    "occurred_at": datetime(day.year, day.month, day.day, 12, i, tzinfo=UTC),
                    "attributes": attributes or None,
                }
            )
            for i in range(count)
        ]
        self.states[sid].apply(events, self.offset, LONDON)

    def s1_withdraws(self, silent_from: date, absent_from: date, through: date) -> list:
        """Everyone active and present on weekdays, except s1: absent from `absent_from`, silent from
        `silent_from`; the alerts of every day judged until `through`."""
        alerts = []
        for day in days(START, through):
            for sid in self.states:
                if sid != "s1" or day < silent_from:
                    self.act(sid, day)
                if day.weekday() < 5:
                    status = "absent" if sid == "s1" and day >= absent_from else "present"
                    self.act(sid, day, source="attendance", count=1, status=status)
            alerts += self.judge(day)
        return alerts

    def judge(self, day: date) -> list:
        return self.evaluator.judge_day(day, self.views, monitoring_start=START).alerts


def days(first: date, last: date):
    while first <= last:
        yield first
        first += timedelta(days=1)


SPEC_LOW = EngagementSettings(low_previous_week=False)  # low engagement on K days alone


@pytest.mark.parametrize("previous_week", [True, False])
def test_silence_raises_once_escalates_once_and_closes_on_return(previous_week: bool) -> None:
    term = Term(engagement=EngagementSettings(low_previous_week=previous_week))
    raised = []
    for day in days(START, date(2026, 11, 20)):
        for sid in term.states:
            if sid != "s0" or day < date(2026, 10, 10) or day >= date(2026, 11, 10):
                term.act(sid, day)
        raised += [(a.student_id, a.rule, a.raised_on, a.about_rule) for a in term.judge(day)]
    # Without the week-before check a week of silence is also low engagement (the 6th silent day,
    # after 3 low days in a row); with it, the week before was not low: the silence speaks alone.
    low = ("s0", Rule.LOW_ENGAGEMENT, date(2026, 10, 15), None)
    assert (low in raised) is not previous_week
    assert len([r for r in raised if r[1] is Rule.LOW_ENGAGEMENT]) == (0 if previous_week else 1)
    s0 = [r for r in raised if r[0] == "s0" and Rule.NO_ENGAGEMENT in (r[1], r[3])]
    assert s0 == [
        ("s0", Rule.NO_ENGAGEMENT, date(2026, 10, 16), None),
        ("s0", Rule.ESCALATION, date(2026, 10, 30), Rule.NO_ENGAGEMENT),
        ("s0", Rule.RE_ENGAGED, date(2026, 11, 10), Rule.NO_ENGAGEMENT),
    ]
    assert [r for r in raised if r[0] != "s0"] == []


@pytest.mark.parametrize("previous_week", [True, False])
def test_low_engagement_after_k_days_with_figures_and_cool_down(previous_week: bool) -> None:
    term = Term(students=12, engagement=EngagementSettings(low_previous_week=previous_week))
    alerts = []
    for day in days(START, date(2026, 10, 31)):
        for sid in term.states:
            term.act(sid, day, count=1 if sid == "s0" and day >= date(2026, 10, 5) else 10)
        alerts += term.judge(day)
    low = [a for a in alerts if a.rule is Rule.LOW_ENGAGEMENT]
    assert [a.student_id for a in low] == ["s0"]
    alert = low[0]
    assert alert.band in ("Low", "Partial")
    assert alert.figures["vle_count"] < alert.figures["vle_average"]
    assert "in a row" in alert.explanation and "VLE activity" in alert.explanation
    if previous_week:
        # Low since the first day of the run, and a week later still low: raised then, for the run.
        assert alert.episode_start == alert.raised_on - timedelta(days=7)
        assert alert.figures["days_in_a_row"] == 8
    else:
        assert alert.episode_start == alert.raised_on - timedelta(days=2)


def test_a_healthy_cohort_raises_nothing() -> None:
    term = Term(students=20)
    alerts = []
    for day in days(START, date(2026, 11, 15)):
        for i, sid in enumerate(term.states):
            term.act(sid, day, count=8 + i % 5)
            term.act(sid, day, source="attendance", count=1, status="present")
        alerts += term.judge(day)
    assert alerts == []


def test_low_attendance_needs_four_sessions_and_under_half() -> None:
    term = Term()
    alerts = []
    for day in days(START, date(2026, 10, 20)):
        for sid in term.states:
            term.act(sid, day)
            if day.weekday() < 5:
                status = "absent" if sid == "s1" and day >= date(2026, 10, 1) else "present"
                term.act(sid, day, source="attendance", count=1, status=status)
        alerts += term.judge(day)
    low = [a for a in alerts if a.rule is Rule.LOW_ATTENDANCE]
    assert [a.student_id for a in low] == ["s1"]
    assert low[0].figures["expected"] >= 4
    assert low[0].figures["attended"] / low[0].figures["expected"] < 0.5


def test_memory_survives_a_restart_as_json() -> None:
    term = Term()
    for day in days(START, date(2026, 10, 10)):
        for sid in term.states:
            if sid != "s0":
                term.act(sid, day)
        term.judge(day)
    memory = {sid: StudentMemory.from_json(m.to_json()) for sid, m in term.evaluator.memory.items()}
    assert Rule.NO_ENGAGEMENT in memory["s0"].episodes
    restarted = Evaluator(RULES, memory=memory)
    # The open episode is not raised again after the restart (and escalates on its own day).
    result = restarted.judge_day(date(2026, 10, 11), term.views, monitoring_start=START)
    assert result.alerts == []


def test_non_teaching_weeks_and_exemptions_raise_nothing() -> None:
    reading_week = date(2026, 10, 5)
    evaluator = Evaluator(RuleSettings(non_teaching_weeks=frozenset({reading_week})))
    view = StudentView(record("s9"), (), None)
    assert evaluator.judge_day(date(2026, 10, 7), [view], monitoring_start=START).alerts == []
    alerts = evaluator.judge_day(date(2026, 10, 12), [view], monitoring_start=START).alerts
    assert [a.rule for a in alerts] == [Rule.NO_ENGAGEMENT]


def test_a_silent_student_is_not_also_flagged_for_the_sessions_missed_in_that_silence() -> None:
    alerts = Term().s1_withdraws(
        silent_from=date(2026, 10, 10), absent_from=date(2026, 10, 10), through=date(2026, 10, 31)
    )
    s1 = [a.rule for a in alerts if a.student_id == "s1" and a.rule is not Rule.LOW_ENGAGEMENT]
    assert s1 == [Rule.NO_ENGAGEMENT, Rule.ESCALATION]


def mixed_day(term: Term, day: date) -> None:
    """Every 7th student falls silent on 8 October, every 5th misses every session, the rest vary."""
    for i, sid in enumerate(term.states):
        if not (i % 7 == 0 and day >= date(2026, 10, 8)):
            term.act(sid, day, count=1 + i % 9)
        if day.weekday() < 5:
            term.act(sid, day, source="attendance", count=1, status="present" if i % 5 else "absent")


def test_judging_part_of_the_institution_gives_the_same_as_judging_all_of_it() -> None:
    """The service judges its own partitions against everyone: the same alerts and scores, per student,
    as one evaluator judging everybody."""
    whole, parts = Term(students=30), Term(students=30)
    parts.states, parts.views = whole.states, whole.views
    raised = 0
    for day in days(START, date(2026, 10, 25)):
        mixed_day(whole, day)
        together = whole.evaluator.judge_day(day, whole.views, monitoring_start=START)
        halves = [
            parts.evaluator.judge_day(day, half, monitoring_start=START, comparison=parts.views)
            for half in (parts.views[1::2], parts.views[::2])
        ]
        alerts = sorted(a.alert_id for h in halves for a in h.alerts)
        assert alerts == sorted(a.alert_id for a in together.alerts)
        raised += len(alerts)
        assert together.scores is not None
        by_student = {r.student_id: r for h in halves if h.scores for r in h.scores}
        assert by_student == {r.student_id: r for r in together.scores}
    assert raised >= 5  # the silent and the absent students were flagged


def test_workers_sharing_figures_judge_as_one_evaluator_judging_everyone() -> None:
    """Two workers, each owning half the students, exchange their students' figures (as bytes, as
    through Redis) and raise exactly the alerts and scores of one evaluator judging everybody."""
    term = Term(students=48)
    term.views = [
        StudentView(
            record(sid, programme_code=("BSC-CS", "BSC-MA", "BA-HIST")[i % 3], year_of_study=1 + i % 2),
            (),
            term.states[sid],
        )
        for i, sid in enumerate(term.states)
    ]
    halves = [term.views[::2], term.views[1::2]]
    workers = [Evaluator(RULES), Evaluator(RULES)]
    raised = 0
    for day in days(START, date(2026, 10, 25)):
        mixed_day(term, day)
        together = term.evaluator.judge_day(day, term.views, monitoring_start=START)
        shared = [
            ComparisonFeatures.from_bytes(w.features(day, h).to_bytes())
            for w, h in zip(workers, halves, strict=True)
        ]
        apart = [
            workers[k].judge_day(day, halves[k], monitoring_start=START, others=shared[1 - k]) for k in (0, 1)
        ]
        assert sorted(a.alert_id for r in apart for a in r.alerts) == sorted(
            a.alert_id for a in together.alerts
        )
        raised += len(together.alerts)
        assert together.scores is not None
        by_student = {row.student_id: row for r in apart if r.scores for row in r.scores}
        assert by_student == {row.student_id: row for row in together.scores}
    assert raised >= 5


def test_waiting_for_other_workers_has_a_limit() -> None:
    assert comparison_ready({1, 2, 3}, {1, 2}, 0.0, 60.0) == "ready"
    assert comparison_ready({1}, {1, 2}, 59.0, 60.0) == "wait"
    assert comparison_ready({1}, {1, 2}, 60.0, 60.0) == "partial"


class FullEvaluator(Evaluator):
    """The evaluator without its shortcuts for students in memory."""

    def _shortcut(self, *args: object) -> bool:
        return False


class WatchedEvaluator(Evaluator):
    """The evaluator, noting which students it judged in full on which day."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.in_full: set[tuple[date, str]] = set()

    def _judge_student(self, day: date, view: StudentView, *args: Any) -> None:
        self.in_full.add((day, view.record.student_id))
        super()._judge_student(day, view, *args)


@pytest.mark.parametrize("seed", range(4))
def test_the_shortcut_for_quiet_students_changes_nothing(seed: int) -> None:
    rng = random.Random(seed)
    term = Term(students=40)
    full = FullEvaluator(RULES)
    plans = {sid: (rng.random() < 0.3, rng.randrange(1, 9), rng.random()) for sid in term.states}
    for day in days(START, date(2026, 12, 10)):
        for sid, (stops, level, attends) in plans.items():
            stopped = stops and date(2026, 10, 12) <= day < date(2026, 11, 16)
            if not stopped and rng.random() < 0.8:
                term.act(sid, day, count=level)
            if day.weekday() < 5:
                present = not stopped and rng.random() < attends
                term.act(sid, day, source="attendance", count=1, status="present" if present else "absent")
        shortcut = term.evaluator.judge_day(day, term.views, monitoring_start=START)
        reference = full.judge_day(day, term.views, monitoring_start=START)
        assert shortcut.alerts == reference.alerts
        assert shortcut.changed == reference.changed
        assert term.evaluator.memory.keys() == full.memory.keys()
        assert all(m.snapshot() == full.memory[sid].snapshot() for sid, m in term.evaluator.memory.items())
    assert len(term.evaluator.already_raised) >= 10


def test_a_first_low_day_starts_the_streak_without_the_full_judgement() -> None:
    """s0 is far below its cohort from the first day: its streak starts by the shortcut, with the
    full judgement's memory, and the alert it leads to is the full judgement's."""
    term = Term(students=12)
    term.evaluator = watched = WatchedEvaluator(RULES)
    full = FullEvaluator(RULES)
    raised, streak_started = [], None
    for day in days(START, date(2026, 10, 25)):
        for sid in term.states:
            term.act(sid, day, count=1 if sid == "s0" else 10)
        ours = watched.judge_day(day, term.views, monitoring_start=START)
        reference = full.judge_day(day, term.views, monitoring_start=START)
        assert ours.alerts == reference.alerts
        assert ours.changed == reference.changed
        assert {k: m.snapshot() for k, m in watched.memory.items()} == {
            k: m.snapshot() for k, m in full.memory.items()
        }
        raised += [a.rule for a in ours.alerts if a.student_id == "s0"]
        if streak_started is None and "s0" in watched.memory:
            streak_started = day
            assert watched.memory["s0"].low_streak == 1
    # Once its first days of the course are over, and without the full judgement.
    assert streak_started == START + timedelta(days=RULES.start_exemption_days)
    assert (streak_started, "s0") not in watched.in_full
    assert Rule.LOW_ENGAGEMENT in raised


def test_while_a_student_is_silent_only_the_silence_escalates() -> None:
    alerts = Term().s1_withdraws(
        silent_from=date(2026, 10, 15), absent_from=date(2026, 10, 1), through=date(2026, 11, 20)
    )
    s1 = [
        (a.rule, a.about_rule)
        for a in alerts
        if a.student_id == "s1" and Rule.LOW_ENGAGEMENT not in (a.rule, a.about_rule)
    ]
    assert s1 == [
        (Rule.LOW_ATTENDANCE, None),
        (Rule.NO_ENGAGEMENT, None),
        (Rule.ESCALATION, Rule.NO_ENGAGEMENT),
    ]


@pytest.mark.parametrize("previous_week", [True, False])
def test_one_poor_week_is_not_low_engagement_but_two_are(previous_week: bool) -> None:
    """s0 has a poor week (one event a day for 7 days), back to normal, then a poor fortnight."""
    term = Term(students=12, engagement=EngagementSettings(low_previous_week=previous_week))
    poor = {*days(date(2026, 10, 5), date(2026, 10, 11)), *days(date(2026, 11, 2), date(2026, 11, 15))}
    alerts = []
    for day in days(START, date(2026, 11, 20)):
        for sid in term.states:
            term.act(sid, day, count=1 if sid == "s0" and day in poor else 10)
        alerts += term.judge(day)
    raised = [a.raised_on for a in alerts if a.rule is Rule.LOW_ENGAGEMENT]
    if previous_week:
        assert len(raised) == 1 and date(2026, 11, 9) <= raised[0] <= date(2026, 11, 15)
    else:
        assert len(raised) == 2 and raised[0] < date(2026, 10, 15)
    assert {a.student_id for a in alerts} == {"s0"}


def test_low_memory_survives_a_restart_as_json() -> None:
    memory = StudentMemory(low_streak=2, low_days=[date(2026, 10, 1), date(2026, 10, 2)])
    again = StudentMemory.from_json(memory.to_json())
    assert again.snapshot() == memory.snapshot()
    assert StudentMemory.from_json('{"episodes": {}, "low_streak": 1}').low_days == []


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=200))
def test_score_rounding_in_bulk_equals_python_round(values: list[float]) -> None:
    ties = [0.05, 0.15, 0.25, 0.35, 2.675, 12.25, 99.95]  # halves, and ones that only look like halves
    values = values + ties
    assert round_tenths(np.array(values, np.float64)) == [round(v, 1) for v in values]


@pytest.mark.parametrize("monitoring_days", [3, 60])
def test_first_silences_raise_what_the_full_judgement_raises(
    monitoring_days: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short path for silent students with nothing in memory gives the full judgement's alerts
    and memory, exempt students (not active, in their first days) and silences shortened by the
    start of monitoring included."""
    from ops.devtools.bench.evaluator import synthetic_institution

    day = date(2026, 11, 20)
    views = synthetic_institution(3_000, day, seed=7)
    # Some students in their first days of the course (exempt), some just started monitoring.
    views = [
        StudentView(v.record.model_copy(update={"start_date": day - timedelta(days=5)}), (), v.activity)
        if i % 17 == 0
        else v
        for i, v in enumerate(views)
    ]
    start = day - timedelta(days=monitoring_days)
    short_taken: list[bool] = []

    def judged(short_path: bool) -> tuple[list[dict[str, object]], dict[str, str]]:
        evaluator = Evaluator(RuleSettings(), EngagementSettings())
        if short_path:
            original = evaluator._first_silence

            def counted(*args: object) -> bool:
                taken = original(*args)  # type: ignore[arg-type]
                short_taken.append(taken)
                return taken

            monkeypatch.setattr(evaluator, "_first_silence", counted)
        else:
            monkeypatch.setattr(evaluator, "_first_silence", lambda *args: False)
        alerts = []
        for judged_day in (day - timedelta(days=1), day):
            alerts += [a.model_dump() for a in evaluator.judge_day(judged_day, views, start).alerts]
        return alerts, {sid: m.to_json() for sid, m in evaluator.memory.items()}

    short_alerts, short_memory = judged(True)
    full_alerts, full_memory = judged(False)
    # Monitored for 3 days, no silence is long enough yet: every silent student takes the full path.
    assert any(a["rule"] == Rule.NO_ENGAGEMENT for a in full_alerts) is (monitoring_days > 7)
    assert short_alerts == full_alerts
    assert short_memory == full_memory
    assert short_taken.count(True) > 10  # the short path was taken (exempt or alerted)
    assert (False in short_taken) is (monitoring_days < 7)  # and left when the silence is too short


def test_roster_columns_equal_each_records_own_reading() -> None:
    """The roster coded column by column: each student's groups (as GroupCodes.of codes cohort
    tuples), whether active, and window length by mode, statuses and modes of every kind included."""
    from ops.devtools.bench.evaluator import synthetic_institution

    records = [v.record for v in synthetic_institution(2_000, date(2026, 11, 20), seed=3)]
    statuses = list(StudentStatus)
    records = [
        r.model_copy(update={"status": statuses[i % len(statuses)]}) if i % 7 == 0 else r
        for i, r in enumerate(records)
    ]
    assert {r.mode for r in records} == set(StudyMode)
    columns = RosterColumns.of(records, 7, 21)
    reference = GroupCodes.of([r.cohort for r in records], [r.school for r in records])
    assert columns.groups.keys == reference.keys
    assert all((columns.groups.codes[level] == reference.codes[level]).all() for level in reference.codes)
    assert columns.active.tolist() == [r.status is StudentStatus.ACTIVE for r in records]
    assert columns.window.tolist() == [21 if r.mode is StudyMode.PART_TIME else 7 for r in records]
    assert columns.student_ids == [r.student_id for r in records]
    empty = RosterColumns.of([], 7, 21)
    assert len(empty.active) == len(empty.window) == len(empty.student_ids) == 0


def _per_student(features: ComparisonFeatures) -> list[tuple[Any, ...]]:
    """Each compared student's figures and group keys (codes differ between key spaces)."""
    keys, codes = features.groups.keys, features.groups.codes
    return [
        (
            tuple(features.counts[i].tolist()),
            int(features.attended[i]),
            int(features.window[i]),
            tuple(keys[level][int(codes[level][i])] for level in sorted(keys)),
        )
        for i in range(len(features))
    ]


@pytest.mark.parametrize("at", [0, 700, 1_500])
def test_features_of_a_slice_read_the_coded_roster(at: int) -> None:
    """A worker's partition is a slice of everyone it read the figures of: its shared figures come
    from the roster columns coded then, and equal those coded afresh; a wrong offset codes afresh."""
    from ops.devtools.bench.evaluator import synthetic_institution

    day = date(2026, 11, 20)
    views = synthetic_institution(2_000, day, seed=11)
    worker = Evaluator(RULES)
    everyone = worker.read_figures(day, views)
    part = views[at : at + 500]
    figures = everyone.rows(at, at + len(part))
    fresh = _per_student(Evaluator(RULES).features(day, part, figures))
    assert fresh and _per_student(worker.features(day, part, figures, at=at)) == fresh
    assert _per_student(worker.features(day, part, figures, at=at + 1)) == fresh
    roster = worker._roster
    assert roster is not None and roster.holds_at([v.record for v in part], at)
    assert not roster.holds_at([v.record for v in part], at + 1)
    # A slice is not the roster itself: the sweep's cache must not take a prefix for the whole.
    assert roster.same_records([v.record for v in views])
    assert not roster.same_records([v.record for v in views[:-1]])


def test_a_part_timer_active_every_ten_days_is_never_alerted() -> None:
    # Issue 24.1-2: with the full-time silence, a no_engagement / re_engaged pair every 10 days.
    rules = RuleSettings(no_engagement_days=7, part_time_no_engagement_days=14, start_exemption_days=14)
    term = Term(students=10, mode="PT")
    term.evaluator = Evaluator(rules)
    alerts = []
    for n, day in enumerate(days(START, date(2026, 12, 11))):
        for i, sid in enumerate(term.states):
            # s0 studies in one long session every 10 days, as much as the others do in 10 days.
            if sid == "s0" and n % 10 == 0:
                term.act(sid, day, count=30)
            elif sid != "s0" and n % 2 == i % 2:
                term.act(sid, day, count=6)
        alerts += term.judge(day)
    assert [a for a in alerts if a.student_id == "s0"] == []


def test_no_engagement_has_its_cool_down_too() -> None:
    # Silent 1-9 Oct (alerted 8 Oct), back on 10 Oct (re-engaged), silent again from 11 Oct: the
    # second silence waits for the end of the cool-down (14 days after the close) and speaks then.
    term = Term()
    alerts = []
    for day in days(START, date(2026, 11, 5)):
        for sid in term.states:
            s0_silent = date(2026, 10, 1) <= day != date(2026, 10, 10)
            if sid != "s0" or not s0_silent:
                term.act(sid, day)
        alerts += term.judge(day)
    s0 = [(a.rule, a.raised_on) for a in alerts if a.student_id == "s0" and a.rule is not Rule.ESCALATION]
    assert s0 == [
        (Rule.NO_ENGAGEMENT, date(2026, 10, 7)),
        (Rule.RE_ENGAGED, date(2026, 10, 10)),
        (Rule.NO_ENGAGEMENT, date(2026, 10, 24)),
    ]
    assert alerts[-1].student_id == "s0" or all(a.student_id == "s0" for a in alerts)


def test_episodes_open_together_escalate_as_one_reminder() -> None:
    # s1 misses every session from 1 Oct and does little: low attendance and low engagement open,
    # then one escalation names the older and says the other is open too.
    term = Term(students=12)
    alerts = []
    for day in days(START, date(2026, 11, 20)):
        for sid in term.states:
            term.act(sid, day, count=1 if sid == "s1" and day >= date(2026, 10, 1) else 10)
            if day.weekday() < 5:
                status = "absent" if sid == "s1" and day >= date(2026, 10, 1) else "present"
                term.act(sid, day, source="attendance", count=1, status=status)
        alerts += term.judge(day)
    s1 = [a for a in alerts if a.student_id == "s1"]
    raised = {a.rule for a in s1}
    assert {Rule.LOW_ATTENDANCE, Rule.LOW_ENGAGEMENT} <= raised
    escalations = [a for a in s1 if a.rule is Rule.ESCALATION]
    assert len(escalations) == 1
    assert "Also open:" in escalations[0].explanation


def test_a_student_back_from_approved_absence_is_not_alerted_for_the_days_away() -> None:
    # s1 on sick leave 19-30 Oct (sessions recorded as authorised absences), back on Monday 2 Nov as
    # engaged as before: no silence (the clock stopped), and no low engagement or attendance while
    # the windows still hold days away.
    leave = Absence(
        student_id="s1", from_date=date(2026, 10, 19), to_date=date(2026, 10, 30), reason="authorised_absence"
    )
    term = Term(students=12)
    term.views = [
        StudentView(v.record, (leave,) if v.record.student_id == "s1" else (), v.activity) for v in term.views
    ]
    alerts = []
    for day in days(START, date(2026, 11, 30)):
        for sid in term.states:
            away = sid == "s1" and leave.covers(day)
            if not away and not (sid == "s1" and day == date(2026, 10, 31)):
                term.act(sid, day, count=8)
            if day.weekday() < 5:
                status = "authorised_absence" if away else "present"
                term.act(sid, day, source="attendance", count=1, status=status)
        alerts += term.judge(day)
    assert alerts == []


def test_sessions_absent_then_a_full_return_raise_no_comparative_alert_in_the_cool_down() -> None:
    # s0 silent 5-16 Oct (alerted, then re-engaged on 17 Oct): the windows hold the silence for days
    # after the return; the cool-down keeps low engagement and low attendance quiet.
    term = Term(students=12)
    alerts = []
    for day in days(START, date(2026, 11, 15)):
        for sid in term.states:
            if sid != "s0" or not date(2026, 10, 5) <= day <= date(2026, 10, 16):
                term.act(sid, day, count=8)
            if day.weekday() < 5:
                silent = sid == "s0" and date(2026, 10, 5) <= day <= date(2026, 10, 16)
                term.act(sid, day, source="attendance", count=1, status="absent" if silent else "present")
        alerts += term.judge(day)
    assert [(a.rule, a.raised_on) for a in alerts] == [
        (Rule.NO_ENGAGEMENT, date(2026, 10, 11)),
        (Rule.RE_ENGAGED, date(2026, 10, 17)),
    ]


def low_run_alerts(term: Term, plan: dict[str, dict[date, int]], through: date, full: Evaluator) -> list:
    """Everyone does 10 VLE events a day except on the days `plan` gives another count; the alerts
    of each day, checked equal to those of the evaluator without its shortcuts."""
    alerts = []
    for day in days(START, through):
        for sid in term.states:
            count = plan.get(sid, {}).get(day, 10)
            if count:
                term.act(sid, day, count=count)
        ours = term.judge(day)
        assert ours == full.judge_day(day, term.views, monitoring_start=START).alerts
        assert {k: m.snapshot() for k, m in term.evaluator.memory.items()} == {
            k: m.snapshot() for k, m in full.memory.items()
        }
        alerts += ours
    return alerts


@pytest.mark.parametrize("alert_fraction", [0.35, 0.5])
def test_a_run_under_half_raises_once_it_falls_under_the_alert_line(alert_fraction: float) -> None:
    """s0 does 4 events a day (40% of typical) from 5 October, then 1 from 19 October: low all along,
    under the alert line (35% by default) only once the days of 1 weigh in."""
    engagement = EngagementSettings(low_alert_fraction=alert_fraction)
    term = Term(students=12, engagement=engagement)
    plan = {"s0": {d: 4 if d < date(2026, 10, 19) else 1 for d in days(date(2026, 10, 5), date(2026, 11, 8))}}
    alerts = low_run_alerts(term, plan, date(2026, 11, 8), FullEvaluator(RULES, engagement))
    low = [a for a in alerts if a.rule is Rule.LOW_ENGAGEMENT]
    assert [a.student_id for a in low] == ["s0"]
    share = low[0].figures["activity_index"] / low[0].figures["group_median_index"]
    if alert_fraction == 0.5:
        # Every low day is under the line: raised once the week before confirms the run.
        assert low[0].raised_on < date(2026, 10, 19) and 0.35 < share < 0.5
    else:
        # 4 x 6 + 1 = 25 of the typical 70 in the window of 19 October (36%); 22 of 70 the next day.
        assert low[0].raised_on == date(2026, 10, 20) and share < 0.35
    # The alert is about the whole run, which began on the same day either way.
    assert low[0].episode_start <= date(2026, 10, 12)


def test_a_run_remembers_falling_under_the_line_and_a_good_day_forgets_it() -> None:
    """s0 and s1 are silent for 5 days (their windows fall to 29% of typical), then do 4 and 5 a day
    in turn (45%): one long run for s0, raised when the week before confirms it although no longer
    under the line (27 of 70 that day, 39%); s1 has one good day in between, which ends the run: the
    next one never falls under the line."""
    term = Term(students=12)
    back = {d: 4 + n % 2 for n, d in enumerate(days(date(2026, 10, 10), date(2026, 11, 8)))}
    silent = dict.fromkeys(days(date(2026, 10, 5), date(2026, 10, 9)), 0)
    plan = {"s0": {**silent, **back}, "s1": {**silent, **back, date(2026, 10, 12): 40}}
    alerts = low_run_alerts(term, plan, date(2026, 11, 8), FullEvaluator(RULES))
    low = [a for a in alerts if a.rule is Rule.LOW_ENGAGEMENT]
    assert [(a.student_id, a.raised_on) for a in low] == [("s0", date(2026, 10, 15))]
    assert low[0].figures["activity_index"] >= 0.35 * low[0].figures["group_median_index"]
    assert low[0].episode_start == date(2026, 10, 8)  # the run's first day (3 silent days of 7: 57%)


def test_a_memory_under_the_alert_line_survives_a_restart_as_json() -> None:
    memory = StudentMemory(low_streak=2, low_days=[date(2026, 10, 2)], low_run_far_below=True)
    assert StudentMemory.from_json(memory.to_json()).snapshot() == memory.snapshot()
    # A memory stored before the alert line (no such key) reads as a run not under it.
    assert '"low_run_far_below"' not in StudentMemory(low_streak=2).to_json()
    assert not StudentMemory.from_json('{"episodes": {}, "low_streak": 2}').low_run_far_below
    memory.end_low_run()
    assert (memory.low_streak, memory.low_run_far_below) == (0, False)
