"""The comparative rules: low engagement, low attendance, re-engagement and escalation, as decisions.

Pure: each rule takes a student's `StudentBenchmark` (or their attendance totals) and returns a
decision carrying the figures behind it, so the alert text (`models.explanations`) and the stored
fields always say the same thing. The no-engagement rule and the exemptions are in `models.rules`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from models.activity import ATTENDANCE, ATTENDED, StudentActivity
from models.comparison import Basis, StudentBenchmark

#: Rule names of the comparative rules (the values the alert `Rule` enum uses for them).
NO_ENGAGEMENT = "no_engagement"
LOW_ENGAGEMENT = "low_engagement"
LOW_ATTENDANCE = "low_attendance"


@dataclass(frozen=True, slots=True)
class LowEngagementDecision:
    """Whether low engagement holds today, with the figures behind it."""

    holds: bool
    activity_index: float
    group_median_index: float
    below: float
    overall_percentile: float
    basis: Basis
    group_size: int
    reason: str
    far_below: bool = False  # holds, and under the alert line (see `low_engagement`'s alert_fraction)


def low_engagement(
    bench: StudentBenchmark,
    bottom_share: float = 0.10,
    median_fraction: float = 0.5,
    min_group_size: int = 8,
    skip_inactive: bool = True,
    alert_fraction: float = 0.35,
) -> LowEngagementDecision:
    """Holds when the student is among the least engaged 10% of the group AND does under half the
    activity of the group's typical (median) student.

    The second condition is what keeps a healthy group quiet: someone is always at the bottom, but in
    a group of similar students the bottom is not far below the middle. "Among the least engaged 10%"
    means fewer than 10% of the group have less activity, so tied students at the very bottom all
    count. Does not hold in a group smaller than `min_group_size` (too few to compare fairly) nor, with
    `skip_inactive`, for a student with no activity at all: the no-engagement rule speaks for them.
    The caller raises only after K consecutive days: see `consecutive_days`.

    `far_below`: it holds and the activity is also under `alert_fraction` of the typical student's.
    A day under half counts towards a run; the run raises only once a day of it is this far below
    (see `low_run_raises`). Students whose habits are a little over half the typical dip under half
    now and then; a student who is really low falls much further.
    """
    median = bench.group.index.median or 0.0
    figures: dict[str, Any] = {
        "activity_index": bench.activity_index,
        "group_median_index": median,
        "below": bench.below,
        "overall_percentile": bench.overall_percentile,
        "basis": bench.basis,
        "group_size": bench.group.n,
    }
    if bench.group.n < min_group_size:
        return LowEngagementDecision(False, **figures, reason="comparison group too small")
    if skip_inactive and not bench.features.has_activity:
        return LowEngagementDecision(False, **figures, reason="no activity at all (no-engagement rule)")
    in_bottom = bench.below < bottom_share
    far_below = bench.activity_index < median_fraction * median
    if in_bottom and far_below:
        reason = "in the bottom of the group and under half its typical activity"
    elif in_bottom:
        reason = "in the bottom of the group but not far below its typical activity"
    else:
        reason = "not in the bottom of the group"
    holds = in_bottom and far_below
    deep = holds and bench.activity_index < alert_fraction * median
    return LowEngagementDecision(holds, **figures, reason=reason, far_below=deep)


def consecutive_days(previous: int, holds: bool, k: int = 3) -> tuple[int, bool]:
    """New consecutive-day count and whether to raise today: raise on exactly the K-th day in a row.

    A day that does not hold resets the count to 0; a later run raises again on its own K-th day (its
    episode starts count - 1 days before today).
    """
    count = previous + 1 if holds else 0
    return count, count == k


def low_in_week_before(low_days: Iterable[date], day: date) -> bool:
    """Whether low engagement held on at least one day of the week before this one (day-13 to day-7).

    A full-time window is a week: one poor week (a cold, a deadline elsewhere) puts an engaged student
    under half the typical activity for a few days in a row, as the windows of those days share most of
    their days. Low last week as well is a pattern, not one week's chance.
    """
    return any(7 <= (day - low).days <= 13 for low in low_days)


def low_run_raises(count: int, k: int, confirmed: bool, confirmed_yesterday: bool) -> bool:
    """Whether a run of `count` consecutive low days raises today: on the first day the run is at
    least K days long and confirmed (see `low_in_week_before`, and `run_far_below`; always confirmed
    when those checks are off, which is raising on exactly the K-th day, as `consecutive_days`)."""
    return count >= k and confirmed and not (count - 1 >= k and confirmed_yesterday)


def run_far_below(count: int, far_below_today: bool, far_below_before: bool) -> bool:
    """Whether the run of `count` consecutive low days ending today has had a day under the alert
    line (`LowEngagementDecision.far_below`): today, or an earlier day of the same run
    (`far_below_before`, what the caller remembered yesterday; ignored when the run starts today).

    Hysteresis: under half the typical activity starts and keeps a run, but only a run that has
    fallen further raises. Students whose habits are a little over half the typical (the simulator's
    at-risk line is half) dip just under half in an unlucky week; the alert says how far below.
    """
    return count > 0 and (far_below_today or (count > 1 and far_below_before))


@dataclass(frozen=True, slots=True)
class AttendanceDecision:
    """Whether low attendance holds, with the figures behind it."""

    holds: bool
    attended: int
    expected: int
    rate: float | None
    enough_sessions: bool
    days: int
    chance: float = 1.0  # see half_attendance_chance
    under_threshold: bool = False  # the rate alone is under the threshold (chance aside)

    @property
    def recovered(self) -> bool:
        """Enough sessions expected and at least the threshold attended: an open episode closes."""
        return self.enough_sessions and not self.under_threshold


@lru_cache(maxsize=1 << 12)  # few distinct (attended, expected) pairs; a sweep asks thousands of times
def half_attendance_chance(attended: int, expected: int) -> float:
    """How likely a student who attends exactly half their sessions is to attend `attended` or fewer
    of `expected`: the one-sided binomial tail P(X <= attended | n = expected, p = 1/2).

    Exact (integer sums, one division), so the columnar sweep and this reference give the same float.
    With 4 sessions: 1 attended has chance 5/16 (31%), none 1/16 (6%); with 10: 4 has 38%, 3 has 17%.
    """
    if expected <= 0:
        return 1.0
    attended = max(0, min(attended, expected))
    return sum(math.comb(expected, k) for k in range(attended + 1)) / 2**expected


def attendance_totals(activity: StudentActivity | None, last_day: int, days: int = 14) -> tuple[int, int]:
    """(attended, expected) sessions over the `days` local days ending on `last_day` (an ordinal)."""
    if activity is None:
        return 0, 0
    totals = activity.window_totals(last_day, days)
    return totals[ATTENDED], totals[ATTENDANCE]


def low_attendance(
    attended: int,
    expected: int,
    threshold: float = 0.5,
    min_expected: int = 4,
    days: int = 14,
    max_chance: float = 0.2,
) -> AttendanceDecision:
    """Holds when under half (`threshold`) of the sessions expected were attended, with at least
    `min_expected` sessions expected: missing 2 of 3 sessions is too little evidence to alert on.
    Exactly half attended does not hold.

    And the shortfall must be more than chance: a student who attends half their sessions would attend
    this few with a chance of at most `max_chance` (see `half_attendance_chance`). With few sessions a
    low rate is weak evidence: an engaged part-time student with 4 sessions in 14 days attends only
    1 of them now and then, so 1 of 4 waits for more sessions while 0 of 4 holds; 3 of 10 holds, 4 of
    10 does not yet. `max_chance=1` is the plain rate test.
    """
    rate = attended / expected if expected > 0 else None
    enough = expected >= min_expected
    chance = half_attendance_chance(attended, expected)
    under = rate is not None and rate < threshold
    holds = enough and under and chance <= max_chance
    return AttendanceDecision(holds, attended, expected, rate, enough, days, chance, under)


@dataclass(frozen=True, slots=True)
class ReEngagement:
    """Whether an open episode closes today, and why (for the tutor's view of the loop closing)."""

    closes: bool
    reason: str


def re_engaged(
    rule: str,
    *,
    has_activity: bool,
    score: float | None = None,
    low_threshold: float = 40.0,
    attendance: AttendanceDecision | None = None,
) -> ReEngagement:
    """Does an open episode of `rule` close today?

    - no engagement: closes on any activity again.
    - low engagement: closes when the student is active and their score is back at or above the low
      threshold (the Partial band), i.e. no longer among the least engaged.
    - low attendance: closes when enough sessions were expected and at least half were attended (a
      shortfall too small to raise on does not close an open episode either).
    """
    name = str(rule)
    if name == NO_ENGAGEMENT:
        if has_activity:
            return ReEngagement(True, "activity recorded again")
        return ReEngagement(False, "still no activity")
    if name == LOW_ENGAGEMENT:
        if has_activity and score is not None and score >= low_threshold:
            return ReEngagement(True, f"score back to {score:.0f} (low is under {low_threshold:.0f})")
        return ReEngagement(False, "engagement still low")
    if name == LOW_ATTENDANCE:
        if attendance is not None and attendance.recovered:
            return ReEngagement(True, f"attended {attendance.attended} of {attendance.expected} sessions")
        return ReEngagement(False, "attendance still low or too few sessions to tell")
    raise ValueError(f"unknown rule {rule!r}")


def escalates(raised_on: date, day: date, already_escalated: bool, after_days: int = 14) -> bool:
    """True once for an episode still open `after_days` days after it was raised.

    The flag makes it fire once even if a day is evaluated twice, and still fire if the exact day was
    missed (a catch-up evaluation the day after).
    """
    return not already_escalated and (day - raised_on).days >= after_days
