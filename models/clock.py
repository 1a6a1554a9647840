"""Explicit clocks: nothing deep in the code reads the wall clock directly.

Production runs on the wall clock; replay and simulation run on an event-time watermark, so a term of
history replayed at full speed gives the same alerts on the same dates as live arrival.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime | None:
        """The current instant (aware, UTC), or None while an event-time clock has seen no watermark."""
        ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class WatermarkClock:
    """Event time: the lowest watermark over the partitions this worker owns.

    A partition's watermark promises all of its events up to that instant have been processed, so
    the minimum over owned partitions is a safe 'now' for deciding a day is complete.
    """

    def __init__(self) -> None:
        self._by_partition: dict[int, datetime] = {}
        self._owned: frozenset[int] = frozenset()

    def advance(self, partition: int, watermark: datetime) -> None:
        current = self._by_partition.get(partition)
        if current is None or watermark > current:
            self._by_partition[partition] = watermark

    def mark(self, partition: int) -> datetime | None:
        """The partition's own watermark as this worker last saw it (None before its first)."""
        return self._by_partition.get(partition)

    def set_owned(self, partitions: frozenset[int]) -> None:
        self._owned = partitions

    def now(self) -> datetime | None:
        if not self._owned:
            return None
        marks = [self._by_partition.get(p) for p in self._owned]
        if any(mark is None for mark in marks):
            return None
        return min(m for m in marks if m is not None)
