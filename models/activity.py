"""Per-student rolling activity state: local day x source counts in one value.

All of a student's recent activity lives in one object so the stream writes it once per batch
(one changelog record per touched student), instead of one record per window per event as Faust's
windowed tables do. Pure: no I/O, serialisable to a compact JSON-ready dict.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, TypeAdapter

from models.events import SOURCE_INDEX, ActivityEvent, Source

#: Column layout of one day's counts: one count per source, then sessions attended.
N_SOURCES = len(SOURCE_INDEX)
ATTENDED = N_SOURCES
ROW_WIDTH = N_SOURCES + 1
ATTENDANCE = SOURCE_INDEX[Source.ATTENDANCE.value]


_FORMAT_VERSION = 1
_HEADER = struct.Struct("<BqqqII")  # version, offset, last_active (-1 none), revision, days, seen days
_SEEN_DAY = struct.Struct("<II")  # day ordinal, number of fingerprints


def fingerprint(event_id: str) -> int:
    """A stable 63-bit fingerprint of an event id, for de-duplication (Python's hash() differs between
    processes, so it cannot be kept in the changelog).

    CRC-32 (bits 31-62) and Adler-32 (bits 0-31) of the UTF-8 id: two C checksums, about four times
    cheaper than a cryptographic digest on the per-event path, and CRC-32 alone never confuses two
    ids of the same length that differ only within 32 consecutive bits (serial numbers). A false match
    only matters within one student's one day.
    """
    data = event_id.encode()
    return zlib.crc32(data) << 31 ^ zlib.adler32(data)


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


@dataclass(slots=True)
class StudentActivity:
    """A student's recent activity.

    days: local-day ordinal -> counts per source (+ attended sessions), trimmed to the longest window
    plus lateness. seen: fingerprints of event ids per day, for de-duplicating upstream re-sends; each
    day's fingerprints are the keys of a dict (values None) rather than a set, because a dict of ints
    is not tracked by Python's cyclic garbage collector (a set always is): with a set per student per
    day, collections walked hundreds of thousands of them.
    offset: last applied message offset of the student's partition (replays at or below it are skipped).
    last_active: latest local day with any engagement, kept even after its bucket is trimmed.
    """

    days: dict[int, list[int]] = field(default_factory=dict)
    seen: dict[int, dict[int, None]] = field(default_factory=dict)
    offset: int = -1
    last_active: int | None = None
    revision: int = 0

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
        seen_today = self.seen.get(day)
        if seen_today is None:
            self.seen[day] = {mark: None}
        elif mark in seen_today:
            return False
        else:
            seen_today[mark] = None
        row = self.days.get(day)
        if row is None:
            row = self.days[day] = [0] * ROW_WIDTH
        row[column] += 1
        if column == ATTENDANCE:
            if not attended:  # an absence is expected attendance, not engagement
                return True
            row[ATTENDED] += 1
        last = self.last_active
        if last is None or day > last:
            self.last_active = day
        return True

    def restore_day(self, day: int, row: list[int], revision: int) -> None:
        """Set one day's absolute counts (rebuilding state from the ClickHouse aggregates)."""
        self.days[day] = list(row) + [0] * (ROW_WIDTH - len(row))
        if is_engaged(self.days[day]) and (self.last_active is None or day > self.last_active):
            self.last_active = day
        self.revision = max(self.revision, revision)

    def trim(self, keep_from_day: int, seen_from_day: int | None = None) -> None:
        """Forget buckets older than keep_from_day and fingerprints older than seen_from_day (events
        that old are refused as too late, so their ids need no remembering). last_active is kept.
        Called for every student written, so the common nothing-to-trim case is one min() each."""
        days = self.days
        if days and min(days) < keep_from_day:
            for day in [d for d in days if d < keep_from_day]:
                del days[day]
        seen_floor = keep_from_day if seen_from_day is None else max(keep_from_day, seen_from_day)
        seen = self.seen
        if seen and min(seen) < seen_floor:
            for day in [d for d in seen if d < seen_floor]:
                del seen[day]

    # -- compact binary form (changelog) -------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A compact binary encoding: the changelog record written once per student per batch.

        Layout: the header; per day (ascending) its ordinal then its counts, as uint32; per day of
        fingerprints (ascending) its ordinal and count as two uint32, then its fingerprints as uint64
        (in the order they were seen, which from_bytes keeps). Each section is built as one flat list
        and converted by one array: this runs for every touched student of every batch.
        """
        days = self.days
        flat_days: list[int] = []
        append, extend = flat_days.append, flat_days.extend
        for day, row in sorted(days.items()):
            append(day)
            extend(row)
        seen = self.seen
        flat_seen: list[int] = []
        append, extend = flat_seen.append, flat_seen.extend
        for day, marks in sorted(seen.items()):
            append(day | len(marks) << 32)  # the (ordinal, count) uint32 pair, little-endian
            extend(marks)
        return b"".join(
            (
                _HEADER.pack(
                    _FORMAT_VERSION,
                    self.offset,
                    -1 if self.last_active is None else self.last_active,
                    self.revision,
                    len(days),
                    len(seen),
                ),
                array("I", flat_days).tobytes(),
                array("Q", flat_seen).tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StudentActivity:
        version, offset, last_active, revision, n_days, n_seen = _HEADER.unpack_from(data, 0)
        if version != _FORMAT_VERSION:
            raise ValueError(f"unknown student state format {version}")
        position = _HEADER.size
        flat = array("I")
        width = (ROW_WIDTH + 1) * n_days
        flat.frombytes(data[position : position + 4 * width])
        position += 4 * width
        days = {flat[i]: flat[i + 1 : i + 1 + ROW_WIDTH].tolist() for i in range(0, width, ROW_WIDTH + 1)}
        seen: dict[int, dict[int, None]] = {}
        for _ in range(n_seen):
            day, count = _SEEN_DAY.unpack_from(data, position)
            position += _SEEN_DAY.size
            marks = array("Q")
            marks.frombytes(data[position : position + 8 * count])
            position += 8 * count
            seen[day] = dict.fromkeys(marks)
        return cls(
            days=days,
            seen=seen,
            offset=offset,
            last_active=None if last_active < 0 else last_active,
            revision=revision,
        )

    # -- reads ---------------------------------------------------------------------------------------
    def last_active_on_or_before(self, day: int) -> int | None:
        """Latest engaged day not after `day` (evaluating a past day must ignore later activity)."""
        if self.last_active is not None and self.last_active <= day:
            return self.last_active
        candidates = [d for d, row in self.days.items() if d <= day and is_engaged(row)]
        # Activity older than the kept buckets is known only through last_active, which is later
        # than `day` here: evaluating further back than the kept horizon treats it as unknown.
        return max(candidates) if candidates else None

    def counts(self, day: int) -> list[int]:
        row = self.days.get(day)
        return [0] * ROW_WIDTH if row is None else row

    def window_totals(self, last_day: int, length: int) -> list[int]:
        """Summed counts over the `length` days ending on last_day."""
        totals = [0] * ROW_WIDTH
        for day in range(last_day - length + 1, last_day + 1):
            row = self.days.get(day)
            if row:
                for i, value in enumerate(row):
                    totals[i] += value
        return totals


def is_engaged(row: list[int]) -> bool:
    """Any activity that shows engagement: any non-attendance source, or an attended session."""
    return any(row[i] for i in range(N_SOURCES) if i != ATTENDANCE) or row[ATTENDED] > 0


def ordinal_to_date(day: int) -> date:
    return date.fromordinal(day)
