"""One day's benchmarks for a whole institution at once, in columns.

The same figures as `models.comparison.benchmark_day` (the reference, written for reading), computed
with numpy over every student, all the groups of a level (cohort, programme, school) at once: each
measure is sorted by group and value, and ranks and quartiles are read from the sorted runs. So the
evaluator's daily sweep of a million rostered students takes seconds: the per-student Python work is
left for the few students a rule may concern, who get a full `StudentBenchmark` through
`DayBenchmarks.student`.

Results equal the reference bit for bit: the same floating-point operations in the same order (sums
of sources in source order, exactly rounded group means), which a test checks on random groups.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from models.activity import ATTENDANCE, N_SOURCES, NOT_OFFERED
from models.comparison import Basis, GroupStats, SourceStats, StudentBenchmark
from models.engagement import Band, BandThresholds, Weights, WindowFeatures
from models.events import SOURCES
from models.parallel import map_in_threads

_LEVELS: tuple[Basis, ...] = ("cohort", "programme", "school", "institution")
#: The levels a ComparisonFeatures record carries (the institution is everyone: code 0, rebuilt).
_WIRE_LEVELS: tuple[Basis, ...] = ("cohort", "programme", "school")
_INT16_MAX = int(np.iinfo(np.int16).max)
_SOURCE_NAMES: tuple[str, ...] = tuple(s.value for s in SOURCES)
_BANDS: tuple[Band, ...] = (Band.HIGH, Band.GOOD, Band.PARTIAL, Band.LOW, Band.NONE)
Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True)
class DayBenchmarks:
    """Every member's standing on one day (row i is member i of the input).

    percentiles holds NaN where the reference has None; raw_score is NaN where nothing compares.
    """

    student_ids: Sequence[str]
    counts: Ints
    attended: Ints
    window: Ints
    groups: list[GroupStats]
    group_of: Ints
    percentiles: Floats
    activity_index: Floats
    overall_percentile: Floats
    below: Floats
    raw_score: Floats
    score: Floats
    band_code: NDArray[np.int8]
    has_activity: NDArray[np.bool_]

    def low_engagement(
        self, bottom_share: float, median_fraction: float, min_group_size: int
    ) -> NDArray[np.bool_]:
        """Where `comparative_rules.low_engagement` holds (with skip_inactive), for everyone at once."""
        sizes = np.array([g.n for g in self.groups], np.int64)[self.group_of]
        medians = np.array([g.index.median or 0.0 for g in self.groups], np.float64)[self.group_of]
        result: NDArray[np.bool_] = (
            (sizes >= min_group_size)
            & self.has_activity
            & (self.below < bottom_share)
            & (self.activity_index < median_fraction * medians)
        )
        return result

    def far_below(self, alert_fraction: float) -> NDArray[np.bool_]:
        """Where the activity is under `alert_fraction` of the group's median; with
        `low_engagement`'s mask, where `comparative_rules.low_engagement(...).far_below` holds."""
        medians = np.array([g.index.median or 0.0 for g in self.groups], np.float64)[self.group_of]
        result: NDArray[np.bool_] = self.activity_index < alert_fraction * medians
        return result

    def student(self, i: int) -> StudentBenchmark:
        """Member i's benchmark as the reference builds it."""
        return self.students([i])[0]

    def students(self, rows: Sequence[int] | Ints) -> list[StudentBenchmark]:
        """student(i) for many members, the columns read in bulk rather than one number at a time."""
        return list(map(self.from_figures, self.figures(rows)))

    def figures(self, rows: Sequence[int] | Ints) -> list[MemberFigures]:
        """Many members' standing as plain values, read in bulk (see MemberFigures)."""
        at = np.asarray(rows, np.int64)
        ranks = self.percentiles[at]
        ranks[np.isnan(ranks)] = NO_RANK  # NaN never equals itself: figures must compare equal
        return list(
            zip(
                self.group_of[at].tolist(),
                map(tuple, self.counts[at].tolist()),
                self.attended[at].tolist(),
                self.window[at].tolist(),
                map(tuple, ranks.tolist()),
                self.overall_percentile[at].tolist(),
                self.score[at].tolist(),
                self.band_code[at].tolist(),
                at.tolist(),
                strict=True,
            )
        )

    def from_figures(self, figures: MemberFigures) -> StudentBenchmark:
        """The StudentBenchmark of a member's figures (as the reference builds it)."""
        group, counts, attended, window, ranks, overall, score, band, i = figures
        return StudentBenchmark(
            student_id=self.student_ids[i],
            features=WindowFeatures(counts, attended, window),
            group=self.groups[group],
            percentiles={
                name: None if r == NO_RANK else r for name, r in zip(_SOURCE_NAMES, ranks, strict=True)
            },
            activity_index=float(self.activity_index[i]),
            overall_percentile=overall,
            below=float(self.below[i]),
            score=score,
            band=_BANDS[band],
        )


