"""Many students' activity states as columns, for the evaluator's sweep: the states of one
partition in a few numpy arrays (ActivityColumns), and a day's window figures for every student at
once (day_figures, DayFigures). Pure: no I/O; agrees with models.activity's per-student reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.activity import (
    ATTENDANCE,
    ATTENDED,
    COUNT_COLUMNS,
    ENGAGEMENT_COLUMNS,
    ROW_WIDTH,
    StudentActivity,
    mark_not_offered,
)
from models.parallel import map_in_threads

_DAY_LIST = attrgetter("day_list")
_ROWS = attrgetter("rows")
_LAST_ACTIVE = attrgetter("last_active")


def _spread(values: NDArray[Any], where: NDArray[np.bool_], fill: float) -> NDArray[Any]:
    """values placed at the rows where `where` holds, `fill` elsewhere."""
    result = np.full(len(where), fill, values.dtype)
    result[where] = values
    return result


class ActivityColumns:
    """Many students' states read at once, for the evaluator's sweep: every kept day of every student
    in three flat numpy arrays (owner index, day ordinal, counts row), joined straight from the
    states' arrays, so a sweep over a million students costs no Python per kept day.
    """

    def __init__(self, states: Sequence[StudentActivity | None]) -> None:
        self.n = n = len(states)
        present = [s for s in states if s is not None]
        day_lists = list(map(_DAY_LIST, present))
        sizes = np.fromiter(map(len, day_lists), np.int64, len(present))
        # None becomes NaN in a float array: no test per student in Python (ordinals are exact floats).
        last_active = np.array(list(map(_LAST_ACTIVE, present)), np.float64)
        if len(present) < n:
            where = np.fromiter((s is not None for s in states), np.bool_, n)
            sizes, last_active = _spread(sizes, where, 0), _spread(last_active, where, np.nan)
        self.sizes: NDArray[np.int64] = sizes  # kept days per student
        self.owner: NDArray[np.int64] = np.repeat(np.arange(n, dtype=np.int64), sizes)
        self.days: NDArray[np.int32] = np.frombuffer(b"".join(day_lists), np.int32)
        rows = np.frombuffer(b"".join(list(map(_ROWS, present))), np.uint32)
        self.rows: NDArray[np.uint32] = rows.reshape(-1, ROW_WIDTH)
        self.last_active: NDArray[np.int64] = np.nan_to_num(last_active, nan=-1).astype(np.int64)

    def window_totals(
        self, last_day: int, lengths: NDArray[np.int64] | int, columns: Sequence[int] | None = None
    ) -> NDArray[np.int64]:
        """Per student, counts summed over the lengths[i] days ending on last_day (or `lengths` days
        for everyone, which spares reading a length per kept day): (n, ROW_WIDTH), or
        (n, len(columns)) for some columns only."""
        days = self.days
        first = last_day - lengths[self.owner] if isinstance(lengths, np.ndarray) else last_day - lengths
        inside = np.flatnonzero((days <= last_day) & (days > first))
        width = ROW_WIDTH if columns is None else len(columns)
        totals = np.zeros((self.n, width), np.int64)
        if not inside.size:
            return totals
        owners = self.owner[inside]
        rows = self.rows[inside] if columns is None else self.rows[np.ix_(inside, np.asarray(columns))]
        # Entries are grouped by student: sum each student's run of entries inside the window.
        starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
        totals[owners[starts]] = np.add.reduceat(rows, starts, axis=0, dtype=np.int64)
        return totals

    def used_since(self, last_day: int, length: int) -> NDArray[np.bool_]:
        """Per student and count column (COUNT_COLUMNS), whether any count is above 0 over the
        `length` days ending on last_day: (n, len(COUNT_COLUMNS)). Each kept day's columns as bits
        of one byte, days outside cleared, then one OR per student's run of kept days: no copy of
        the rows (most kept days are inside), a fraction of summing the columns."""
        rows = self.rows
        bits = (rows[:, COUNT_COLUMNS[0]] > 0).view(np.uint8).copy()
        for bit, column in enumerate(COUNT_COLUMNS[1:], start=1):
            bits |= (rows[:, column] > 0).view(np.uint8) << bit
        bits[(self.days > last_day) | (self.days <= last_day - length)] = 0
        found = np.zeros(self.n, np.uint8)
        with_days = np.flatnonzero(self.sizes > 0)
        if len(with_days):
            starts = np.cumsum(self.sizes)[with_days] - self.sizes[with_days]
            found[with_days] = np.bitwise_or.reduceat(bits, starts)
        used = np.empty((self.n, len(COUNT_COLUMNS)), np.bool_)
        for bit in range(len(COUNT_COLUMNS)):
            used[:, bit] = (found >> bit) & 1
        return used

    def last_active_on_or_before(self, day: int) -> NDArray[np.int64]:
        """As StudentActivity.last_active_on_or_before for everyone (-1 for None)."""
        known = (self.last_active >= 0) & (self.last_active <= day)
        result = np.where(known, self.last_active, -1)
        if known.all() or not len(self.days):
            return result
        # The rest (never active, or judged before their latest activity): their latest engaged kept
        # day up to `day`, as one running maximum per student over every kept day (no copies of rows).
        engaged = _engaged(self.rows) & (self.days <= day)
        candidates = np.where(engaged, self.days, -1)
        with_days = np.flatnonzero(self.sizes > 0)
        latest = np.maximum.reduceat(candidates, np.cumsum(self.sizes)[with_days] - self.sizes[with_days])
        unknown = ~known[with_days]
        result[with_days[unknown]] = latest[unknown]
        return result


#: The engagement columns of a counts row as a mask over the row's 64-bit words (any byte order).
_ENGAGEMENT_WORDS = np.array(
    [0xFFFFFFFF if column in ENGAGEMENT_COLUMNS else 0 for column in range(ROW_WIDTH)], np.uint32
).view(np.uint64)


def _engaged(rows: NDArray[np.uint32]) -> NDArray[np.bool_]:
    """Per counts row, whether any engagement column is above 0: the row read as 64-bit words, two
    counts a word, so a million rows take four masked ORs instead of a copy of seven columns."""
    words = np.ascontiguousarray(rows).view(np.uint64)
    found = words[:, 0] & _ENGAGEMENT_WORDS[0]
    for word in range(1, len(_ENGAGEMENT_WORDS)):
        found |= words[:, word] & _ENGAGEMENT_WORDS[word]
    engaged: NDArray[np.bool_] = found != 0
    return engaged


@dataclass(frozen=True, slots=True)
class DayFigures:
    """What the evaluator reads of every student's state for one day (rows follow the input)."""

    window: NDArray[np.int64]  # (n, ROW_WIDTH): counts over each student's own window
    attended: NDArray[np.int64]  # sessions attended over the attendance window
    expected: NDArray[np.int64]  # sessions expected over the attendance window
    last: NDArray[np.int64]  # last engaged day on or before the day (-1: none known)

    def __len__(self) -> int:
        return len(self.last)

    def rows(self, start: int, stop: int) -> DayFigures:
        return DayFigures(
            self.window[start:stop],
            self.attended[start:stop],
            self.expected[start:stop],
            self.last[start:stop],
        )

    @classmethod
    def concat(cls, parts: Sequence[DayFigures]) -> DayFigures:
        if not parts:
            return cls(np.zeros((0, ROW_WIDTH), np.int64), *(np.zeros(0, np.int64) for _ in range(3)))
        return cls(
            np.concatenate([p.window for p in parts]),
            np.concatenate([p.attended for p in parts]),
            np.concatenate([p.expected for p in parts]),
            np.concatenate([p.last for p in parts]),
        )


