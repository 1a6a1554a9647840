"""The evaluator's columns: the roster coded once, what the day's sweep found, the score rows.

Pure and performance-critical: a first day of monitoring sweeps a million rostered students, so the
roster is coded by kind of student and kept while its records stay the same objects, and the score
rows are built one column at a time. The evaluator (streams.evaluator) reads these columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.benchmarks import DayBenchmarks, GroupCodes, dense_codes
from models.engagement import Band
from models.evaluation import ScoreColumns
from models.roster import RosterRecord, StudentStatus, StudyMode


def same_objects(mine: Sequence[Any], theirs: Sequence[Any]) -> bool:
    """The same objects in the same order (records and views are immutable: identity is enough)."""
    return len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs, strict=True))


_KIND = attrgetter("programme_code", "year_of_study", "mode", "school", "status")


@dataclass(frozen=True)
class RosterColumns:
    """The roster as the sweep needs it, in columns; kept while the records stay the same objects."""

    records: list[RosterRecord]
    student_ids: list[str]
    active: NDArray[np.bool_]
    window: NDArray[np.int64]  # each student's window length in days (by mode of study)
    groups: GroupCodes
    part_time: NDArray[np.bool_]

    @classmethod
    def of(cls, records: list[RosterRecord], full_time_days: int, part_time_days: int) -> RosterColumns:
        # A roster has a few thousand kinds of student (programme, year, mode, school, status): code
        # each student's kind in one pass, then work on the kinds (a million-student first day).
        kind_of, kinds = dense_codes([_KIND(r) for r in records])
        programmes, years, modes, schools, statuses = zip(*kinds, strict=True) if kinds else ((),) * 5
        groups = GroupCodes.from_columns(programmes, years, [m.value for m in modes], schools)
        active = np.array([s is StudentStatus.ACTIVE for s in statuses], np.bool_)
        part_time = np.array([m is StudyMode.PART_TIME for m in modes], np.bool_)
        window = np.where(part_time, part_time_days, full_time_days).astype(np.int64)
        ids = [r.student_id for r in records]
        return cls(records, ids, active[kind_of], window[kind_of], groups.subset(kind_of), part_time[kind_of])

    @cached_property
    def row_of(self) -> dict[str, int]:
        """Each student's row. Built when first asked (half a second for a million students): a
        worker judging all its students on a first day has no use for it."""
        return dict(zip(self.student_ids, range(len(self.student_ids)), strict=True))

    def same_records(self, records: Sequence[RosterRecord]) -> bool:
        """Whether these are exactly the roster's records, in order."""
        return same_objects(self.records, records)

    def holds_at(self, records: Sequence[RosterRecord], at: int) -> bool:
        """Whether these records are the roster's rows from `at` on (a slice of it)."""
        return at >= 0 and same_objects(self.records[at : at + len(records)], records)

    def rows(self, start: int, stop: int) -> RosterColumns:
        """The columns of rows start to stop (group keys unchanged: a code may then have nobody)."""
        return RosterColumns(
            self.records[start:stop],
            self.student_ids[start:stop],
            self.active[start:stop],
            self.window[start:stop],
            self.groups.subset(np.arange(start, stop)),
            self.part_time[start:stop],
        )


@dataclass(frozen=True, slots=True)
class Sweep:
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
    far_below: NDArray[np.bool_]  # low engagement holds and under the alert line today


BAND_NAMES = [b.value for b in (Band.HIGH, Band.GOOD, Band.PARTIAL, Band.LOW, Band.NONE)]


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


def score_columns(day: date, bench: DayBenchmarks, rows: NDArray[np.int64]) -> ScoreColumns:
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
        list(map(BAND_NAMES.__getitem__, bench.band_code[rows].tolist())),
        list(map(bases.__getitem__, bench.group_of[rows].tolist())),
        bench.overall_percentile[rows].tolist(),
    )