#: A member's standing as plain values: group code, counts, attended, window length, percentile per
#: source (NO_RANK for none), overall percentile, score, band code, and last the member's row. All
#: but the row are what an explanation reads, so members with equal figures share their words.
MemberFigures = tuple[int, tuple[int, ...], int, int, tuple[float, ...], float, float, int, int]
NO_RANK = -1.0  # a member's figures' percentile where the reference has None (percentiles are 0-100)


def dense_codes(keys: Sequence[Hashable]) -> tuple[Ints, list[Hashable]]:
    """Dense integer codes for keys, and the key of each code."""
    mapping: dict[Hashable, int] = {}
    codes = np.fromiter((mapping.setdefault(k, len(mapping)) for k in keys), np.int64, len(keys))
    return codes, list(mapping)


def _codes_in_order(values: Ints) -> tuple[Ints, Ints]:
    """Dense codes for integer values in order of first appearance (as _codes), and the row where
    each code first appears."""
    if not len(values):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    code_of = np.empty(len(order), np.int64)
    code_of[order] = np.arange(len(order))
    return code_of[inverse.reshape(-1)], first[order]


def benchmark_columns(
    student_ids: Sequence[str],
    counts: Ints,
    attended: Ints,
    window: Ints,
    cohorts: Sequence[tuple[str, int, str]],
    schools: Sequence[str],
    weights: Weights | None = None,
    min_cohort_size: int = 8,
    thresholds: BandThresholds | None = None,
) -> DayBenchmarks:
    """benchmark_day for members given as columns: counts (n, N_SOURCES) over each member's window,
    with sessions expected in the attendance column; attended (n); window days (n); each member's
    cohort (programme, year, mode) and school."""
    coded = GroupCodes.of(cohorts, schools)
    return benchmark_coded(student_ids, counts, attended, window, coded, weights, min_cohort_size, thresholds)


@dataclass(frozen=True)
class GroupCodes:
    """Each student's cohort, programme and school as dense integer codes, with the key of each code."""

    codes: dict[Basis, Ints]
    keys: dict[Basis, list[Hashable]]

    @classmethod
    def of(cls, cohorts: Sequence[tuple[str, int, str]], schools: Sequence[str]) -> GroupCodes:
        by_level: dict[Basis, Sequence[Hashable]] = {
            "cohort": cohorts,
            "programme": [(c[0],) for c in cohorts],
            "school": [(s,) for s in schools],
            "institution": [() for _ in schools],
        }
        codes: dict[Basis, Ints] = {}
        keys: dict[Basis, list[Hashable]] = {}
        for level in _LEVELS:
            codes[level], keys[level] = dense_codes(by_level[level])
        return cls(codes, keys)

    @classmethod
    def from_columns(
        cls, programmes: Sequence[str], years: Sequence[int], modes: Sequence[str], schools: Sequence[str]
    ) -> GroupCodes:
        """GroupCodes.of for a roster given as columns (the same codes and keys), without building a
        cohort tuple per student: a million-student roster is coded in a fraction of the time."""
        programme, programme_keys = dense_codes(programmes)
        year, year_keys = dense_codes(years)
        mode, mode_keys = dense_codes(modes)
        school, school_keys = dense_codes(schools)
        combined = (programme * len(year_keys) + year) * max(len(mode_keys), 1) + mode
        cohort, first = _codes_in_order(combined)
        cohort_keys: list[Hashable] = [
            (programme_keys[programme[i]], year_keys[year[i]], mode_keys[mode[i]]) for i in first.tolist()
        ]
        return cls(
            {
                "cohort": cohort,
                "programme": programme,
                "school": school,
                "institution": _everyone(len(school)),
            },
            {
                "cohort": cohort_keys,
                "programme": [(k,) for k in programme_keys],
                "school": [(k,) for k in school_keys],
                "institution": [()] if len(school) else [],
            },
        )

    def subset(self, rows: Ints) -> GroupCodes:
        """The codes of some students (keys unchanged: a code may then have nobody)."""
        return GroupCodes({level: codes[rows] for level, codes in self.codes.items()}, self.keys)