def day_figures(
    states: Sequence[StudentActivity | None],
    day: int,
    lengths: NDArray[np.int64],
    attendance_days: int,
    chunk: int = 16_384,
    offered_days: int | None = None,
) -> DayFigures:
    """Everyone's window counts, attendance and last active day, a chunk of students at a time: the
    temporary arrays of a whole million-student institution would be hundreds of megabytes, and in a
    virtual machine first touching fresh memory costs more than the arithmetic on it.

    The chunks run on the column threads (models.parallel): 1.2-1.4 s off a million students' first
    day on the two-core machine (BENCHMARKS.md).

    With `offered_days`, a count source the student has not used in that many days ending on `day`
    reads NOT_OFFERED in `window` (see `mark_not_offered`); it must be at least every window length."""
    n = len(states)
    window = np.zeros((n, ROW_WIDTH), np.int64)
    recent = np.zeros((n, 2), np.int64)
    last = np.full(n, -1, np.int64)

    def one_chunk(start: int) -> None:
        part = ActivityColumns(states[start : start + chunk])
        end = start + part.n
        window[start:end] = part.window_totals(day, lengths[start:end])
        if offered_days is not None:
            mark_not_offered(window[start:end], part.used_since(day, offered_days))
        recent[start:end] = part.window_totals(day, attendance_days, columns=(ATTENDED, ATTENDANCE))
        last[start:end] = part.last_active_on_or_before(day)

    map_in_threads(one_chunk, range(0, n, chunk))
    return DayFigures(window, recent[:, 0], recent[:, 1], last)
