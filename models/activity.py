"""Per-student rolling activity state: local day x source counts in one value.

All of a student's recent activity lives in one object so the stream writes it once per batch
(one changelog record per touched student), instead of one record per window per event as Faust's
windowed tables do. Pure: no I/O, serialisable to a compact JSON-ready dict.
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

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
    """A stable 63-bit fingerprint of an event id (Python's hash() differs between processes)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


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
    plus lateness. seen: fingerprints of event ids per day, for de-duplicating upstream re-sends.
    offset: last applied message offset of the student's partition (replays at or below it are skipped).
    last_active: latest local day with any engagement, kept even after its bucket is trimmed.
    """

    days: dict[int, list[int]] = field(default_factory=dict)
    seen: dict[int, set[int]] = field(default_factory=dict)
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
        for event in events:
            day = event.occurred_at.astimezone(tz).toordinal()
            if oldest_accepted_day is not None and day < oldest_accepted_day:
                result.too_late.append(event)
                continue
            mark = fingerprint(event.event_id)
            seen_today = self.seen.get(day)
            if seen_today is None:
                seen_today = self.seen[day] = set()
            elif mark in seen_today:
                result.duplicates += 1
                continue
            seen_today.add(mark)
            row = self.days.get(day)
            if row is None:
                row = self.days[day] = [0] * ROW_WIDTH
            column = SOURCE_INDEX[event.source.value]
            row[column] += 1
            engaged = True
            if column == ATTENDANCE:
                engaged = event.attended()
                if engaged:
                    row[ATTENDED] += 1
            if engaged and (self.last_active is None or day > self.last_active):
                self.last_active = day
            result.touched_days.add(day)
            result.applied += 1
            result.by_source[event.source.value] = result.by_source.get(event.source.value, 0) + 1
        self.offset = offset
        if result.applied:
            self.revision += 1
        return result

    def restore_day(self, day: int, row: list[int], revision: int) -> None:
        """Set one day's absolute counts (rebuilding state from the ClickHouse aggregates)."""
        self.days[day] = list(row) + [0] * (ROW_WIDTH - len(row))
        if is_engaged(self.days[day]) and (self.last_active is None or day > self.last_active):
            self.last_active = day
        self.revision = max(self.revision, revision)

    def trim(self, keep_from_day: int, seen_from_day: int | None = None) -> None:
        """Forget buckets older than keep_from_day and fingerprints older than seen_from_day (events
        that old are refused as too late, so their ids need no remembering). last_active is kept."""
        for day in [d for d in self.days if d < keep_from_day]:
            del self.days[day]
        seen_floor = keep_from_day if seen_from_day is None else max(keep_from_day, seen_from_day)
        for day in [d for d in self.seen if d < seen_floor]:
            del self.seen[day]

    # -- compact binary form (changelog) -------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A compact binary encoding: the changelog record written once per student per batch."""
        flat_days = array("I")
        for day in sorted(self.days):
            flat_days.append(day)
            flat_days.extend(self.days[day])
        parts = [
            _HEADER.pack(
                _FORMAT_VERSION,
                self.offset,
                -1 if self.last_active is None else self.last_active,
                self.revision,
                len(self.days),
                len(self.seen),
            ),
            flat_days.tobytes(),
        ]
        for day in sorted(self.seen):
            marks = array("Q", sorted(self.seen[day]))
            parts.append(_SEEN_DAY.pack(day, len(marks)))
            parts.append(marks.tobytes())
        return b"".join(parts)

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
        seen: dict[int, set[int]] = {}
        for _ in range(n_seen):
            day, count = _SEEN_DAY.unpack_from(data, position)
            position += _SEEN_DAY.size
            marks = array("Q")
            marks.frombytes(data[position : position + 8 * count])
            position += 8 * count
            seen[day] = set(marks)
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
        return self.days.get(day, [0] * ROW_WIDTH)

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
