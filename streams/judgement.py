"""One student's full judgement for a day: open episodes closing or escalating, new episodes, and
the alerts they raise, with the day's explanations remembered.

`StudentJudgement` is the part of `streams.evaluator.Evaluator` that judges one student at a time;
the evaluator's columnar sweep decides who needs it (most students do not). It works on the state
the evaluator owns (the rule memory, the alerts already raised, the settings), declared below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from models.alerts import Alert, Rule, alert_id
from models.benchmarks import NO_RANK, DayBenchmarks, MemberFigures
from models.comparative_rules import (
    LOW_ATTENDANCE,
    LOW_ENGAGEMENT,
    consecutive_days,
    escalates,
    low_attendance,
    low_engagement,
    low_in_week_before,
    low_run_raises,
    re_engaged,
    run_far_below,
)
from models.comparison import StudentBenchmark
from models.engagement import EngagementSettings
from models.evaluation import Episode, StudentMemory
from models.explanations import Explanation, explain, explain_low_attendance, explain_low_engagement
from models.roster import StudyMode
from models.rules import (
    RuleSettings,
    Silence,
    exempt,
    silence,
    silence_explanation,
    window_overlaps_absence,
)
from streams.sweep import BAND_NAMES, Sweep

if TYPE_CHECKING:
    from streams.day_result import DayResult, StudentView

_EMPTY_MEMORY = StudentMemory().snapshot()

_MODE_VALUES = {mode: mode.value for mode in StudyMode}  # Enum.value is a slow descriptor


def recent_low_days(low_days: list[date], day: date) -> list[date]:
    """The low days still needed on `day` (up to 14 days back: yesterday's week before)."""
    return [d for d in low_days if (day - d).days <= 14]


class StudentJudgement:
    """The one-student rules and alerts of the evaluator (a base class of Evaluator, which sets the
    state below in its constructor). Not thread-safe, as the evaluator."""

    rules: RuleSettings
    engagement: EngagementSettings
    cooldown_days: int
    memory: dict[str, StudentMemory]
    already_raised: set[str]
    _explained: dict[tuple[Any, ...], Explanation]

    def _judge_student(
        self,
        day: date,
        view: StudentView,
        result: DayResult,
        monitoring_start: date | None,
        bench: StudentBenchmark | None,
        last_day: date | None,
        attended: int,
        expected: int,
    ) -> None:
        """One student's rules for the day; last_day and attendance come from the sweep's columns."""
        record = view.record
        sid = record.student_id
        known = self.memory.get(sid)
        memory = known if known is not None else StudentMemory()
        before = memory.snapshot() if known is not None else _EMPTY_MEMORY
        e = self.engagement
        attendance = low_attendance(
            attended,
            expected,
            e.attendance_threshold,
            e.attendance_min_expected,
            e.attendance_days,
            e.attendance_max_chance,
        )
        reason = exempt(record, view.absences, day, self.rules)

        # Open episodes first: re-engagement closes them; a long one escalates once. A student gets one
        # reminder, not one per rule: the first open episode due names it, and every episode open
        # then counts as reminded (while the student is silent only the silence may be named).
        silent_open = Rule.NO_ENGAGEMENT in memory.episodes
        due: list[tuple[Rule, Episode]] = []
        for rule, episode in list(memory.episodes.items()):
            closes, why = self._closes(rule, episode, last_day, bench, attendance)
            if closes:
                del memory.episodes[rule]
                memory.closed_on[rule] = day
                self._raise(
                    result, self._follow_up(Rule.RE_ENGAGED, rule, episode, day, view, bench, why, last_day)
                )
            elif (
                reason is None
                and (rule is Rule.NO_ENGAGEMENT or not silent_open)
                and escalates(episode.raised_on, day, episode.escalated, e.escalate_after_days)
            ):
                due.append((rule, episode))
        if due:
            self._remind(day, view, result, memory, due, bench, last_day)
        for rule in [r for r in memory.closed_on if not memory.cooling_down(r, day, self.cooldown_days)]:
            del memory.closed_on[rule]
        memory.low_days = recent_low_days(memory.low_days, day)
        if reason is not None:
            memory.end_low_run()
        else:
            self._new_episodes(day, view, memory, bench, last_day, attendance, result, monitoring_start)

        if memory.snapshot() != before:
            result.changed.add(sid)
        if memory.is_empty():
            self.memory.pop(sid, None)
        else:
            self.memory[sid] = memory

    def _remind(
        self,
        day: date,
        view: StudentView,
        result: DayResult,
        memory: StudentMemory,
        due: list[tuple[Rule, Episode]],
        bench: StudentBenchmark | None,
        last_day: date | None,
    ) -> None:
        """One escalation for the student's open episodes due today: it names the oldest (the
        silence first), says which others are open, and marks every open episode reminded."""
        rule, episode = min(due, key=lambda d: (d[0] is not Rule.NO_ENGAGEMENT, d[1].raised_on, d[0].value))
        days_open = (day - episode.raised_on).days
        why = f"Still open {days_open} days after the {rule.value.replace('_', ' ')} alert."
        others = sorted(r.value.replace("_", " ") for r in memory.episodes if r is not rule)
        if others:
            why += f" Also open: {', '.join(others)}."
        for open_episode in memory.episodes.values():
            open_episode.escalated = True
        self._raise(result, self._follow_up(Rule.ESCALATION, rule, episode, day, view, bench, why, last_day))

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
        if memory.cooling_down(Rule.NO_ENGAGEMENT, day, self.cooldown_days):
            # A silence closed days ago: the tutor has heard of it and of its end. Its windows still
            # hold the silent days, so no rule raises until the cool-down ends (a new silence then).
            memory.end_low_run()
            return
        # Exemptions were checked by the caller: only the silence itself is left to judge.
        silent = (
            silence(record, last_day, day, self.rules, monitoring_start, view.absences)
            if Rule.NO_ENGAGEMENT not in memory.episodes
            else None
        )
        if silent is not None:
            memory.episodes[Rule.NO_ENGAGEMENT] = Episode(silent.episode_start, day)
            memory.end_low_run()
            self._raise(result, self._silence_alert(silent, day, view, bench))
            return
        # A window that reaches back before monitoring began would compare missing data: wait for it.
        observed = (day - monitoring_start).days + 1 if monitoring_start is not None else None
        if bench is not None and window_overlaps_absence(view.absences, day, bench.features.window_days):
            memory.end_low_run()  # back from an approved absence: the window still holds days away
        elif bench is not None and (observed is None or observed >= bench.features.window_days):
            decision = low_engagement(
                bench,
                e.low_bottom_share,
                e.low_median_fraction,
                e.min_cohort_size,
                alert_fraction=e.low_alert_fraction,
            )
            memory.low_streak, memory.low_days, memory.low_run_far_below, raise_now = self._low_step(
                memory, day, decision.holds, decision.far_below
            )
            cooling = memory.cooling_down(Rule.LOW_ENGAGEMENT, day, self.cooldown_days)
            if raise_now and Rule.LOW_ENGAGEMENT not in memory.episodes and not cooling:
                start = day - timedelta(days=memory.low_streak - 1)
                memory.episodes[Rule.LOW_ENGAGEMENT] = Episode(start, day)
                text = explain_low_engagement(decision, bench, memory.low_streak)
                self._raise(
                    result,
                    self._alert(
                        Rule.LOW_ENGAGEMENT, start, day, view, bench, text.text, text.fields, last_day
                    ),
                )
        # A student with an open no-engagement episode misses sessions as part of that silence: the
        # tutor already has the alert that says so, and a second one the next day would only repeat it.
        if Rule.NO_ENGAGEMENT in memory.episodes:
            return
        cooling = memory.cooling_down(Rule.LOW_ATTENDANCE, day, self.cooldown_days)
        enough_history = observed is None or observed >= e.attendance_days
        enough_history = enough_history and not window_overlaps_absence(view.absences, day, e.attendance_days)
        if attendance.holds and Rule.LOW_ATTENDANCE not in memory.episodes and not cooling and enough_history:
            memory.episodes[Rule.LOW_ATTENDANCE] = Episode(day, day)
            group_rate = bench.group.sources["attendance"].mean if bench is not None else None
            text = explain_low_attendance(attendance, group_rate, bench.basis if bench is not None else None)
            self._raise(
                result,
                self._alert(Rule.LOW_ATTENDANCE, day, day, view, bench, text.text, text.fields, last_day),
            )

    def _silence_alert(
        self, silent: Silence, day: date, view: StudentView, bench: StudentBenchmark | None
    ) -> Alert:
        if bench is None:
            return self._silence_alert_of(silent, day, view, None, None, None)
        return self._silence_alert_of(
            silent, day, view, self._explain(bench), round(bench.score, 1), bench.band.value
        )

    def _silence_alert_of(
        self,
        silent: Silence,
        day: date,
        view: StudentView,
        details: Explanation | None,
        score: float | None,
        band: str | None,
    ) -> Alert:
        """The no_engagement alert: the silence in words, then the student's figures when compared."""
        words = silence_explanation(silent)
        text, figures = (words, {}) if details is None else (f"{words} {details.text}", details.fields)
        start, last = silent.episode_start, silent.last_active
        return self._make_alert(
            Rule.NO_ENGAGEMENT, start, day, view, score, band, text, figures, last, days_silent=silent.days
        )

    def _first_silence(
        self,
        day: date,
        view: StudentView,
        result: DayResult,
        monitoring_start: date | None,
        standing: MemberFigures | None,
        sweep: Sweep,
        last_day: date | None,
    ) -> bool:
        """A silent student with nothing in memory: raise no_engagement (or nothing, when exempt)
        without the full judgement, which for such a student can do nothing else (a first day of
        monitoring has tens of thousands). False: the silence does not hold, judge in full.

        The same alert as _silence_alert, read from the student's figures: their benchmark object
        is built only when the day has not explained the same figures yet."""
        record = view.record
        if exempt(record, view.absences, day, self.rules) is not None:
            return True  # the full judgement would only reset a streak this student does not have
        silent = silence(record, last_day, day, self.rules, monitoring_start, view.absences)
        if silent is None:
            return False
        sid = record.student_id
        self.memory[sid] = StudentMemory(episodes={Rule.NO_ENGAGEMENT: Episode(silent.episode_start, day)})
        result.changed.add(sid)
        if standing is None:
            alert = self._silence_alert_of(silent, day, view, None, None, None)
        else:
            details = self._explain_standing(standing, sweep.bench)
            score, band = round(standing[6], 1), BAND_NAMES[standing[7]]
            alert = self._silence_alert_of(silent, day, view, details, score, band)
        self._raise(result, alert)
        return True

    def _low_step(
        self, memory: StudentMemory, day: date, holds: bool, far_below: bool
    ) -> tuple[int, list[date], bool, bool]:
        """The low-engagement streak, recent low days and whether the run has been under the alert
        line, after today, and whether to raise today (the first day the run is long enough,
        confirmed by the week before and has been under the alert line)."""
        e = self.engagement
        streak, _ = consecutive_days(memory.low_streak, holds, e.low_consecutive_days)
        low_days = [d for d in recent_low_days(memory.low_days, day) if d < day] + ([day] if holds else [])
        far_before = memory.low_streak > 0 and memory.low_run_far_below
        run_far = run_far_below(streak, far_below, far_before)
        if e.low_previous_week:
            confirmed = low_in_week_before(low_days, day)
            confirmed_yesterday = low_in_week_before(low_days, day - timedelta(days=1))
        else:
            confirmed = confirmed_yesterday = True
        return (
            streak,
            low_days,
            run_far,
            low_run_raises(
                streak, e.low_consecutive_days, confirmed and run_far, confirmed_yesterday and far_before
            ),
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

    def _alert(
        self,
        rule: Rule,
        episode_start: date,
        day: date,
        view: StudentView,
        bench: StudentBenchmark | None,
        text: str,
        figures: Mapping[str, Any],
        last_day: date | None,
        about: Rule | None = None,
        days_silent: int | None = None,
    ) -> Alert:
        score = round(bench.score, 1) if bench is not None else None
        band = bench.band.value if bench is not None else None
        return self._make_alert(
            rule, episode_start, day, view, score, band, text, figures, last_day, about, days_silent
        )

    @staticmethod
    def _make_alert(
        rule: Rule,
        episode_start: date,
        day: date,
        view: StudentView,
        score: float | None,
        band: str | None,
        text: str,
        figures: Mapping[str, Any],
        last_day: date | None,
        about: Rule | None = None,
        days_silent: int | None = None,
    ) -> Alert:
        record = view.record
        if days_silent is None:
            days_silent = (day - last_day).days if last_day else (day - episode_start).days + 1
        return Alert(
            alert_id=alert_id(record.student_id, rule, episode_start, about),
            student_id=record.student_id,
            rule=rule,
            raised_on=day,
            episode_start=episode_start,
            days_silent=days_silent,
            last_active_on=last_day,
            programme_code=record.programme_code,
            year_of_study=record.year_of_study,
            mode=_MODE_VALUES[record.mode],
            school=record.school,
            personal_tutor_id=record.personal_tutor_id,
            explanation=text,
            about_rule=about,
            score=score,
            band=band,
            figures=figures,  # validation copies it: each alert has its own
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
        last_day: date | None,
    ) -> Alert:
        if bench is None:
            return self._alert(rule, episode.episode_start, day, view, bench, why, {}, last_day, about)
        details = self._explain(bench)
        text, start = f"{why} {details.text}", episode.episode_start
        return self._alert(rule, start, day, view, bench, text, details.fields, last_day, about)

    def _explain(self, bench: StudentBenchmark) -> Explanation:
        """explain(bench), remembered for the day (see _explained_as)."""
        features = bench.features
        ranks = tuple(NO_RANK if r is None else r for r in bench.percentiles.values())
        key = (
            id(bench.group),  # the day's groups stay alive while the day is judged
            features.counts,
            features.attended,
            features.window_days,
            ranks,
            bench.overall_percentile,
            bench.score,
            bench.band.value,
        )
        return self._explained_as(key, lambda: bench)

    def _explain_standing(self, standing: MemberFigures, bench: DayBenchmarks) -> Explanation:
        """The same for a member's plain figures: its benchmark object is built only when the day
        has not explained the same figures yet."""
        group, counts, attended, window, ranks, overall, score, band, _ = standing
        key = (id(bench.groups[group]), counts, attended, window, ranks, overall, score, BAND_NAMES[band])
        return self._explained_as(key, lambda: bench.from_figures(standing))

    def _explained_as(self, key: tuple[Any, ...], benchmark: Callable[[], StudentBenchmark]) -> Explanation:
        """explain() remembered for the day by everything it reads (the group, the figures, the
        percentiles, the standing): students of one group with the same figures (most often none at
        all) get the same words, and a first day explains tens of thousands of silences. Each alert
        gets its own copy of the fields."""
        found = self._explained.get(key)
        if found is None:
            found = self._explained[key] = explain(benchmark())
        return found
