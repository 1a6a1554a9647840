"""The evaluator: on the clock, judge every rostered student of the owned partitions, day by day.

Alerts come from the roster and the clock, not from incoming events: a student who does nothing sends
nothing, and is still judged. Pure: the Faust timer (and `lde quality`) feed it views of the students
and persist the rule memory it keeps (open episodes, low-engagement streaks) so that cool-down and
episodes survive restarts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from models.activity import StudentActivity
from models.alerts import Alert, Rule, alert_id
from models.engagement import (
    LOW_ATTENDANCE,
    LOW_ENGAGEMENT,
    EngagementSettings,
    Member,
    StudentBenchmark,
    attendance_totals,
    benchmark_day,
    consecutive_days,
    escalates,
    explain,
    explain_low_attendance,
    explain_low_engagement,
    low_attendance,
    low_engagement,
    re_engaged,
    student_features,
    window_days,
)
from models.roster import Absence, RosterRecord, StudentStatus
from models.rules import RuleSettings, exempt, no_engagement


@dataclass(frozen=True, slots=True)
class StudentView:
    """What the evaluator needs of one student."""

    record: RosterRecord
    absences: tuple[Absence, ...]
    activity: StudentActivity | None


@dataclass(slots=True)
class Episode:
    """An open alert episode: raised once, closed by re-engagement, escalated once if it lasts."""

    episode_start: date
    raised_on: date
    escalated: bool = False


@dataclass(slots=True)
class StudentMemory:
    """What the rules remember about a student between days (persisted by the caller)."""

    episodes: dict[Rule, Episode] = field(default_factory=dict)
    low_streak: int = 0
    closed_on: dict[Rule, date] = field(default_factory=dict)  # cool-down: when each rule last closed

    def is_empty(self) -> bool:
        return not self.episodes and self.low_streak == 0 and not self.closed_on

    def cooling_down(self, rule: Rule, day: date, cooldown_days: int) -> bool:
        """True while a closed episode of `rule` is more recent than the cool-down period."""
        closed = self.closed_on.get(rule)
        return closed is not None and (day - closed).days < cooldown_days

    def to_json(self) -> str:
        return json.dumps(
            {
                "episodes": {
                    rule.value: [e.episode_start.isoformat(), e.raised_on.isoformat(), e.escalated]
                    for rule, e in self.episodes.items()
                },
                "low_streak": self.low_streak,
                "closed_on": {rule.value: day.isoformat() for rule, day in self.closed_on.items()},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> StudentMemory:
        data = json.loads(text)
        episodes = {
            Rule(rule): Episode(date.fromisoformat(start), date.fromisoformat(raised), bool(escalated))
            for rule, (start, raised, escalated) in data.get("episodes", {}).items()
        }
        closed = {Rule(rule): date.fromisoformat(day) for rule, day in data.get("closed_on", {}).items()}
        return cls(episodes=episodes, low_streak=int(data.get("low_streak", 0)), closed_on=closed)


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """A student's standing on a day (the daily_scores table)."""

    day: date
    student_id: str
    score: float
    band: str
    basis: str
    overall_percentile: float


@dataclass(slots=True)
class DayResult:
    alerts: list[Alert] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # students whose memory changed (persist these)
    benchmarks: dict[str, StudentBenchmark] = field(default_factory=dict)


