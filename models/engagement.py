"""The engagement model's parameters and its per-student measures: window features, score and band.

Pure: no I/O, no clock. The evaluator builds one `models.comparison.Member` per rostered student for a
day from `student_features`, compares everyone with `models.comparison.benchmark_day` (the reference;
`models.benchmarks` is the same in columns), and judges each student with `models.comparative_rules`;
`models.explanations` puts the figures in words. Every rule returns a decision carrying its figures,
so the alert text and the stored fields always say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from models.activity import ATTENDANCE, ATTENDED, COUNT_COLUMNS, N_SOURCES, NOT_OFFERED, StudentActivity
from models.events import SOURCES, Source
from models.roster import StudyMode

#: The sources counted as events (attendance is a rate of sessions attended, not a count).
COUNT_SOURCES: tuple[Source, ...] = tuple(s for s in SOURCES if s is not Source.ATTENDANCE)


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
    low_alert_fraction: float = 0.35  # a low run raises once a day of it is under this share of typical
    escalate_after_days: int = 14
    offered_days: int = 28  # a source unused this long is not offered to the student (see WindowFeatures)


# -- per-student window features ---------------------------------------------------------------------
def window_days(mode: StudyMode | str, full_time: int = 7, part_time: int = 21) -> int:
    """Window length in local days: part-time students get a longer one, as they study less often."""
    return part_time if StudyMode(mode) is StudyMode.PART_TIME else full_time


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """A student's activity over their window.

    counts: one count per source in `SOURCES` order; the attendance entry is the number of sessions
    expected (every attendance record). attended: sessions attended (present or late).

    A source is offered to the student when they used it in the offered days (4 weeks by default),
    attendance when a session was expected of them; a count source not offered holds NOT_OFFERED
    (-1) and, like attendance without sessions, is compared for no one: LDE sees no reading lists or
    module choices, and a student whose course has no use for a source must not be marked down for it.
    """

    counts: tuple[int, ...]
    attended: int
    window_days: int

    @classmethod
    def from_totals(
        cls, totals: Sequence[int], window_days: int, used: Sequence[int] | None = None
    ) -> WindowFeatures:
        """From a `StudentActivity.window_totals` row (sources, then attended); `used`: a row over the
        offered days, whose unused count sources become NOT_OFFERED (None: every source offered)."""
        counts = [int(v) for v in totals[:N_SOURCES]]
        if used is not None:
            for column in COUNT_COLUMNS:
                if not used[column]:
                    counts[column] = NOT_OFFERED
        return cls(tuple(counts), int(totals[ATTENDED]), window_days)

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
        """The count of one source (for attendance: sessions expected); 0 when not offered."""
        return max(0, self.counts[SOURCES.index(Source(source))])

    def offered(self, source: Source | str) -> bool:
        """Whether the source is compared for this student (see the class docstring)."""
        if Source(source) is Source.ATTENDANCE:
            return self.expected > 0
        return self.counts[SOURCES.index(Source(source))] != NOT_OFFERED

    @property
    def expected(self) -> int:
        return max(0, self.counts[ATTENDANCE])

    @property
    def attendance_rate(self) -> float | None:
        """Attended / expected, or None when no session was expected (nothing to judge)."""
        if self.expected <= 0:
            return None
        return min(1.0, self.attended / self.expected)

    @property
    def has_activity(self) -> bool:
        """Any sign of engagement: a non-attendance event or an attended session."""
        return self.attended > 0 or any(self.count(s) > 0 for s in COUNT_SOURCES)

    def value(self, source: Source | str) -> float | None:
        """What is compared for a source: the count, or the attendance rate (None: not offered)."""
        if Source(source) is Source.ATTENDANCE:
            return self.attendance_rate
        count = self.counts[SOURCES.index(Source(source))]
        return None if count == NOT_OFFERED else float(count)


def student_features(
    activity: StudentActivity | None, last_day: int, length: int, offered_days: int | None = None
) -> WindowFeatures:
    """Features over the `length` local days ending on `last_day` (an ordinal); no state means zeros.
    With `offered_days`, the count sources unused over that many days are NOT_OFFERED."""
    if activity is None:
        none = NOT_OFFERED if offered_days is not None else 0
        counts = tuple(0 if i == ATTENDANCE else none for i in range(N_SOURCES))
        return WindowFeatures(counts, 0, length)
    used = activity.window_totals(last_day, offered_days) if offered_days is not None else None
    return WindowFeatures.from_totals(activity.window_totals(last_day, length), length, used)


# -- score and band ---------------------------------------------------------------------------------
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
