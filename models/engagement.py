"""The engagement model: window features, cohort benchmarks, score and band, and the comparative rules.

Pure: no I/O, no clock. The evaluator builds one `Member` per rostered student for a day, calls
`benchmark_day` once, and judges each student from the returned `StudentBenchmark` with the rule
functions below. Every rule returns a decision carrying its figures, so the alert text and the stored
fields always say the same thing.

Comparisons are fair by construction: a student is compared with students on the same programme, in
the same year and mode of study (their cohort); a cohort too small to compare with falls back to the
whole programme, then to the school, and the result says which was used.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from models.activity import ATTENDANCE, ATTENDED, N_SOURCES, StudentActivity
from models.events import SOURCES, Source
from models.roster import StudyMode

#: Which comparison group a benchmark used, narrowest first.
Basis = Literal["cohort", "programme", "school"]

#: Rule names of the comparative rules (the values the alert `Rule` enum uses for them).
NO_ENGAGEMENT = "no_engagement"
LOW_ENGAGEMENT = "low_engagement"
LOW_ATTENDANCE = "low_attendance"

_COUNT_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s is not Source.ATTENDANCE)


# -- settings ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Weights:
    """How much each source counts towards the score (relative; only the ratios matter).

    Defaults: attendance 3, VLE 2, e-resources 1.5, library 1, PC logons 1, remote 1, print 0.5.
    Attendance is weighted highest because being in taught sessions is the strongest everyday sign of
    engagement; the VLE comes next as the main place teaching materials live; printing is weak evidence
    (many students never print) and counts least.
    """

    vle: float = 2.0
    library: float = 1.0
    eresource: float = 1.5
    print: float = 0.5
    pc_logon: float = 1.0
    remote: float = 1.0
    attendance: float = 3.0

    def __post_init__(self) -> None:
        for source in SOURCES:
            if self.of(source) < 0:
                raise ValueError(f"weight for {source.value} must not be negative")

    def of(self, source: Source | str) -> float:
        """The weight of one source."""
        value: float = getattr(self, Source(source).value)
        return value


class Band(StrEnum):
    """Engagement bands shown to tutors."""

    HIGH = "High"
    GOOD = "Good"
    PARTIAL = "Partial"
    LOW = "Low"
    NONE = "None"


@dataclass(frozen=True, slots=True)
class BandThresholds:
    """Score cut-offs for the bands (see `band`)."""

    high: float = 80.0
    good: float = 60.0
    partial: float = 40.0

    def __post_init__(self) -> None:
        if not 0 <= self.partial <= self.good <= self.high <= 100:
            raise ValueError("band thresholds must satisfy 0 <= partial <= good <= high <= 100")


@dataclass(frozen=True, slots=True)
class EngagementSettings:
    """Every parameter of the model in one place, with the defaults the design names."""

    full_time_window_days: int = 7
    part_time_window_days: int = 21
    min_cohort_size: int = 8
    weights: Weights = field(default_factory=Weights)
    bands: BandThresholds = field(default_factory=BandThresholds)
    low_bottom_share: float = 0.10
    low_median_fraction: float = 0.5
    low_consecutive_days: int = 3
    attendance_days: int = 14
    attendance_threshold: float = 0.5
    attendance_min_expected: int = 4
    attendance_max_chance: float = 0.2
    low_previous_week: bool = True
    escalate_after_days: int = 14


# -- per-student window features ---------------------------------------------------------------------
def window_days(mode: StudyMode | str, full_time: int = 7, part_time: int = 21) -> int:
    """Window length in local days: part-time students get a longer one, as they study less often."""
    return part_time if StudyMode(mode) is StudyMode.PART_TIME else full_time


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """A student's activity over their window.

    counts: one count per source in `SOURCES` order; the attendance entry is the number of sessions
    expected (every attendance record). attended: sessions attended (present or late).
    """

    counts: tuple[int, ...]
    attended: int
    window_days: int

    @classmethod
    def from_totals(cls, totals: Sequence[int], window_days: int) -> WindowFeatures:
        """From a `StudentActivity.window_totals` row (sources, then attended)."""
        return cls(tuple(int(v) for v in totals[:N_SOURCES]), int(totals[ATTENDED]), window_days)

    @classmethod
    def of(
        cls,
        *,
        window_days: int = 7,
        attended: int = 0,
        **counts: int,
    ) -> WindowFeatures:
        """Convenience constructor by source name (unnamed sources are 0): `WindowFeatures.of(vle=3)`."""
        unknown = set(counts) - {s.value for s in SOURCES}
        if unknown:
            raise ValueError(f"unknown sources: {sorted(unknown)}")
        return cls(tuple(counts.get(s.value, 0) for s in SOURCES), attended, window_days)

    def count(self, source: Source | str) -> int:
        """The count of one source (for attendance: sessions expected)."""
        return self.counts[SOURCES.index(Source(source))]

    @property
    def expected(self) -> int:
        return self.counts[ATTENDANCE]

    @property
    def attendance_rate(self) -> float | None:
        """Attended / expected, or None when no session was expected (nothing to judge)."""
        if self.expected <= 0:
            return None
        return min(1.0, self.attended / self.expected)

    @property
    def has_activity(self) -> bool:
        """Any sign of engagement: a non-attendance event or an attended session."""
        return self.attended > 0 or any(self.count(s) for s in _COUNT_SOURCES)

    def value(self, source: Source | str) -> float | None:
        """What is compared for a source: the count, or the attendance rate (None: nothing expected)."""
        if Source(source) is Source.ATTENDANCE:
            return self.attendance_rate
        return float(self.count(source))


def student_features(activity: StudentActivity | None, last_day: int, length: int) -> WindowFeatures:
    """Features over the `length` local days ending on `last_day` (an ordinal); no state means zeros."""
    if activity is None:
        return WindowFeatures((0,) * N_SOURCES, 0, length)
    return WindowFeatures.from_totals(activity.window_totals(last_day, length), length)


# -- statistics --------------------------------------------------------------------------------------
def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Quantile by linear interpolation between closest ranks (numpy's default, Excel QUARTILE.INC).

    Chosen because it is the one spreadsheet users get: [1, 2, 3, 4] has q1 1.75, median 2.5, q3 3.25.
    """
    if not sorted_values:
        raise ValueError("quantile of no values")
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def percentile_rank(sorted_values: Sequence[float], value: float) -> float:
    """Percentile rank 0-100 with the mid-rank convention: 100 * (below + half of equal) / n.

    Ties share one rank: in [0, 1, 1, 3] the two 1s both get 50, the 0 gets 12.5 and the 3 gets 87.5.
    A group's ranks therefore always average exactly 50, and a group where everyone is equal puts
    everyone at 50: tied students are neither favoured nor penalised.
    """
    n = len(sorted_values)
    if n == 0:
        raise ValueError("percentile rank in an empty group")
    below = bisect_left(sorted_values, value)
    equal = bisect_right(sorted_values, value) - below
    return 100.0 * (below + 0.5 * equal) / n


