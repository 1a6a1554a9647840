"""The evaluator: on the clock, judge every rostered student of the owned partitions, day by day.

Alerts come from the roster and the clock, not from incoming events: a student who does nothing sends
nothing, and is still judged. Pure: the Faust timer (and `lde quality`) feed it views of the students
and persist the rule memory it keeps (open episodes, low-engagement streaks) so that cool-down and
episodes survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from itertools import compress
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.activity import ATTENDED, N_SOURCES
from models.activity_columns import DayFigures, day_figures
from models.alerts import Rule
from models.benchmarks import ComparisonFeatures, MemberFigures, benchmark_coded
from models.comparative_rules import half_attendance_chance, low_attendance
from models.comparison import GroupStats
from models.engagement import EngagementSettings
from models.evaluation import StudentMemory
from models.explanations import Explanation
from models.roster import RosterRecord
from models.rules import RuleSettings, exempt, window_overlaps_absence
from streams.day_result import DayResult, StudentView
from streams.gc_pause import collector_paused
from streams.judgement import StudentJudgement, recent_low_days
from streams.sweep import RosterColumns, Sweep, same_objects, score_columns


class Evaluator(StudentJudgement):
    """Judges one day at a time. Not thread-safe; one instance per worker.

    The sweep is columnar: every student's window counts, benchmark and rule preconditions are
    computed for everyone at once (models.activity.ActivityColumns, models.benchmarks); only the
    students a rule may concern (silent long enough, low today, low attendance, or with an open
    episode, a streak or a cool-down in their memory) are then judged one by one, by the methods
    of StudentJudgement (streams.judgement).
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
        if comparison is None or same_objects(views, comparison):
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
        result.scores = score_columns(day, sweep.bench, bench_rows[bench_rows >= 0])
        return result

    def _shortcut(
        self,
        memory: StudentMemory | None,
        day: date,
        row: int,
        sweep: Sweep,
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
        low_days = recent_low_days(memory.low_days, day)
        run_far_below = memory.low_run_far_below
        if exempt(view.record, view.absences, day, self.rules) is not None or window_overlaps_absence(
            view.absences, day, int(sweep.roster.window[row])
        ):
            # As the full judgement: no streak while the window holds days away.
            streak, run_far_below = 0, False
        elif monitoring_start is not None and (day - monitoring_start).days + 1 < sweep.roster.window[row]:
            streak = memory.low_streak  # the window still reaches before monitoring began: the streak waits
        else:
            streak, low_days, run_far_below, raise_now = self._low_step(
                memory, day, bool(sweep.low[row]), bool(sweep.far_below[row])
            )
            if raise_now:
                return False
        if (
            streak != memory.low_streak
            or low_days != memory.low_days
            or run_far_below != memory.low_run_far_below
        ):
            memory.low_streak = streak
            memory.low_days = low_days
            memory.low_run_far_below = run_far_below
            sid = view.record.student_id
            result.changed.add(sid)
            if memory.is_empty():
                self.memory.pop(sid, None)
            else:
                self.memory[sid] = memory
        return True

    def _unchanged(self, memory: StudentMemory, day: date, row: int, sweep: Sweep) -> bool:
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
        e = self.engagement
        return day_figures(
            [v.activity for v in views],
            day.toordinal(),
            lengths,
            e.attendance_days,
            offered_days=e.offered_days,
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
                [v.activity for v in views],
                day.toordinal(),
                roster.window,
                e.attendance_days,
                offered_days=e.offered_days,
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
    ) -> Sweep:
        """Everyone's window counts, benchmarks and rule preconditions for the day, in columns."""
        e = self.engagement
        ordinal = day.toordinal()
        n = len(everyone)
        roster = self._roster_columns([v.record for v in everyone])
        if figures is None:
            figures = day_figures(
                [v.activity for v in everyone],
                ordinal,
                roster.window,
                e.attendance_days,
                offered_days=e.offered_days,
            )
        totals, attended, expected, last = figures.window, figures.attended, figures.expected, figures.last
        rate = np.divide(attended, expected, out=np.ones(n), where=expected > 0)
        low_attendance_today = (expected >= e.attendance_min_expected) & (rate < e.attendance_threshold)
        for row in np.flatnonzero(low_attendance_today).tolist():
            chance = half_attendance_chance(int(attended[row]), int(expected[row]))
            low_attendance_today[row] = chance <= e.attendance_max_chance
        # Calendar days: never fewer than the days counted (days away stop the clock), so no silence
        # is missed; the full judgement counts them.
        threshold = np.where(
            roster.part_time, self.rules.part_time_no_engagement_days, self.rules.no_engagement_days
        )
        silent = (last < 0) | (ordinal - last >= threshold)

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
        far_below = np.zeros(n, np.bool_)
        far_below[members] = bench.far_below(e.low_alert_fraction)[: len(members)]
        far_below &= low
        concerned = roster.active & (silent | low | low_attendance_today)
        return Sweep(
            roster,
            bench,
            bench_row,
            concerned,
            last,
            attended,
            expected,
            silent,
            low,
            low_attendance_today,
            far_below,
        )


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
