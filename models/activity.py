"""Per-student rolling activity state: local day x source counts in one value.

All of a student's recent activity lives in one object so the stream writes it once per batch
(one changelog record per touched student), instead of one record per window per event as Faust's
windowed tables do. Pure: no I/O; serialised to a compact binary changelog record.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray
from pydantic import AwareDatetime, TypeAdapter

from models.events import SOURCE_INDEX, ActivityEvent, Source

#: Column layout of one day's counts: one count per source, then sessions attended.
N_SOURCES = len(SOURCE_INDEX)
ATTENDED = N_SOURCES
ROW_WIDTH = N_SOURCES + 1
ATTENDANCE = SOURCE_INDEX[Source.ATTENDANCE.value]

#: What a retraction did (StudentActivity.retract): uncounted its event; nothing, it was retracted
#: before (a replay); nothing, its event was never counted (it is marked, so it never will be).
RETRACTED = "retracted"
RETRACTION_DUPLICATE = "retraction_duplicate"
RETRACTION_UNSEEN = "retraction_unseen"


_FORMAT_VERSION = 2
_HEADER = struct.Struct("<BqqqII")  # version, offset, last_active (-1 none), revision, days, marks
#: Version 3 adds the retracted marks (an xAPI void): written only by a state that holds any, so every
#: other state keeps version 2's bytes, and an older release's state reads as before.
_VOIDED_VERSION = 3
_VOIDED_COUNT = struct.Struct("<I")
_MARK_BITS = 44  # a mark is (day ordinal << 44 | fingerprint): ordinals need 20 bits
_MARK_MASK = (1 << _MARK_BITS) - 1
_ZERO_ROW = array("I", [0] * ROW_WIDTH)
#: The columns whose counts show engagement: every source but attendance, and sessions attended.
ENGAGEMENT_COLUMNS = [i for i in range(N_SOURCES) if i != ATTENDANCE] + [ATTENDED]


def fingerprint(event_id: str) -> int:
    """A stable 44-bit fingerprint of an event id, for de-duplication (Python's hash() differs between
    processes, so it cannot be kept in the changelog).

    CRC-32 (bits 12-43) and the low 12 bits of Adler-32: two C checksums, about four times cheaper
    than a cryptographic digest on the per-event path, and CRC-32 alone never confuses two ids of the
    same length that differ only within 32 consecutive bits (serial numbers). A false match only
    matters within one student's one day: with 1,000 events in a day, about one chance in 35 million.
    """
    data = event_id.encode()
    return zlib.crc32(data) << 12 | zlib.adler32(data) & 0xFFF


class LocalDays:
    """The local-day ordinal of instants in one zone, cached per UTC hour.

    Converting every event's time to the zone is one of the larger per-event costs; all instants of
    one UTC hour share a local day unless a midnight or an offset change falls inside that hour, which
    is checked once per hour (such hours are converted event by event). Only UTC instants take the
    cache (almost every upstream system sends UTC): their hour is read from the fields, without the
    offset call through the tzinfo that the cache would otherwise have to pay, as much as converting.
    """

    __slots__ = ("_hours", "tz")

    _MIXED = -1
    _LIMIT = 200_000  # cached hours (23 years); cleared when exceeded

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._hours: dict[int, int] = {}

    def of(self, moment: datetime) -> int:
        """The local-day ordinal of an aware datetime: moment.astimezone(tz).toordinal()."""
        zone = moment.tzinfo
        if zone is _PYDANTIC_UTC or zone is UTC:
            hour = moment.toordinal() * 24 + moment.hour
            day = self._hours.get(hour)
            if day is None:
                day = self._hour_day(hour)
                if len(self._hours) >= self._LIMIT:
                    self._hours.clear()
                self._hours[hour] = day
            if day >= 0:
                return day
        return moment.astimezone(self.tz).toordinal()

    def _hour_day(self, hour: int) -> int:
        """The local day of a whole UTC hour (counted from 0001-01-01), or _MIXED when it is not one
        day at one offset (zone offsets are whole seconds: the hour's first and last second decide)."""
        try:
            start = datetime.combine(date.fromordinal(hour // 24), time(hour % 24), UTC)
            first = start.astimezone(self.tz)
            last = (start + timedelta(seconds=3599)).astimezone(self.tz)
        except (OverflowError, ValueError):
            return self._MIXED
        if first.utcoffset() != last.utcoffset() or first.toordinal() != last.toordinal():
            return self._MIXED
        return first.toordinal()


#: pydantic gives every UTC instant it parses this one TzInfo object (its UTC), besides datetime.UTC.
_PYDANTIC_UTC = TypeAdapter(AwareDatetime).validate_python("2000-01-01T00:00:00Z").tzinfo


_LOCAL_DAYS: dict[tzinfo, LocalDays] = {}


def local_days(tz: tzinfo) -> LocalDays:
    """The shared LocalDays of a zone (its cache lives as long as the process)."""
    days = _LOCAL_DAYS.get(tz)
    if days is None:
        days = _LOCAL_DAYS[tz] = LocalDays(tz)
    return days


@dataclass(slots=True)
class ApplyResult:
    """What applying a batch of one student's events did."""

    touched_days: set[int] = field(default_factory=set)
    applied: int = 0
    duplicates: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    too_late: list[ActivityEvent] = field(default_factory=list)


class StudentActivity:
    """A student's recent activity, in a few flat arrays (about 40 bytes per active day).

    day_list: the local-day ordinals with any count, ascending. rows: their counts (ROW_WIDTH uint32
    each: one count per source, then sessions attended), flat and in the same order: only active days
    cost memory, and the evaluator reads every student's arrays in bulk (see `models.sweep`).
    marks: sorted 64-bit keys of the event ids seen, (day << 44 | 44-bit fingerprint), so that one
    sorted array answers "seen that day?" by bisection and trimming old days cuts a prefix.
    voided: sorted keys (as marks) of the events retracted (an xAPI void), so a retraction counts once.
    offset: last applied message offset of the student's partition (replays at or below it are skipped).
    last_active: latest local day with any engagement, kept even after its bucket is trimmed.
    """

    __slots__ = ("day_list", "last_active", "marks", "offset", "revision", "rows", "voided")

    def __init__(
        self,
        days: dict[int, list[int]] | None = None,
        offset: int = -1,
        last_active: int | None = None,
        revision: int = 0,
    ) -> None:
        self.day_list = array("i")
        self.rows = array("I")
        self.marks = array("Q")
        self.voided = array("Q")
        self.offset = offset
        self.last_active = last_active
        self.revision = revision
        for day, row in sorted((days or {}).items()):
            self.day_list.append(day)
            self.rows.extend(list(row) + [0] * (ROW_WIDTH - len(row)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StudentActivity):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __repr__(self) -> str:
        return (
            f"StudentActivity(days={self.days!r}, offset={self.offset}, "
            f"last_active={self.last_active}, revision={self.revision}, marks={len(self.marks)})"
        )

    def copy(self) -> StudentActivity:
        """An independent copy (four array copies): the stream changes copies, so a batch that raises
        half-way leaves the table's states as they were and can be applied again (streams.poison)."""
        twin = StudentActivity.__new__(StudentActivity)
        twin.day_list = self.day_list[:]
        twin.rows = self.rows[:]
        twin.marks = self.marks[:]
        twin.voided = self.voided[:]
        twin.offset = self.offset
        twin.last_active = self.last_active
        twin.revision = self.revision
        return twin

    @property
    def days(self) -> dict[int, list[int]]:
        """Local-day ordinal -> counts per source (+ attended sessions): a copy, for reading."""
        rows = self.rows
        return {
            day: rows[i * ROW_WIDTH : (i + 1) * ROW_WIDTH].tolist() for i, day in enumerate(self.day_list)
        }

    def seen_days(self) -> list[int]:
        """The local days whose event ids are still remembered."""
        return sorted({mark >> _MARK_BITS for mark in self.marks})

    # -- updates -------------------------------------------------------------------------------------
    def apply(
        self,
        events: Iterable[ActivityEvent],
        offset: int,
        tz: ZoneInfo,
        oldest_accepted_day: int | None = None,
    ) -> ApplyResult:
        """Apply one message's events for this student. Idempotent for a replayed offset."""
        result = ApplyResult()
        if offset <= self.offset:
            result.duplicates = sum(1 for _ in events)
            return result
        days = local_days(tz)
        for event in events:
            day = days.of(event.occurred_at)
            if oldest_accepted_day is not None and day < oldest_accepted_day:
                result.too_late.append(event)
                continue
            source = event.source.value
            if not self.record(day, fingerprint(event.event_id), SOURCE_INDEX[source], event.attended()):
                result.duplicates += 1
                continue
            result.touched_days.add(day)
            result.applied += 1
            result.by_source[source] = result.by_source.get(source, 0) + 1
        self.offset = offset
        if result.applied:
            self.revision += 1
        return result

    def record(self, day: int, mark: int, column: int, attended: bool) -> bool:
        """Count one event on a local day, unless its fingerprint was already seen that day (then
        False). The per-event step of apply() and of the stream's batches (streams.batch), which
        check offsets and lateness themselves."""
        key = day << _MARK_BITS | (mark & _MARK_MASK)
        marks = self.marks
        if not marks or key > marks[-1]:  # the usual case: the newest event of the newest day
            marks.append(key)
        else:
            at = bisect_left(marks, key)
            if marks[at] == key:
                return False
            marks.insert(at, key)
        day_list = self.day_list
        base = (len(day_list) - 1) * ROW_WIDTH if day_list and day_list[-1] == day else self._row(day)
        rows = self.rows
        rows[base + column] += 1
        if column == ATTENDANCE:
            if not attended:  # an absence is expected attendance, not engagement
                return True
            rows[base + ATTENDED] += 1
        last = self.last_active
        if last is None or day > last:
            self.last_active = day
        return True

    def retract(self, day: int, mark: int, column: int, attended: bool) -> str:
        """Uncount one event withdrawn upstream (RETRACTED), at most once (RETRACTION_DUPLICATE after).

        An event not counted (RETRACTION_UNSEEN) gets its mark all the same: if it arrives after its
        retraction, record() takes it for a duplicate, so it never counts. The caller refuses
        retractions older than the marks' horizon (their event's mark may be gone)."""
        key = day << _MARK_BITS | (mark & _MARK_MASK)
        voided = self.voided
        at = bisect_left(voided, key)
        if at < len(voided) and voided[at] == key:
            return RETRACTION_DUPLICATE
        voided.insert(at, key)
        marks = self.marks
        at = bisect_left(marks, key)
        if at == len(marks) or marks[at] != key:
            marks.insert(at, key)
            return RETRACTION_UNSEEN
        base = self._row(day)
        rows = self.rows
        if rows[base + column]:
            rows[base + column] -= 1
        if column == ATTENDANCE and attended and rows[base + ATTENDED]:
            rows[base + ATTENDED] -= 1
        if self.last_active == day and not is_engaged(rows[base : base + ROW_WIDTH]):
            self.last_active = self._latest_engaged()
        return RETRACTED

    def _latest_engaged(self) -> int | None:
        """The latest kept day with engagement (None when none is kept: activity older than the kept
        days is not known any more once the latest is withdrawn)."""
        rows = self.rows
        for i in range(len(self.day_list) - 1, -1, -1):
            if is_engaged(rows[i * ROW_WIDTH : (i + 1) * ROW_WIDTH]):
                return self.day_list[i]
        return None

    def _row(self, day: int) -> int:
        """Where day's row starts in counts, inserting a zero row when the day is new."""
        day_list = self.day_list
        at = bisect_left(day_list, day)
        if at == len(day_list) or day_list[at] != day:
            day_list.insert(at, day)
            self.rows[at * ROW_WIDTH : at * ROW_WIDTH] = _ZERO_ROW
        return at * ROW_WIDTH

    def restore_day(self, day: int, row: list[int], revision: int) -> None:
        """Set one day's absolute counts (rebuilding state from the ClickHouse aggregates)."""
        base = self._row(day)
        full = list(row) + [0] * (ROW_WIDTH - len(row))
        self.rows[base : base + ROW_WIDTH] = array("I", full)
        if is_engaged(full) and (self.last_active is None or day > self.last_active):
            self.last_active = day
        self.revision = max(self.revision, revision)

    def trim(self, keep_from_day: int, seen_from_day: int | None = None) -> None:
        """Forget buckets older than keep_from_day and fingerprints older than seen_from_day (events
        that old are refused as too late, so their ids need no remembering). last_active is kept.
        Called for every student written, so the common nothing-to-trim case is one comparison each."""
        day_list = self.day_list
        if day_list and day_list[0] < keep_from_day:
            cut = bisect_left(day_list, keep_from_day)
            del day_list[:cut]
            del self.rows[: cut * ROW_WIDTH]
        floor = keep_from_day if seen_from_day is None else max(keep_from_day, seen_from_day)
        for keys in (self.marks, self.voided):
            if keys and keys[0] >> _MARK_BITS < floor:
                del keys[: bisect_left(keys, floor << _MARK_BITS)]

    # -- compact binary form (changelog) -------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A compact binary encoding: the changelog record written once per student per batch.

        Layout: the header, the day ordinals (int32), their counts (uint32, ROW_WIDTH per day), then
        the marks (uint64): the in-memory arrays as they are, so encoding is three buffer copies.
        With retractions (version 3): then their count (uint32) and their keys (uint64).
        """
        voided = self.voided
        return b"".join(
            (
                _HEADER.pack(
                    _VOIDED_VERSION if voided else _FORMAT_VERSION,
                    self.offset,
                    -1 if self.last_active is None else self.last_active,
                    self.revision,
                    len(self.day_list),
                    len(self.marks),
                ),
                self.day_list.tobytes(),
                self.rows.tobytes(),
                self.marks.tobytes(),
                _VOIDED_COUNT.pack(len(voided)) + voided.tobytes() if voided else b"",
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StudentActivity:
        version, offset, last_active, revision, n_days, n_marks = _HEADER.unpack_from(data, 0)
        if version not in (_FORMAT_VERSION, _VOIDED_VERSION):
            raise ValueError(
                f"student state format {version} is not {_FORMAT_VERSION}: written by another LDE version; "
                "rebuild the state from a fresh changelog (see README, Upgrading)"
            )
        state = cls(offset=offset, last_active=None if last_active < 0 else last_active, revision=revision)
        position = _HEADER.size
        state.day_list.frombytes(data[position : position + 4 * n_days])
        position += 4 * n_days
        state.rows.frombytes(data[position : position + 4 * n_days * ROW_WIDTH])
        position += 4 * n_days * ROW_WIDTH
        state.marks.frombytes(data[position : position + 8 * n_marks])
        position += 8 * n_marks
        if version == _VOIDED_VERSION:
            (n_voided,) = _VOIDED_COUNT.unpack_from(data, position)
            position += _VOIDED_COUNT.size
            state.voided.frombytes(data[position : position + 8 * n_voided])
            position += 8 * n_voided
        if position != len(data):
            raise ValueError("student state record has the wrong length")
        return state

    # -- reads ---------------------------------------------------------------------------------------
    def last_active_on_or_before(self, day: int) -> int | None:
        """Latest engaged day not after `day` (evaluating a past day must ignore later activity)."""
        if self.last_active is not None and self.last_active <= day:
            return self.last_active
        day_list = self.day_list
        rows = self.rows
        for i in range(bisect_right(day_list, day) - 1, -1, -1):
            if is_engaged(rows[i * ROW_WIDTH : (i + 1) * ROW_WIDTH]):
                return day_list[i]
        # Activity older than the kept buckets is known only through last_active, which is later
        # than `day` here: evaluating further back than the kept horizon treats it as unknown.
        return None

    def counts(self, day: int) -> list[int]:
        """One day's counts (zeros for a day without any)."""
        day_list = self.day_list
        at = bisect_left(day_list, day)
        if at == len(day_list) or day_list[at] != day:
            return [0] * ROW_WIDTH
        return self.rows[at * ROW_WIDTH : (at + 1) * ROW_WIDTH].tolist()

    def window_totals(self, last_day: int, length: int) -> list[int]:
        """Summed counts over the `length` days ending on last_day."""
        totals = [0] * ROW_WIDTH
        day_list = self.day_list
        rows = self.rows
        for i in range(bisect_left(day_list, last_day - length + 1), bisect_right(day_list, last_day)):
            base = i * ROW_WIDTH
            for column in range(ROW_WIDTH):
                totals[column] += rows[base + column]
        return totals


#: A window count of a source the student is not offered (has not used over the offered days):
#: left out of their figures and their group's, as attendance is for a student with no sessions.
NOT_OFFERED = -1
#: The count columns (every source but attendance, which is offered when sessions are expected).
COUNT_COLUMNS = tuple(i for i in range(N_SOURCES) if i != ATTENDANCE)


def mark_not_offered(window: NDArray[np.int64], used: NDArray[np.bool_]) -> None:
    """Set NOT_OFFERED in each count column of `window` (n, ROW_WIDTH) where `used` (n,
    len(COUNT_COLUMNS), from ActivityColumns.used_since) is False."""
    columns = np.asarray(COUNT_COLUMNS)
    block = window[:, columns]
    block[~used] = NOT_OFFERED
    window[:, columns] = block


def is_engaged(row: Sequence[int]) -> bool:
    """Any activity that shows engagement: any non-attendance source, or an attended session."""
    return any(row[i] for i in range(N_SOURCES) if i != ATTENDANCE) or row[ATTENDED] > 0
