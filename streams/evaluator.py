"""The evaluator: on the clock, judge every rostered student of the owned partitions, day by day.

Alerts come from the roster and the clock, not from incoming events: a student who does nothing sends
nothing, and is still judged. Pure: the Faust timer (and `lde quality`) feed it views of the students
and persist the rule memory it keeps (open episodes, low-engagement streaks) so that cool-down and
episodes survive restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from itertools import compress
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.activity import ATTENDED, N_SOURCES, DayFigures, StudentActivity, day_figures
from models.alerts import Alert, Rule, alert_id
from models.benchmarks import (
    NO_RANK,
    ComparisonFeatures,
    DayBenchmarks,
    GroupCodes,
    MemberFigures,
    benchmark_coded,
    dense_codes,
)
from models.comparative_rules import (
    LOW_ATTENDANCE,
    LOW_ENGAGEMENT,
    consecutive_days,
    escalates,
    half_attendance_chance,
    low_attendance,
    low_engagement,
    low_in_week_before,
    low_run_raises,
    re_engaged,
)
from models.comparison import GroupStats, StudentBenchmark
from models.engagement import Band, EngagementSettings
from models.evaluation import Episode, ScoreColumns, StudentMemory
from models.explanations import Explanation, explain, explain_low_attendance, explain_low_engagement
from models.roster import Absence, RosterRecord, StudentStatus, StudyMode
from models.rules import RuleSettings, Silence, exempt, silence, silence_explanation
from streams.gc_pause import collector_paused


@dataclass(frozen=True, slots=True)
class StudentView:
    """What the evaluator needs of one student."""

    record: RosterRecord
    absences: tuple[Absence, ...]
    activity: StudentActivity | None


_EMPTY_MEMORY = StudentMemory().snapshot()


@dataclass(slots=True)
class DayResult:
    day: date
    alerts: list[Alert] = field(default_factory=list)
    scores: ScoreColumns | None = None
    changed: set[str] = field(default_factory=set)  # students whose memory changed (persist these)
    groups: list[GroupStats] = field(default_factory=list)  # the comparison groups used that day
    judged_in_full: int = 0  # students judged one by one: a first silence or the full judgement


class Evaluator:
    """Judges one day at a time. Not thread-safe; one instance per worker.

    The sweep is columnar: every student's window counts, benchmark and rule preconditions are
    computed for everyone at once (models.activity.ActivityColumns, models.benchmarks); only the
    students a rule may concern (silent long enough, low today, low attendance, or with an open
    episode, a streak or a cool-down in their memory) are then judged one by one.
    """

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
        self._roster: RosterColumns | None = None
        self._explained: dict[tuple[Any, ...], Explanation] = {}  # the day's explanations, see _explained_as

    # -- the day -------------------------------------------------------------------------------------
    def judge_day(
        self,
        day: date,
        views: Sequence[StudentView],
        monitoring_start: date | None = None,
        comparison: Sequence[StudentView] | None = None,
        others: ComparisonFeatures | None = None,
        figures: DayFigures | None = None,
    ) -> DayResult:
        """Alerts, scores and memory changes for `day`.

        `comparison` is everyone of this worker to benchmark against (default: `views`), every view
        being in it; `others` are the figures of the students other workers own (see `features`), so
        that each student is compared with the whole institution however the partitions are shared.
        `figures` are `read_figures(day, comparison)` when the caller read them already: they are the
        only read of the students' activity state, so the rest may run in another thread.
        """
        with collector_paused():
            try:
                return self._judge_day(day, views, monitoring_start, comparison, others, figures)
            finally:
                self._explained.clear()

    def _judge_day(
        self,
        day: date,
        views: Sequence[StudentView],
        monitoring_start: date | None,
        comparison: Sequence[StudentView] | None,
        others: ComparisonFeatures | None,
        figures: DayFigures | None,
    ) -> DayResult:
        result = DayResult(day)
        everyone = comparison if comparison is not None else views
        sweep = self._sweep(day, everyone, others, figures)
        result.groups = sweep.bench.groups
        roster = sweep.roster
        # Judging the comparison list itself (a worker judging every partition it owns), each
        # student's row is its position.
        if comparison is None or _same_objects(views, comparison):
            rows = np.arange(len(views), dtype=np.int64)
        else:
            rows = np.fromiter((roster.row_of[v.record.student_id] for v in views), np.int64, len(views))
        judged = sweep.concerned.copy()
        for student_id in self.memory:
            row = roster.row_of.get(student_id)
            if row is not None:
                judged[row] = True
        positions = np.flatnonzero(judged[rows])
        # The columns of the students judged one by one, read in bulk.
        judged_rows = rows[positions]
        bench_at = sweep.bench_row[judged_rows]
        standings: list[MemberFigures | None] = [None] * len(positions)
        compared = np.flatnonzero(bench_at >= 0)
        for at, member in zip(compared.tolist(), sweep.bench.figures(bench_at[compared]), strict=True):
            standings[at] = member
        columns = zip(
            positions.tolist(),
            judged_rows.tolist(),
            sweep.last[judged_rows].tolist(),
            sweep.attended[judged_rows].tolist(),
            sweep.expected[judged_rows].tolist(),
            standings,
            strict=True,
        )
        silent = sweep.silent
        bench_of = sweep.bench.from_figures
        for position, row, last, attended, expected, standing in columns:
            view = views[position]
            memory = self.memory.get(view.record.student_id)
            if self._shortcut(memory, day, row, sweep, view, monitoring_start, result):
                continue
            result.judged_in_full += 1  # one by one: in full, or a first silence by its short path
            last_day = date.fromordinal(last) if last >= 0 else None
            first = memory is None and silent[row]
            if first and self._first_silence(day, view, result, monitoring_start, standing, sweep, last_day):
                continue
            bench = bench_of(standing) if standing is not None else None
            self._judge_student(day, view, result, monitoring_start, bench, last_day, attended, expected)
        bench_rows = sweep.bench_row[rows]
        result.scores = _score_columns(day, sweep.bench, bench_rows[bench_rows >= 0])
        return result

    def _shortcut(
        self,
        memory: StudentMemory | None,
        day: date,
        row: int,
        sweep: _Sweep,
        view: StudentView,
        monitoring_start: date | None,
        result: DayResult,
    ) -> bool:
        """Handle a student without the full judgement when the day can only leave their memory as it
        is or move a low-engagement streak short of raising (also a first low day: a first day of
        monitoring has tens of thousands); False: judge in full."""
        if memory is None:
            if not sweep.low[row]:
                return False
            memory = StudentMemory()  # kept below only if the streak starts
        elif memory.episodes or memory.closed_on or not memory.low_streak:
            return self._unchanged(memory, day, row, sweep)
        if sweep.silent[row] or sweep.low_attendance[row] or sweep.bench_row[row] < 0:
            return False
        low_days = _recent(memory.low_days, day)
        if exempt(view.record, view.absences, day, self.rules) is not None:
            streak = 0
        elif monitoring_start is not None and (day - monitoring_start).days + 1 < sweep.roster.window[row]:
            streak = memory.low_streak  # the window still reaches before monitoring began: the streak waits
        else:
            streak, low_days, raise_now = self._low_step(memory, day, bool(sweep.low[row]))
            if raise_now:
                return False
        if streak != memory.low_streak or low_days != memory.low_days:
            memory.low_streak = streak
            memory.low_days = low_days
            sid = view.record.student_id
            result.changed.add(sid)
            if memory.is_empty():
                self.memory.pop(sid, None)
            else:
                self.memory[sid] = memory
        return True

    def _unchanged(self, memory: StudentMemory, day: date, row: int, sweep: _Sweep) -> bool:
        """True when judging this student in full today would change nothing: only open episodes in
        memory, none of them closing or due to escalate, and no rule that could open a new one.

        Most students in memory sit in a long open episode (a student who stopped engaging stays
        silent for weeks); this check is a few comparisons where the full judgement builds benchmark
        objects. Conservative: anything uncertain answers False and takes the full path.
        """
        if memory.low_streak or memory.closed_on or memory.low_days or sweep.low[row]:
            return False
        episodes = memory.episodes
        silent_open = Rule.NO_ENGAGEMENT in episodes
        if not silent_open and (
            sweep.silent[row] or (sweep.low_attendance[row] and Rule.LOW_ATTENDANCE not in episodes)
        ):
            return False
        e = self.engagement
        for rule, episode in episodes.items():
            may_escalate = rule is Rule.NO_ENGAGEMENT or not silent_open
            if (
                may_escalate
                and not episode.escalated
                and (day - episode.raised_on).days >= e.escalate_after_days
            ):
                return False
            if rule is Rule.NO_ENGAGEMENT:
                if sweep.last[row] >= episode.episode_start.toordinal():
                    return False
            elif rule is Rule.LOW_ENGAGEMENT:
                at = sweep.bench_row[row]
                if at >= 0 and sweep.bench.has_activity[at] and sweep.bench.score[at] >= e.bands.partial:
                    return False
            else:
                attendance = low_attendance(
                    int(sweep.attended[row]),
                    int(sweep.expected[row]),
                    e.attendance_threshold,
                    e.attendance_min_expected,
                    e.attendance_days,
                    e.attendance_max_chance,
                )
                if attendance.recovered:
                    return False
        return True

    def _roster_columns(self, records: list[RosterRecord]) -> RosterColumns:
        """The roster in columns, rebuilt only when a record changed (records are immutable)."""
        cached = self._roster
        if cached is None or not cached.same_records(records):
            e = self.engagement
            cached = self._roster = RosterColumns.of(
                records, e.full_time_window_days, e.part_time_window_days
            )
        return cached

    def window_lengths(self, views: Sequence[StudentView]) -> NDArray[np.int64]:
        """Each student's window in days (by mode of study)."""
        return self._roster_columns([v.record for v in views]).window

    def read_figures(self, day: date, views: Sequence[StudentView]) -> DayFigures:
        """What the day's judgement reads of these students' activity state (see judge_day)."""
        lengths = self.window_lengths(views)
        return day_figures(
            [v.activity for v in views], day.toordinal(), lengths, self.engagement.attendance_days
        )

    def features(
        self,
        day: date,
        views: Sequence[StudentView],
        figures: DayFigures | None = None,
        at: int | None = None,
    ) -> ComparisonFeatures:
        """These students' figures for the day, without identities, for the other workers' benchmarks
        (only active students are compared); `figures` as read_figures(day, views) gives them.

        `at`: where `views` start in the list the roster was last coded for (read_figures of every
        student this worker owns): their columns are then read from it, not coded again (a second
        for a million students, on the event loop)."""
        e = self.engagement
        records = [v.record for v in views]
        cached = self._roster
        if at is not None and cached is not None and cached.holds_at(records, at):
            roster = cached.rows(at, at + len(records))
        else:
            roster = RosterColumns.of(records, e.full_time_window_days, e.part_time_window_days)
        if figures is None:
            figures = day_figures(
                [v.activity for v in views], day.toordinal(), roster.window, e.attendance_days
            )
        members = np.flatnonzero(roster.active)
        return ComparisonFeatures(
            figures.window[members, :N_SOURCES],
            figures.window[members, ATTENDED],
            roster.window[members],
            roster.groups.subset(members),
        )

    def _sweep(
        self,
        day: date,
        everyone: Sequence[StudentView],
        others: ComparisonFeatures | None = None,
        figures: DayFigures | None = None,
    ) -> _Sweep:
        """Everyone's window counts, benchmarks and rule preconditions for the day, in columns."""
        e = self.engagement
        ordinal = day.toordinal()
        n = len(everyone)
        roster = self._roster_columns([v.record for v in everyone])
        if figures is None:
            figures = day_figures([v.activity for v in everyone], ordinal, roster.window, e.attendance_days)
        totals, attended, expected, last = figures.window, figures.attended, figures.expected, figures.last
        rate = np.divide(attended, expected, out=np.ones(n), where=expected > 0)
        low_attendance_today = (expected >= e.attendance_min_expected) & (rate < e.attendance_threshold)
        for row in np.flatnonzero(low_attendance_today).tolist():
            chance = half_attendance_chance(int(attended[row]), int(expected[row]))
            low_attendance_today[row] = chance <= e.attendance_max_chance
        silent = (last < 0) | (ordinal - last >= self.rules.no_engagement_days)

        members = np.flatnonzero(roster.active)
        own = ComparisonFeatures(
            totals[members, :N_SOURCES],
            totals[members, ATTENDED],
            roster.window[members],
            roster.groups.subset(members),
        )
        ids = list(compress(roster.student_ids, roster.active.tolist()))  # the members' ids, in order
        if others is not None and len(others):
            # Everyone else after this worker's own students: their rows are only in the pools.
            own = ComparisonFeatures.concat([own, others])
            ids += [""] * len(others)
        bench = benchmark_coded(
            ids, own.counts, own.attended, own.window, own.groups, e.weights, e.min_cohort_size, e.bands
        )
        bench_row = np.full(n, -1, np.int64)
        bench_row[members] = np.arange(len(members))
        low = np.zeros(n, np.bool_)
        low[members] = bench.low_engagement(e.low_bottom_share, e.low_median_fraction, e.min_cohort_size)[
            : len(members)
        ]
        concerned = roster.active & (silent | low | low_attendance_today)
        return _Sweep(
            roster, bench, bench_row, concerned, last, attended, expected, silent, low, low_attendance_today
        )

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

        # Open episodes first: re-engagement closes them; a long one escalates once. While the student
        # is silent, only the silence escalates: the tutor needs one reminder, not one per rule.
        silent_open = Rule.NO_ENGAGEMENT in memory.episodes
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
                episode.escalated = True
                days_open = (day - episode.raised_on).days
                why = f"Still open {days_open} days after the {rule.value.replace('_', ' ')} alert."
                self._raise(
                    result, self._follow_up(Rule.ESCALATION, rule, episode, day, view, bench, why, last_day)
                )

        for rule in [r for r in memory.closed_on if not memory.cooling_down(r, day, self.cooldown_days)]:
            del memory.closed_on[rule]
        memory.low_days = _recent(memory.low_days, day)
        if reason is not None:
            memory.low_streak = 0
        else:
            self._new_episodes(day, view, memory, bench, last_day, attendance, result, monitoring_start)

        if memory.snapshot() != before:
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
        # Exemptions were checked by the caller: only the silence itself is left to judge.
        silent = (
            silence(record, last_day, day, self.rules, monitoring_start)
            if Rule.NO_ENGAGEMENT not in memory.episodes
            else None
        )
        if silent is not None:
            memory.episodes[Rule.NO_ENGAGEMENT] = Episode(silent.episode_start, day)
            memory.low_streak = 0
            self._raise(result, self._silence_alert(silent, day, view, bench))
            return
        # A window that reaches back before monitoring began would compare missing data: wait for it.
        observed = (day - monitoring_start).days + 1 if monitoring_start is not None else None
        if bench is not None and (observed is None or observed >= bench.features.window_days):
            decision = low_engagement(bench, e.low_bottom_share, e.low_median_fraction, e.min_cohort_size)
            memory.low_streak, memory.low_days, raise_now = self._low_step(memory, day, decision.holds)
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
        if attendance.holds and Rule.LOW_ATTENDANCE not in memory.episodes and not cooling and enough_history:
            memory.episodes[Rule.LOW_ATTENDANCE] = Episode(day, day)
            group_rate = bench.group.sources["attendance"].mean if bench is not None else None
            text = explain_low_attendance(attendance, group_rate)
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
        sweep: _Sweep,
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
        silent = silence(record, last_day, day, self.rules, monitoring_start)
        if silent is None:
            return False
        sid = record.student_id
        self.memory[sid] = StudentMemory(episodes={Rule.NO_ENGAGEMENT: Episode(silent.episode_start, day)})
        result.changed.add(sid)
        if standing is None:
            alert = self._silence_alert_of(silent, day, view, None, None, None)
        else:
            details = self._explain_standing(standing, sweep.bench)
            score, band = round(standing[6], 1), _BAND_NAMES[standing[7]]
            alert = self._silence_alert_of(silent, day, view, details, score, band)
        self._raise(result, alert)
        return True

    def _low_step(self, memory: StudentMemory, day: date, holds: bool) -> tuple[int, list[date], bool]:
        """The low-engagement streak and recent low days after today, and whether to raise today."""
        e = self.engagement
        streak, _ = consecutive_days(memory.low_streak, holds, e.low_consecutive_days)
        low_days = [d for d in _recent(memory.low_days, day) if d < day] + ([day] if holds else [])
        if e.low_previous_week:
            confirmed = low_in_week_before(low_days, day)
            confirmed_yesterday = low_in_week_before(low_days, day - timedelta(days=1))
        else:
            confirmed = confirmed_yesterday = True
        return (
            streak,
            low_days,
            low_run_raises(streak, e.low_consecutive_days, confirmed, confirmed_yesterday),
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
        key = (id(bench.groups[group]), counts, attended, window, ranks, overall, score, _BAND_NAMES[band])
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


def _same_objects(mine: Sequence[Any], theirs: Sequence[Any]) -> bool:
    """The same objects in the same order (records and views are immutable: identity is enough)."""
    return len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs, strict=True))