def benchmark_coded(
    student_ids: Sequence[str],
    counts: Ints,
    attended: Ints,
    window: Ints,
    coded: GroupCodes,
    weights: Weights | None = None,
    min_cohort_size: int = 8,
    thresholds: BandThresholds | None = None,
) -> DayBenchmarks:
    """benchmark_columns with the comparison groups already coded (the evaluator keeps them)."""
    weights = weights or Weights()
    limits = thresholds or BandThresholds()
    n = len(student_ids)
    codes, key_of = coded.codes, coded.keys
    sizes = {level: np.bincount(codes[level], minlength=len(key_of[level])) for level in _LEVELS}
    # The comparison group: the cohort if big enough, else the programme, else the school, else the
    # institution (level 0-3).
    level_of = np.full(n, 3, np.int64)
    level_of[sizes["school"][codes["school"]] >= min_cohort_size] = 2
    level_of[sizes["programme"][codes["programme"]] >= min_cohort_size] = 1
    level_of[sizes["cohort"][codes["cohort"]] >= min_cohort_size] = 0

    values = counts.astype(np.float64)
    values[counts == NOT_OFFERED] = np.nan  # a source not offered is compared for no one
    expected = counts[:, ATTENDANCE]
    with np.errstate(divide="ignore", invalid="ignore"):
        values[:, ATTENDANCE] = np.where(expected > 0, np.minimum(1.0, attended / expected), np.nan)
    source_weights = [weights.of(s) for s in SOURCES]

    percentiles = np.full((n, N_SOURCES), np.nan)
    index = np.zeros(n)
    overall = np.zeros(n)
    below = np.zeros(n)
    raw = np.full(n, np.nan)
    group_of = np.full(n, -1, np.int64)
    groups: list[GroupStats] = []
    for level_number, level in enumerate(_LEVELS):
        chosen_here = level_of == level_number
        if not chosen_here.any():
            continue
        # Every group of this level that someone is compared within, all at once: its pool is
        # everyone with its code (also those compared in a narrower group).
        level_codes = np.unique(codes[level][chosen_here])
        used = np.zeros(len(key_of[level]), np.bool_)
        used[level_codes] = True
        pool = np.flatnonzero(used[codes[level]])
        local = np.searchsorted(level_codes, codes[level][pool])  # group number within the level
        compared_here = level_of[pool] == level_number
        level_groups = _benchmark_level(
            level, [key_of[level][c] for c in level_codes.tolist()], pool, local, compared_here,
            values, source_weights, percentiles, index, overall, below, raw,
        )  # fmt: skip
        members = pool[compared_here]
        group_of[members] = len(groups) + local[compared_here]
        groups.extend(level_groups)

    has_activity = (attended > 0) | (np.delete(counts, ATTENDANCE, axis=1) > 0).any(axis=1)
    scored = ~np.isnan(raw)
    score = np.where(scored & has_activity, raw, 0.0)
    band_code = np.select(
        [~(scored & has_activity), raw >= limits.high, raw >= limits.good, raw >= limits.partial],
        [4, 0, 1, 2],
        default=3,
    ).astype(np.int8)
    return DayBenchmarks(
        student_ids, counts, attended, window, groups, group_of, percentiles, index, overall, below,
        raw, score, band_code, has_activity,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Sorted:
    """One measure of a level's pool sorted within each group (missing values last in their group):
    the sorted values, where each group starts and how many values it has, and for every pool row
    how many of its group's values are below it and equal to it (missing: 0 and 0)."""

    values: Floats
    starts: Ints
    sizes: Ints
    below: Ints
    equal: Ints
    whole: bool  # only whole numbers where present (counts): sums are exact in any order
    complete: bool = True  # none missing

    @classmethod
    def of(cls, column: Floats, local: Ints, pool_sizes: Ints, starts: Ints) -> _Sorted:
        """`local`: each pool row's group; `pool_sizes` and `starts`: each group's row count and
        where it starts once sorted by group (the same for every measure of a level)."""
        groups = len(pool_sizes)
        # By group, then value, NaN last (np.lexsort((column, local)) in two stable passes: the
        # group pass is a radix sort on small integers, and the pair is faster than lexsort).
        missing = np.isnan(column)
        complete = not missing.any()
        present = column if complete else column[~missing]
        small_range = bool(len(present)) and present.min() >= 0 and present.max() < _INT16_MAX
        whole = small_range and np.array_equal(present, np.floor(present))
        if whole:  # counts: a radix sort too, a source not offered (NaN) last as the float sort puts it
            keys = column if complete else np.where(missing, _INT16_MAX, column)
            by_value = np.argsort(keys.astype(np.int16), kind="stable")
        else:
            by_value = np.argsort(column, kind="stable")
        small = np.int16 if groups <= _INT16_MAX else np.int64
        order = by_value[np.argsort(local[by_value].astype(small), kind="stable")]
        ordered = column[order]
        ordered_group = local[order]
        # Runs of equal values within a group share one rank (NaN never equals: each its own run).
        new_run = np.ones(len(ordered), np.bool_)
        new_run[1:] = (ordered_group[1:] != ordered_group[:-1]) | (ordered[1:] != ordered[:-1])
        run = np.cumsum(new_run) - 1
        run_starts = np.flatnonzero(new_run)
        run_lengths = np.diff(np.append(run_starts, len(ordered)))
        below = np.empty(len(column), np.int64)
        equal = np.empty(len(column), np.int64)
        if whole and complete:
            sizes = pool_sizes
            below[order] = run_starts[run] - starts[ordered_group]
            equal[order] = run_lengths[run]
        else:
            valid = ~np.isnan(ordered)
            sizes = np.bincount(ordered_group[valid], minlength=groups)
            below[order] = np.where(valid, run_starts[run] - starts[ordered_group], 0)
            equal[order] = np.where(valid, run_lengths[run], 0)
        return cls(ordered, starts, sizes, below, equal, whole, complete)

    def stats(self) -> list[SourceStats]:
        """SourceStats.of for every group (the same figures: exact sums, the same interpolation)."""
        medians, q1s, q3s = (self._quantiles(q) for q in (0.5, 0.25, 0.75))
        sizes = self.sizes.tolist()
        present = np.flatnonzero(self.sizes)
        lasts = np.zeros(len(sizes), np.bool_)
        lasts[present] = self.values[self.starts[present] + self.sizes[present] - 1] > 0
        if self.whole:
            # Whole numbers add up exactly in any order (far below 2**53): the same as math.fsum.
            sums = np.zeros(len(sizes))
            if len(present):
                values = self.values if self.complete else np.where(np.isnan(self.values), 0.0, self.values)
                sums[present] = np.add.reduceat(values, self.starts[present])
            totals: list[float] = sums.tolist()
        else:
            ordered: list[float] = self.values.tolist()
            starts = self.starts.tolist()
            totals = [
                math.fsum(ordered[starts[g] : starts[g] + size]) if size else 0.0
                for g, size in enumerate(sizes)
            ]
        in_use = lasts.tolist()
        return [
            SourceStats(size, totals[g] / size, medians[g], q1s[g], q3s[g], in_use[g])
            if size
            else SourceStats(0, None, None, None, None, False)
            for g, size in enumerate(sizes)
        ]

    def _quantiles(self, q: float) -> list[float]:
        """comparison.quantile of every group, with the same float operations (0.0 where empty)."""
        if not len(self.values):
            return [0.0] * len(self.sizes)
        last = np.maximum(self.sizes, 1) - 1
        position = q * last
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, last)
        fraction = position - low
        at_low = self.values[np.minimum(self.starts + low, len(self.values) - 1)]
        at_high = self.values[np.minimum(self.starts + high, len(self.values) - 1)]
        quantiles: list[float] = (at_low + (at_high - at_low) * fraction).tolist()
        return quantiles