class Evaluator:
    """Judges one day at a time. Not thread-safe; one instance per worker."""

    def __init__(
        self,
        rules: RuleSettings,
        engagement: EngagementSettings | None = None,
        memory: dict[str, StudentMemory] | None = None,
        already_raised: set[str] | None = None,
        cooldown_days: int = 14,
    ) -> None:
        self.rules = rules
        self.cooldown_days = cooldown_days
        self.engagement = engagement or EngagementSettings()
        self.memory: dict[str, StudentMemory] = memory if memory is not None else {}
        self.already_raised: set[str] = already_raised if already_raised is not None else set()

    # -- the day -------------------------------------------------------------------------------------
    def judge_day(
        self,
        day: date,
        views: Sequence[StudentView],
        monitoring_start: date | None = None,
        comparison: Sequence[StudentView] | None = None,
    ) -> DayResult:
        """Alerts, scores and memory changes for `day`.

        `comparison` is everyone to benchmark against (default: `views`); pass the whole institution
        when `views` is only part of it.
        """
        result = DayResult()
        ordinal = day.toordinal()
        members = [self._member(v, ordinal) for v in (comparison if comparison is not None else views)]
        e = self.engagement
        result.benchmarks = benchmark_day(
            [m for m in members if m is not None], e.weights, e.min_cohort_size, e.bands
        )
        for view in views:
            self._judge_student(day, view, result, monitoring_start)
        return result

    def _member(self, view: StudentView, ordinal: int) -> Member | None:
        record = view.record
        if record.status is not StudentStatus.ACTIVE:
            return None
        length = window_days(
            record.mode, self.engagement.full_time_window_days, self.engagement.part_time_window_days
        )
        return Member(
            record.student_id, record.cohort, record.school, student_features(view.activity, ordinal, length)
        )

    def _judge_student(
        self, day: date, view: StudentView, result: DayResult, monitoring_start: date | None
    ) -> None:
        record = view.record
        sid = record.student_id
        memory = self.memory.get(sid) or StudentMemory()
        before = memory.to_json()
        bench = result.benchmarks.get(sid)
        ordinal = day.toordinal()
        last = view.activity.last_active_on_or_before(ordinal) if view.activity else None
        last_day = date.fromordinal(last) if last is not None else None
        e = self.engagement
        attended, expected = attendance_totals(view.activity, ordinal, e.attendance_days)
        attendance = low_attendance(
            attended, expected, e.attendance_threshold, e.attendance_min_expected, e.attendance_days
        )
        reason = exempt(record, view.absences, day, self.rules)

        # Open episodes first: re-engagement closes them; a long one escalates once.
        for rule, episode in list(memory.episodes.items()):
            closes, why = self._closes(rule, episode, last_day, bench, attendance)
            if closes:
                del memory.episodes[rule]
                memory.closed_on[rule] = day
                self._raise(result, self._follow_up(Rule.RE_ENGAGED, rule, episode, day, view, bench, why))
            elif reason is None and escalates(
                episode.raised_on, day, episode.escalated, e.escalate_after_days
            ):
                episode.escalated = True
                days_open = (day - episode.raised_on).days
                why = f"Still open {days_open} days after the {rule.value.replace('_', ' ')} alert."
                self._raise(result, self._follow_up(Rule.ESCALATION, rule, episode, day, view, bench, why))

        for rule in [r for r in memory.closed_on if not memory.cooling_down(r, day, self.cooldown_days)]:
            del memory.closed_on[rule]
        if reason is not None:
            memory.low_streak = 0
        else:
            self._new_episodes(day, view, memory, bench, last_day, attendance, result, monitoring_start)

        if bench is not None:
            result.scores.append(
                ScoreRow(
                    day, sid, round(bench.score, 1), bench.band.value, bench.basis, bench.overall_percentile
                )
            )
        if memory.to_json() != before:
            result.changed.add(sid)
        if memory.is_empty():
            self.memory.pop(sid, None)
        else:
            self.memory[sid] = memory

    def _new_episodes(
        self,
        day: date,
        view: StudentView,
        memory: StudentMemory,
        bench: StudentBenchmark | None,
        last_day: date | None,
        attendance: Any,
        result: DayResult,
        monitoring_start: date | None,
    ) -> None:
        record = view.record
        e = self.engagement
        silent = no_engagement(record, view.absences, last_day, day, self.rules, monitoring_start)
        if silent is not None and Rule.NO_ENGAGEMENT not in memory.episodes:
            memory.episodes[Rule.NO_ENGAGEMENT] = Episode(silent.episode_start, day)
            memory.low_streak = 0
            self._raise(result, self._with_figures(silent, bench))
            return
        # A window that reaches back before monitoring began would compare missing data: wait for it.
        observed = (day - monitoring_start).days + 1 if monitoring_start is not None else None
        if bench is not None and (observed is None or observed >= bench.features.window_days):
            decision = low_engagement(bench, e.low_bottom_share, e.low_median_fraction, e.min_cohort_size)
            memory.low_streak, raise_now = consecutive_days(
                memory.low_streak, decision.holds, e.low_consecutive_days
            )
            cooling = memory.cooling_down(Rule.LOW_ENGAGEMENT, day, self.cooldown_days)
            if raise_now and Rule.LOW_ENGAGEMENT not in memory.episodes and not cooling:
                start = day - timedelta(days=e.low_consecutive_days - 1)
                memory.episodes[Rule.LOW_ENGAGEMENT] = Episode(start, day)
                text = explain_low_engagement(decision, bench, memory.low_streak)
                self._raise(
                    result, self._alert(Rule.LOW_ENGAGEMENT, start, day, view, bench, text.text, text.fields)
                )
        cooling = memory.cooling_down(Rule.LOW_ATTENDANCE, day, self.cooldown_days)
        enough_history = observed is None or observed >= e.attendance_days
        if attendance.holds and Rule.LOW_ATTENDANCE not in memory.episodes and not cooling and enough_history:
            memory.episodes[Rule.LOW_ATTENDANCE] = Episode(day, day)
            group_rate = bench.group.sources["attendance"].mean if bench is not None else None
            text = explain_low_attendance(attendance, group_rate)
            self._raise(
                result, self._alert(Rule.LOW_ATTENDANCE, day, day, view, bench, text.text, text.fields)
            )

    def _closes(
        self,
        rule: Rule,
        episode: Episode,
        last_day: date | None,
        bench: StudentBenchmark | None,
        attendance: Any,
    ) -> tuple[bool, str]:
        if rule is Rule.NO_ENGAGEMENT:
            back = last_day is not None and last_day >= episode.episode_start
            return back, f"Active again on {last_day:%A %d %B %Y}." if back and last_day else ""
        if rule is Rule.LOW_ENGAGEMENT:
            if bench is None:
                return False, ""
            decision = re_engaged(
                LOW_ENGAGEMENT,
                has_activity=bench.features.has_activity,
                score=bench.score,
                low_threshold=self.engagement.bands.partial,
            )
            return decision.closes, f"Back to usual engagement: score {bench.score:.0f} ({bench.band.value})."
        decision = re_engaged(LOW_ATTENDANCE, has_activity=True, attendance=attendance)
        return decision.closes, f"Attendance recovered: {decision.reason}."

    # -- alerts --------------------------------------------------------------------------------------
    def _raise(self, result: DayResult, alert: Alert) -> None:
        if alert.alert_id not in self.already_raised:
            self.already_raised.add(alert.alert_id)
            result.alerts.append(alert)

    def _with_figures(self, alert: Alert, bench: StudentBenchmark | None) -> Alert:
        if bench is None:
            return alert
        details = explain(bench)
        return alert.model_copy(
            update={
                "score": round(bench.score, 1),
                "band": bench.band.value,
                "figures": details.fields,
                "explanation": f"{alert.explanation} {details.text}",
            }
        )

    def _alert(
        self,
        rule: Rule,
        episode_start: date,
        day: date,
        view: StudentView,
        bench: StudentBenchmark | None,
        text: str,
        figures: Mapping[str, Any],
        about: Rule | None = None,
    ) -> Alert:
        record = view.record
        last = view.activity.last_active_on_or_before(day.toordinal()) if view.activity else None
        last_day = date.fromordinal(last) if last is not None else None
        return Alert(
            alert_id=alert_id(record.student_id, rule, episode_start, about),
            student_id=record.student_id,
            rule=rule,
            raised_on=day,
            episode_start=episode_start,
            days_silent=(day - last_day).days if last_day else (day - episode_start).days + 1,
            last_active_on=last_day,
            programme_code=record.programme_code,
            year_of_study=record.year_of_study,
            mode=record.mode.value,
            school=record.school,
            personal_tutor_id=record.personal_tutor_id,
            explanation=text,
            about_rule=about,
            score=round(bench.score, 1) if bench is not None else None,
            band=bench.band.value if bench is not None else None,
            figures=dict(figures),
        )

    def _follow_up(
        self,
        rule: Rule,
        about: Rule,
        episode: Episode,
        day: date,
        view: StudentView,
        bench: StudentBenchmark | None,
        why: str,
    ) -> Alert:
        figures: dict[str, Any] = explain(bench).fields if bench is not None else {}
        text = why if bench is None else f"{why} {explain(bench).text}"
        return self._alert(rule, episode.episode_start, day, view, bench, text, figures, about)