def _recent(low_days: list[date], day: date) -> list[date]:
    """The low days still needed on `day` (up to 14 days back: yesterday's week before)."""
    return [d for d in low_days if (day - d).days <= 14]


def cohort_rows(day: date, groups: Iterable[GroupStats]) -> list[tuple[Any, ...]]:
    """One row per comparison group and source for the cohort_daily table (no identifiers)."""
    rows: list[tuple[Any, ...]] = []
    for group in groups:
        key = "|".join(str(k) for k in group.key)
        for source, stats in group.sources.items():
            rows.append(
                (day, group.basis, key, source, stats.n, stats.mean, stats.median, stats.q1, stats.q3)
            )
    return rows


_KIND = attrgetter("programme_code", "year_of_study", "mode", "school", "status")


@dataclass(frozen=True)
class RosterColumns:
    """The roster as the sweep needs it, in columns; kept while the records stay the same objects."""

    records: list[RosterRecord]
    student_ids: list[str]
    active: NDArray[np.bool_]
    window: NDArray[np.int64]  # each student's window length in days (by mode of study)
    groups: GroupCodes

    @classmethod
    def of(cls, records: list[RosterRecord], full_time_days: int, part_time_days: int) -> RosterColumns:
        # A roster has a few thousand kinds of student (programme, year, mode, school, status): code
        # each student's kind in one pass, then work on the kinds (a million-student first day).
        kind_of, kinds = dense_codes([_KIND(r) for r in records])
        programmes, years, modes, schools, statuses = zip(*kinds, strict=True) if kinds else ((),) * 5
        groups = GroupCodes.from_columns(programmes, years, [m.value for m in modes], schools)
        active = np.array([s is StudentStatus.ACTIVE for s in statuses], np.bool_)
        window = np.array([part_time_days if m is StudyMode.PART_TIME else full_time_days for m in modes])
        ids = [r.student_id for r in records]
        return cls(
            records,
            ids,
            active[kind_of],
            window.astype(np.int64)[kind_of],
            groups.subset(kind_of),
        )

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Each student's row. Built when first asked (half a second for a million students): a
        worker judging all its students on a first day has no use for it."""
        return dict(zip(self.student_ids, range(len(self.student_ids)), strict=True))

    def same_records(self, records: Sequence[RosterRecord]) -> bool:
        """Whether these are exactly the roster's records, in order."""
        return _same_objects(self.records, records)

    def holds_at(self, records: Sequence[RosterRecord], at: int) -> bool:
        """Whether these records are the roster's rows from `at` on (a slice of it)."""
        return at >= 0 and _same_objects(self.records[at : at + len(records)], records)

    def rows(self, start: int, stop: int) -> RosterColumns:
        """The columns of rows start to stop (group keys unchanged: a code may then have nobody)."""
        return RosterColumns(
            self.records[start:stop],
            self.student_ids[start:stop],
            self.active[start:stop],
            self.window[start:stop],
            self.groups.subset(np.arange(start, stop)),
        )


