"""Comparison groups and each student's standing in theirs: the readable reference.

Comparisons are fair by construction: a student is compared with students on the same programme, in
the same year and mode of study (their cohort); a cohort too small to compare with falls back to the
whole programme, then to the school, then to the whole institution, and the result says which was used.
`benchmark_day` is written for reading; `models.benchmarks` computes the same figures in columns and
is held to it bit for bit.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from models.engagement import Band, BandThresholds, Weights, WindowFeatures, activity_index, band, score
from models.events import SOURCES

#: Which comparison group a benchmark used, narrowest first.
Basis = Literal["cohort", "programme", "school", "institution"]


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


# -- groups and standings ---------------------------------------------------------------------------
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


#: A comparison group: its level and its key at that level.
GroupId = tuple[Basis, tuple[str | int, ...]]
_LEVELS: tuple[Basis, ...] = ("cohort", "programme", "school", "institution")


def _group_key(member: Member, basis: Basis) -> tuple[str | int, ...]:
    if basis == "cohort":
        return member.cohort
    if basis == "programme":
        return (member.cohort[0],)
    if basis == "school":
        return (member.school,)
    return ()


def _pools(members: Iterable[Member]) -> dict[GroupId, list[Member]]:
    """Everyone sharing each cohort, programme and school key."""
    pools: dict[GroupId, list[Member]] = {}
    for member in members:
        for level in _LEVELS:
            pools.setdefault((level, _group_key(member, level)), []).append(member)
    return pools


def _choose(
    members: Iterable[Member], pools: Mapping[GroupId, list[Member]], min_cohort_size: int
) -> dict[str, GroupId]:
    """Each student's comparison group: the cohort, else the programme, else the school, else the
    whole institution.

    A group is wide enough with at least `min_cohort_size` students; the institution is used whatever
    its size (there is nothing wider), so a tiny school is still compared rather than left out. A wider
    group mixes years and modes; part-time windows are three times longer for that reason, so counts
    stay roughly comparable.
    """
    chosen: dict[str, GroupId] = {}
    for member in members:
        for level in _LEVELS:
            group = (level, _group_key(member, level))
            if len(pools[group]) >= min_cohort_size or level == "institution":
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