def cohort_rows(day: date, benchmarks: Iterable[StudentBenchmark]) -> list[tuple[Any, ...]]:
    """One row per comparison group and source for the cohort_daily table (no identifiers)."""
    seen: set[tuple[str, tuple[str | int, ...]]] = set()
    rows: list[tuple[Any, ...]] = []
    for bench in benchmarks:
        group = bench.group
        if (group.basis, group.key) in seen:
            continue
        seen.add((group.basis, group.key))
        key = "|".join(str(k) for k in group.key)
        for source, stats in group.sources.items():
            rows.append(
                (day, group.basis, key, source, stats.n, stats.mean, stats.median, stats.q1, stats.q3)
            )
    return rows


def evaluate_day(
    day: date,
    students: Iterable[StudentView],
    rules: RuleSettings,
    already_raised: set[str],
    monitoring_start: date | None = None,
) -> list[Alert]:
    """The no-engagement alerts that hold on `day` and were not raised before (no memory kept).

    Kept for the evaluator sweep benchmark and simple callers; the service uses Evaluator.
    """
    alerts: list[Alert] = []
    ordinal = day.toordinal()
    for view in students:
        last = view.activity.last_active_on_or_before(ordinal) if view.activity else None
        alert = no_engagement(
            view.record,
            view.absences,
            date.fromordinal(last) if last is not None else None,
            day,
            rules,
            monitoring_start,
        )
        if alert is not None and alert.alert_id not in already_raised:
            already_raised.add(alert.alert_id)
            alerts.append(alert)
    return alerts


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far the evaluator has judged one partition, and the day it started judging it."""

    started_on: date
    evaluated_through: date


def next_days_to_evaluate(
    progress: Mapping[int, PartitionProgress], partition: int, through: date, evaluate_from: date | None
) -> tuple[date, date] | None:
    """The inclusive range of days a partition still needs judging, or None when it is up to date.

    A partition never judged starts at `evaluate_from` (or at `through`: the service judges from the
    day it started, not back to the beginning of time).
    """
    done = progress.get(partition)
    if done is not None:
        first = date.fromordinal(done.evaluated_through.toordinal() + 1)
    else:
        first = evaluate_from or through
    if first > through:
        return None
    return first, through