@dataclass(frozen=True, slots=True)
class _Sweep:
    """The columnar part of a day's judgement (rows follow the comparison list)."""

    roster: RosterColumns
    bench: DayBenchmarks
    bench_row: NDArray[np.int64]  # row in bench, -1 for a student not compared (not active)
    concerned: NDArray[np.bool_]  # a rule may hold today: judge one by one
    last: NDArray[np.int64]  # last engaged day on or before the day judged (-1: none)
    attended: NDArray[np.int64]  # sessions attended and expected over the attendance window
    expected: NDArray[np.int64]
    silent: NDArray[np.bool_]  # no engagement for long enough to raise (before exemptions)
    low: NDArray[np.bool_]  # low engagement holds today
    low_attendance: NDArray[np.bool_]  # low attendance holds today


_BAND_NAMES = [b.value for b in (Band.HIGH, Band.GOOD, Band.PARTIAL, Band.LOW, Band.NONE)]
_MODE_VALUES = {mode: mode.value for mode in StudyMode}  # Enum.value is a slow descriptor


def round_tenths(values: NDArray[np.float64]) -> list[float]:
    """[round(v, 1) for v in values], vectorised: numpy's rounding (x10, to even, /10) agrees with
    Python's correctly rounded one except where x10 lands within a hair of a half, and those few
    values are rounded by Python."""
    result = np.round(values, 1)
    scaled = values * 10
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    for i in near_half.tolist():
        result[i] = round(float(values[i]), 1)
    rounded: list[float] = result.tolist()
    return rounded


def _score_columns(day: date, bench: DayBenchmarks, rows: NDArray[np.int64]) -> ScoreColumns:
    """A million rows: each column is one map over Python lists, sharing the band and basis strings."""
    if not len(rows):
        return ScoreColumns.empty(day)
    bases = [g.basis for g in bench.groups]
    if np.array_equal(rows, np.arange(len(rows))):  # every member of this worker, in order
        student_ids = list(bench.student_ids[: len(rows)])
    else:
        student_ids = list(map(bench.student_ids.__getitem__, rows.tolist()))
    return ScoreColumns(
        day,
        student_ids,
        round_tenths(bench.score[rows]),
        list(map(_BAND_NAMES.__getitem__, bench.band_code[rows].tolist())),
        list(map(bases.__getitem__, bench.group_of[rows].tolist())),
        bench.overall_percentile[rows].tolist(),
    )