def _benchmark_level(
    level: Basis,
    keys: list[Hashable],
    pool: Ints,
    local: Ints,
    compared_here: NDArray[np.bool_],
    values: Floats,
    source_weights: list[float],
    percentiles: Floats,
    index: Floats,
    overall: Floats,
    below: Floats,
    raw: Floats,
) -> list[GroupStats]:
    """Every group of one level from the pools (local: each pool row's group); fills the columns of
    the members compared within them. The float operations are those of the per-group reference."""
    groups = len(keys)
    pool_values = values[pool]
    pool_sizes = np.bincount(local, minlength=groups)
    starts = np.concatenate(([0], np.cumsum(pool_sizes)[:-1]))
    sorted_columns = map_in_threads(
        lambda column: _Sorted.of(pool_values[:, column], local, pool_sizes, starts), range(N_SOURCES)
    )
    stats = [column.stats() for column in sorted_columns]  # [source][group]
    in_use = [np.array([st.in_use for st in column], np.bool_) for column in stats]

    # Activity index of every pool member (engagement.activity_index): sources in order, skipping
    # those without a group mean, a value or a weight; adding 0.0 instead of skipping keeps the sums.
    total = np.zeros(len(pool))
    weight_sum = np.zeros(len(pool))
    for column in range(N_SOURCES):
        weight = source_weights[column]
        if weight <= 0:
            continue
        means = np.array([st.mean if st.in_use and st.mean is not None else 0.0 for st in stats[column]])
        counted = (means > 0)[local]
        col = pool_values[:, column]
        valid = ~np.isnan(col) & counted
        with np.errstate(divide="ignore", invalid="ignore"):
            total = total + np.where(valid, weight * col / means[local], 0.0)
        weight_sum = weight_sum + np.where(valid, weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pool_index = np.where(weight_sum > 0, total / weight_sum, 0.0)
    index_sorted = _Sorted.of(pool_index, local, pool_sizes, starts)
    index_stats = index_sorted.stats()
    group_sizes = pool_sizes.tolist()
    result = [
        GroupStats(
            level,
            tuple(keys[g]),  # type: ignore[arg-type]
            group_sizes[g],
            {source.value: stats[column][g] for column, source in enumerate(SOURCES)},
            index_stats[g],
        )
        for g in range(groups)
    ]

    members = pool[compared_here]
    member_group = local[compared_here]
    index[members] = pool_index[compared_here]
    index_size = index_sorted.sizes[member_group]
    member_below = index_sorted.below[compared_here]
    overall[members] = 100.0 * (member_below + 0.5 * index_sorted.equal[compared_here]) / index_size
    below[members] = member_below / index_size
    score_total = np.zeros(len(members))
    score_weights = np.zeros(len(members))
    for column in range(N_SOURCES):
        column_sorted = sorted_columns[column]
        counted = in_use[column][member_group]
        value = pool_values[compared_here, column]
        valid = ~np.isnan(value) & counted
        size = column_sorted.sizes[member_group]
        ties = column_sorted.below[compared_here] + 0.5 * column_sorted.equal[compared_here]
        with np.errstate(divide="ignore", invalid="ignore"):
            rank = np.where(valid, 100.0 * ties / size, np.nan)
        percentiles[members, column] = np.where(counted, rank, percentiles[members, column])
        weight = source_weights[column]
        if weight > 0:
            score_total = score_total + np.where(valid, weight * rank, 0.0)
            score_weights = score_weights + np.where(valid, weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw[members] = np.where(score_weights > 0, score_total / score_weights, np.nan)
    return result


@dataclass(frozen=True)
class ComparisonFeatures:
    """Some students' figures for one day without their identities: what another worker needs to
    benchmark its own students against the whole institution (each worker owns some partitions).

    counts (m, N_SOURCES), attended (m) and window (m) as in `benchmark_columns`; groups codes each
    student's cohort, programme and school.
    """

    counts: Ints
    attended: Ints
    window: Ints
    groups: GroupCodes

    def __len__(self) -> int:
        return len(self.attended)

    def to_bytes(self) -> bytes:
        """A compact record: a JSON header (group keys), then the arrays as int32 (counts fit easily)."""
        header = json.dumps(
            {"n": len(self), "keys": {level: self.groups.keys[level] for level in _WIRE_LEVELS}},
            separators=(",", ":"),
        ).encode()
        arrays = [self.counts, self.attended[:, None], self.window[:, None]]
        arrays += [self.groups.codes[level][:, None] for level in _WIRE_LEVELS]
        body = np.hstack(arrays).astype(np.int32) if len(self) else np.zeros((0, N_SOURCES + 5), np.int32)
        return len(header).to_bytes(4, "little") + header + body.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> ComparisonFeatures:
        size = int.from_bytes(data[:4], "little")
        header = json.loads(data[4 : 4 + size])
        n = int(header["n"])
        body = np.frombuffer(data[4 + size :], np.int32).astype(np.int64)
        if body.size != n * (N_SOURCES + 5):
            raise ValueError("comparison features record has the wrong length")
        body = body.reshape(n, N_SOURCES + 5)
        keys = {level: [_hashable(k) for k in header["keys"][level]] for level in _WIRE_LEVELS}
        codes = {level: body[:, N_SOURCES + 2 + i].copy() for i, level in enumerate(_WIRE_LEVELS)}
        keys["institution"], codes["institution"] = [()] if n else [], _everyone(n)
        return cls(
            body[:, :N_SOURCES].copy(), body[:, N_SOURCES].copy(), body[:, N_SOURCES + 1].copy(),
            GroupCodes(codes, keys),
        )  # fmt: skip

    def recoded(self, keys: dict[Basis, list[Hashable]]) -> dict[Basis, Ints]:
        """These students' group codes in another key space, extending its key lists as needed."""
        result: dict[Basis, Ints] = {}
        for level in _LEVELS:
            target = keys[level]
            index = {k: i for i, k in enumerate(target)}
            lookup = np.empty(len(self.groups.keys[level]), np.int64)
            for code, key in enumerate(self.groups.keys[level]):
                if key not in index:
                    index[key] = len(target)
                    target.append(key)
                lookup[code] = index[key]
            result[level] = lookup[self.groups.codes[level]] if len(self) else np.zeros(0, np.int64)
        return result

    @classmethod
    def concat(cls, parts: Sequence[ComparisonFeatures]) -> ComparisonFeatures:
        keys: dict[Basis, list[Hashable]] = {level: [] for level in _LEVELS}
        codes = [p.recoded(keys) for p in parts]
        return cls(
            np.concatenate([p.counts for p in parts]).reshape(-1, N_SOURCES),
            np.concatenate([p.attended for p in parts]),
            np.concatenate([p.window for p in parts]),
            GroupCodes({level: np.concatenate([c[level] for c in codes]) for level in _LEVELS}, keys),
        )


def _everyone(n: int) -> Ints:
    """The institution level's codes: one group, everyone in it."""
    return np.zeros(n, np.int64)


def _hashable(key: Any) -> Hashable:
    """Group keys come back from JSON as lists: make them the tuples they were."""
    return tuple(key) if isinstance(key, list) else key


def comparison_ready(
    have: set[int], need: set[int], waited_seconds: float, limit_seconds: float
) -> Literal["ready", "wait", "partial"]:
    """Whether to judge a day now: every other partition's figures are in (ready), or keep waiting
    for the workers that own the rest, or give up waiting and judge against what is there (partial,
    reported as such), so that a dead worker cannot stop every other worker's alerts."""
    if need <= have:
        return "ready"
    return "wait" if waited_seconds < limit_seconds else "partial"