def share_below(sorted_values: Sequence[float], value: float) -> float:
    """Fraction of the group with strictly less than `value` (ties at the bottom count as bottom)."""
    if not sorted_values:
        return 0.0
    return bisect_left(sorted_values, value) / len(sorted_values)


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Summary of one measure over a comparison group (None figures when nobody has a value)."""

    n: int
    mean: float | None
    median: float | None
    q1: float | None
    q3: float | None
    in_use: bool

    @classmethod
    def of(cls, values: Iterable[float]) -> SourceStats:
        ordered = sorted(values)
        if not ordered:
            return cls(0, None, None, None, None, False)
        return cls(
            n=len(ordered),
            mean=math.fsum(ordered) / len(ordered),  # exactly rounded: the same on every Python
            median=quantile(ordered, 0.5),
            q1=quantile(ordered, 0.25),
            q3=quantile(ordered, 0.75),
            in_use=ordered[-1] > 0,
        )


# -- benchmarks --------------------------------------------------------------------------------------
class Member(NamedTuple):
    """One student to benchmark on a day."""

    student_id: str
    cohort: tuple[str, int, str]
    school: str
    features: WindowFeatures


@dataclass(frozen=True, slots=True)
class GroupStats:
    """One comparison group's figures.

    sources: per source (attendance: over attendance rates of members with a session expected).
    index: the activity index (see `activity_index`). A source is in use when at least one member has
    a value above 0; a source nobody uses tells nothing about anyone and is left out of the comparison.
    """

    basis: Basis
    key: tuple[str | int, ...]
    n: int
    sources: Mapping[str, SourceStats]
    index: SourceStats

    @property
    def in_use(self) -> frozenset[str]:
        return frozenset(name for name, stats in self.sources.items() if stats.in_use)


@dataclass(frozen=True, slots=True)
class StudentBenchmark:
    """A student's standing in their comparison group on one day.

    percentiles: per source percentile rank (attendance: of the attendance rate); None when the source
    is not compared (nobody in the group uses it, or no session was expected of this student).
    overall_percentile: percentile rank of the activity index. below: share of the group with a lower
    activity index. score/band: see `score` and `band`; the score is 0 for a student with no
    activity at all (band None), so the number never looks better than the band.
    """

    student_id: str
    features: WindowFeatures
    group: GroupStats
    percentiles: Mapping[str, float | None]
    activity_index: float
    overall_percentile: float
    below: float
    score: float
    band: Band

    @property
    def basis(self) -> Basis:
        return self.group.basis


def activity_index(features: WindowFeatures, means: Mapping[str, float | None], weights: Weights) -> float:
    """Weighted activity relative to the group: 1.0 is an average student, 0.5 half of that.

    Each source in use is divided by the group mean so that hundreds of VLE clicks do not drown out a
    couple of library loans, then the ratios are averaged with the weights. Sources without a group
    mean (not in use) and attendance for a student with no session expected are left out.
    """
    total = 0.0
    weight_sum = 0.0
    for source in SOURCES:
        mean = means.get(source.value)
        value = features.value(source)
        weight = weights.of(source)
        if mean is None or mean <= 0 or value is None or weight <= 0:
            continue
        total += weight * value / mean
        weight_sum += weight
    return total / weight_sum if weight_sum else 0.0


def score(percentiles: Mapping[str, float | None], weights: Weights) -> float | None:
    """Score 0-100: the weighted mean of the student's percentile ranks over the compared sources.

    Sources with no percentile (not compared) are left out of the weighting rather than counted as 0,
    so nobody is marked down for a service their whole group does not use. None when nothing compares.
    """
    total = 0.0
    weight_sum = 0.0
    for name, rank in percentiles.items():
        weight = weights.of(name)
        if rank is None or weight <= 0:
            continue
        total += weight * rank
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def band(score: float | None, has_activity: bool, thresholds: BandThresholds | None = None) -> Band:
    """The band a tutor sees, in plain words (default cut-offs):

    - None: no activity of any kind in the window (no VLE, library, e-resource, print, logon or remote
      use, and no session attended), whatever the comparison says.
    - High: score 80 or more, i.e. more engaged than about four in five of comparable students.
    - Good: 60 up to 80, above the middle of the group.
    - Partial: 40 up to 60, around the middle of the group.
    - Low: under 40, less engaged than most comparable students.
    """
    limits = thresholds or BandThresholds()
    if not has_activity or score is None:
        return Band.NONE
    if score >= limits.high:
        return Band.HIGH
    if score >= limits.good:
        return Band.GOOD
    if score >= limits.partial:
        return Band.PARTIAL
    return Band.LOW


#: A comparison group: its level and its key at that level.
GroupId = tuple[Basis, tuple[str | int, ...]]
_LEVELS: tuple[Basis, ...] = ("cohort", "programme", "school")


def _group_key(member: Member, basis: Basis) -> tuple[str | int, ...]:
    if basis == "cohort":
        return member.cohort
    if basis == "programme":
        return (member.cohort[0],)
    return (member.school,)


def _pools(members: Iterable[Member]) -> dict[GroupId, list[Member]]:
    """Everyone sharing each cohort, programme and school key."""
    pools: dict[GroupId, list[Member]] = {}
    for member in members:
        for level in _LEVELS:
            pools.setdefault((level, _group_key(member, level)), []).append(member)
    return pools


def choose_groups(members: Sequence[Member], min_cohort_size: int = 8) -> dict[str, GroupId]:
    """Each student's comparison group: the cohort, else the programme, else the school.

    A group is wide enough with at least `min_cohort_size` students; the school is used whatever its
    size, as there is nothing wider that is still a fair comparison. A wider group mixes years and
    modes; part-time windows are three times longer for that reason, so counts stay roughly comparable.
    """
    return _choose(members, _pools(members), min_cohort_size)


def _choose(
    members: Iterable[Member], pools: Mapping[GroupId, list[Member]], min_cohort_size: int
) -> dict[str, GroupId]:
    chosen: dict[str, GroupId] = {}
    for member in members:
        for level in _LEVELS:
            group = (level, _group_key(member, level))
            if len(pools[group]) >= min_cohort_size or level == "school":
                chosen[member.student_id] = group
                break
    return chosen


def benchmark_day(
    members: Sequence[Member],
    weights: Weights | None = None,
    min_cohort_size: int = 8,
    thresholds: BandThresholds | None = None,
) -> dict[str, StudentBenchmark]:
    """Benchmark every student of one day against their comparison group. Empty input gives {}.

    A student compared at programme level is compared with the whole programme (every year and mode),
    not only with the others that fell back. Groups are built from the members given, so pass everyone
    judged that day: a student missing from the list is missing from everyone's comparison.
    """
    weights = weights or Weights()
    pools = _pools(members)
    chosen = _choose(members, pools, min_cohort_size)
    results: dict[str, StudentBenchmark] = {}
    for group in sorted(set(chosen.values()), key=repr):
        results.update(_benchmark_group(group, pools[group], chosen, weights, thresholds))
    return results


def _benchmark_group(
    group_id: GroupId,
    pool: Sequence[Member],
    chosen: Mapping[str, GroupId],
    weights: Weights,
    thresholds: BandThresholds | None,
) -> dict[str, StudentBenchmark]:
    values: dict[str, list[float]] = {}
    for source in SOURCES:
        column = [member.features.value(source) for member in pool]
        values[source.value] = sorted(v for v in column if v is not None)
    stats = {name: SourceStats.of(column) for name, column in values.items()}
    means = {name: s.mean if s.in_use else None for name, s in stats.items()}
    indices = {m.student_id: activity_index(m.features, means, weights) for m in pool}
    index_sorted = sorted(indices.values())
    group = GroupStats(group_id[0], group_id[1], len(pool), stats, SourceStats.of(index_sorted))
    results: dict[str, StudentBenchmark] = {}
    for member in pool:
        if chosen[member.student_id] != group_id:
            continue
        percentiles: dict[str, float | None] = {}
        for source in SOURCES:
            value = member.features.value(source)
            in_use = stats[source.value].in_use
            percentiles[source.value] = (
                percentile_rank(values[source.value], value) if in_use and value is not None else None
            )
        features = member.features
        raw = score(percentiles, weights)
        results[member.student_id] = StudentBenchmark(
            student_id=member.student_id,
            features=features,
            group=group,
            percentiles=percentiles,
            activity_index=indices[member.student_id],
            overall_percentile=percentile_rank(index_sorted, indices[member.student_id]),
            below=share_below(index_sorted, indices[member.student_id]),
            score=raw if raw is not None and features.has_activity else 0.0,
            band=band(raw, features.has_activity, thresholds),
        )
    return results


# -- rules -------------------------------------------------------------------------------------------
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


def low_engagement(
    bench: StudentBenchmark,
    bottom_share: float = 0.10,
    median_fraction: float = 0.5,
    min_group_size: int = 8,
    skip_inactive: bool = True,
) -> LowEngagementDecision:
    """Holds when the student is among the least engaged 10% of the group AND does under half the
    activity of the group's typical (median) student.

    The second condition is what keeps a healthy group quiet: someone is always at the bottom, but in
    a group of similar students the bottom is not far below the middle. "Among the least engaged 10%"
    means fewer than 10% of the group have less activity, so tied students at the very bottom all
    count. Does not hold in a group smaller than `min_group_size` (too few to compare fairly) nor, with
    `skip_inactive`, for a student with no activity at all: the no-engagement rule speaks for them.
    The caller raises only after K consecutive days: see `consecutive_days`.
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
    return LowEngagementDecision(in_bottom and far_below, **figures, reason=reason)


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
    least K days long and confirmed (see `low_in_week_before`; always confirmed when that check is off,
    which is raising on exactly the K-th day, as `consecutive_days`)."""
    return count >= k and confirmed and not (count - 1 >= k and confirmed_yesterday)


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


# -- explanations ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Explanation:
    """A sentence for the tutor and the same figures as fields (for storage and dashboards)."""

    text: str
    fields: dict[str, Any]


_LABELS: dict[str, tuple[str, str, str]] = {
    Source.VLE.value: ("VLE activity", "event", "events"),
    Source.LIBRARY.value: ("library", "loan", "loans"),
    Source.ERESOURCE.value: ("e-resources", "access", "accesses"),
    Source.PRINT.value: ("printing", "job", "jobs"),
    Source.PC_LOGON.value: ("PC logons", "logon", "logons"),
    Source.REMOTE.value: ("remote access", "session", "sessions"),
}

_BASIS_WORDS: dict[str, str] = {"cohort": "cohort", "programme": "programme", "school": "school"}


def _round(value: float, places: int = 1, scale: int = 1) -> float:
    """value * scale rounded halves up, as people do (Python's round(3.25, 1) gives 3.2).

    Rounds the decimal text of the value, so 0.285 as a percentage is 28.5, not 28.499999999999996.
    Only a value within a hair of a half needs that decimal arithmetic: anywhere else the float
    product rounds the same way, and an integer divided by 10**places is the nearest float to the
    decimal result (a first monitoring day explains ~100,000 alerts, so this is a hot path).
    """
    if (isinstance(value, int) or value.is_integer()) and abs(value) < 2**43:  # exact, also x100
        return float(value * scale)
    unit = 10**places
    scaled = value * scale * unit
    if 0 <= scaled < 1e9:  # float error under 1e-6 here
        whole = math.floor(scaled)
        fraction = scaled - whole
        if abs(fraction - 0.5) > 1e-6:
            return (whole + (fraction > 0.5)) / unit
    return _round_decimal(value, places, scale)


@lru_cache(maxsize=1 << 12)
def _round_decimal(value: float, places: int, scale: int) -> float:
    step = Decimal(1).scaleb(-places)
    return float((Decimal(repr(value)) * scale).quantize(step, rounding=ROUND_HALF_UP))


def _number(value: float) -> str:
    """A figure as a tutor reads it: whole numbers plain, others to one decimal place."""
    rounded = _round(value)
    return f"{rounded:.0f}" if rounded == int(rounded) else f"{rounded:.1f}"


def _percent(rate: float) -> str:
    """A rate as a whole percentage, halves rounded up (62.5% shows as 63%)."""
    return f"{_round(rate, 0, scale=100):.0f}%"


@dataclass(frozen=True, slots=True)
class _GroupWords:
    """What an explanation says of a group, the same for each of its students: per source in use
    (index, field prefix, label, singular, plural, average as stored, average as written), and
    attendance's average as stored and as written."""

    sources: tuple[tuple[int, str, str, str, str, float, str], ...]
    attendance_average: float | None
    attendance_words: str | None


_GROUP_WORDS: dict[int, tuple[GroupStats, _GroupWords]] = {}
_GROUP_WORDS_LIMIT = 10_000


def _group_words(group: GroupStats) -> _GroupWords:
    """The group's words, remembered by object (the entry holds the group, so its id stays its own)."""
    cached = _GROUP_WORDS.get(id(group))
    if cached is not None and cached[0] is group:
        return cached[1]
    sources = []
    for source in _COUNT_SOURCES:
        stats = group.sources[source.value]
        if stats.in_use and stats.mean is not None:
            label, one, many = _LABELS[source.value]
            average = (_round(stats.mean, 1), _number(stats.mean))
            sources.append((SOURCES.index(source), source.value, label, one, many, *average))
    mean = group.sources[Source.ATTENDANCE.value].mean
    words = _GroupWords(
        tuple(sources),
        _round(mean, 1, scale=100) if mean is not None else None,
        _percent(mean) if mean is not None else None,
    )
    # A million-student day has a few thousand groups; each entry keeps its group alive (about 2 KB
    # with its words), so a running worker forgets earlier days' groups rather than hold months of them.
    if len(_GROUP_WORDS) >= _GROUP_WORDS_LIMIT:
        _GROUP_WORDS.clear()
    _GROUP_WORDS[id(group)] = (group, words)
    return words


def explain(bench: StudentBenchmark) -> Explanation:
    """The student's figures against their group, e.g. "VLE activity 3 events in the last 7 days against
    a programme average of 41; attendance 1 of 5 sessions (20%) against 84%."

    Lists every source the group uses, then attendance; sources nobody uses are left out.
    """
    features = bench.features
    group = bench.group
    words = _group_words(group)
    counts = features.counts
    percentiles = bench.percentiles
    fields: dict[str, Any] = {
        "basis": group.basis,
        "group_size": group.n,
        "window_days": features.window_days,
        "score": _round(bench.score, 1),
        "band": bench.band.value,
        "overall_percentile": _round(bench.overall_percentile, 1),
    }
    parts: list[str] = []
    lead = f" in the last {features.window_days} days against a {_BASIS_WORDS[group.basis]} average of "
    for index, name, label, one, many, average, average_words in words.sources:
        count = counts[index]
        fields[f"{name}_count"] = count
        fields[f"{name}_average"] = average
        fields[f"{name}_percentile"] = _rounded(percentiles[name])
        against = lead if not parts else " against "
        parts.append(f"{label} {count} {one if count == 1 else many}{against}{average_words}")
    attended, expected = features.attended, counts[ATTENDANCE]
    fields["attended"] = attended
    fields["expected"] = expected
    rate = features.attendance_rate
    fields["attendance_rate"] = _round(rate, 1, scale=100) if rate is not None else None
    fields["attendance_average"] = words.attendance_average
    fields["attendance_percentile"] = _rounded(percentiles[Source.ATTENDANCE.value])
    if rate is not None:
        text = f"attendance {attended} of {expected} sessions ({_percent(rate)})"
        if words.attendance_words is not None:
            against = lead if not parts else " against "
            text += f"{against}{words.attendance_words}"
        elif not parts:
            text += f" in the last {features.window_days} days"
        parts.append(text)
    elif group.sources[Source.ATTENDANCE.value].n:
        parts.append("no sessions expected of this student")
    if not parts:
        parts.append(f"no activity recorded in the last {features.window_days} days")
    sentence = "; ".join(parts) + "."
    return Explanation(sentence[0].upper() + sentence[1:], fields)


def _rounded(value: float | None) -> float | None:
    return _round(value, 1) if value is not None else None


def explain_low_engagement(
    decision: LowEngagementDecision, bench: StudentBenchmark, days_in_a_row: int
) -> Explanation:
    """Alert text for low engagement: why, over how long, and the figures."""
    details = explain(bench)
    group = f"{_BASIS_WORDS[decision.basis]} ({decision.group_size} students)"
    median = decision.group_median_index
    share = _percent(decision.activity_index / median) if median > 0 else "0%"
    text = (
        f"Among the least engaged students of the {group} for {days_in_a_row} days in a row, with "
        f"{share} of the typical student's activity. {details.text}"
    )
    fields = {
        **details.fields,
        "days_in_a_row": days_in_a_row,
        "activity_index": _round(decision.activity_index, 3),
        "group_median_index": _round(decision.group_median_index, 3),
    }
    return Explanation(text, fields)


def explain_low_attendance(decision: AttendanceDecision, group_rate: float | None = None) -> Explanation:
    """Alert text for low attendance, e.g. "Attended 1 of 5 expected sessions (20%) in the last 14
    days, against 84% for comparable students."
    """
    rate = decision.rate if decision.rate is not None else 0.0
    text = (
        f"Attended {decision.attended} of {decision.expected} expected sessions ({_percent(rate)}) "
        f"in the last {decision.days} days"
    )
    if group_rate is not None:
        text += f", against {_percent(group_rate)} for comparable students"
    fields: dict[str, Any] = {
        "attended": decision.attended,
        "expected": decision.expected,
        "attendance_rate": _round(rate, 1, scale=100),
        "attendance_average": _round(group_rate, 1, scale=100) if group_rate is not None else None,
        "days": decision.days,
    }
    return Explanation(text + ".", fields)
