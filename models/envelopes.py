"""What goes on the activity topic: the one envelope builder every entrance uses. Pure.

Events are grouped by their student's partition (state lives per partition) into envelopes of at most
`max_events`, each partition's events in the order they came; a partition's retractions ride in its
last envelope (the stream applies a message's retractions after its events). The HTTP edge (collector,
xAPI, Canvas), `lde ingest`, replay and the simulator all publish what `EnvelopeBuilder` makes, so the
same events give the same bytes on the topic whichever way they entered. Every event passes through
`EnvelopeBuilder.add`: a rule for what may enter the topic belongs there, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from models.activity import StudentActivity
from models.events import (
    ActivityEvent,
    EventRecord,
    StudentRestore,
    encode_envelope,
    encode_records_envelope,
    event_record,
)
from models.partitioning import partition_for

#: Rebuilt student states per restore message (`lde up` on an empty broker).
RESTORE_CHUNK = 200
#: partition_for's own cache is keyed by (student, partitions): the builder keeps a plain dict, cleared
#: at this size so a file larger than memory still streams.
PARTITION_CACHE_SIZE = 1_000_000


class Message(NamedTuple):
    """One message for the activity topic: its partition and its bytes."""

    partition: int
    value: bytes


class EnvelopeBuilder:
    """Events in, a partition's envelope out once it is full and the next event for it comes; `finish`
    returns the rest.

    Streaming (`lde ingest` of a file larger than memory) and one-shot (`envelopes`) use it alike. Not
    thread-safe; one builder per batch of input.
    """

    def __init__(self, partitions: int, max_events: int) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.partitions = partitions
        self.max_events = max_events
        self._groups: dict[int, list[EventRecord]] = {}
        self._retract: dict[int, list[EventRecord]] = {}
        self._partition_of: dict[str, int] = {}

    def partition(self, student_id: str) -> int:
        """The student's partition (Kafka's default partitioner), cached."""
        cached = self._partition_of
        found = cached.get(student_id)
        if found is None:
            if len(cached) >= PARTITION_CACHE_SIZE:
                cached.clear()
            found = cached[student_id] = partition_for(student_id, self.partitions)
        return found

    def add(self, records: Iterable[EventRecord]) -> list[Message]:
        """Queue events; returns the envelopes that filled up (the ingest hot path: keep it lean)."""
        out: list[Message] = []
        groups, size, partition = self._groups, self.max_events, self.partition
        for record in records:
            number = partition(record["student_id"])
            group = groups.get(number)
            if group is None:
                groups[number] = [record]
            elif len(group) >= size:  # sent once the next event comes: a partition's last envelope
                out.append(Message(number, _encode(group, None)))  # waits for `finish` (retractions)
                groups[number] = [record]
            else:
                group.append(record)
        return out

    def retract(self, records: Iterable[EventRecord]) -> None:
        """Queue withdrawn events (xAPI voids): they go in their partition's last envelope."""
        for record in records:
            self._retract.setdefault(self.partition(record["student_id"]), []).append(record)

    def finish(self) -> list[Message]:
        """Every partition's remaining events (and retractions), in partition order; the builder is
        empty afterwards."""
        out: list[Message] = []
        for number in sorted(set(self._groups) | set(self._retract)):
            group = self._groups.get(number, [])
            withdrawn = self._retract.get(number)
            if group or withdrawn:
                out.append(Message(number, _encode(group, withdrawn)))
        self._groups, self._retract = {}, {}
        return out


def _encode(group: list[EventRecord], retract: list[EventRecord] | None) -> bytes:
    # The same bytes as models.events.encode_envelope of the same events (tests pin it).
    return encode_records_envelope(group, retract)


def envelopes(
    events: Iterable[ActivityEvent],
    *,
    partitions: int,
    max_events: int,
    retract: Iterable[ActivityEvent] = (),
) -> list[Message]:
    """All the messages for these events (and retractions), partition by partition."""
    builder = EnvelopeBuilder(partitions, max_events)
    out = builder.add(event_record(event) for event in events)
    builder.retract(event_record(event) for event in retract)
    return sorted(out + builder.finish(), key=lambda message: message.partition)


def watermark_envelopes(instant: datetime, partitions: int) -> list[Message]:
    """A promise to every partition that all events up to `instant` are published (event-time clock)."""
    value = encode_envelope([], watermark=instant)
    return [Message(partition, value) for partition in range(partitions)]


def restore_envelopes(states: Mapping[str, StudentActivity], partitions: int) -> list[Message]:
    """Rebuilt student states (from ClickHouse) as restore messages, `RESTORE_CHUNK` students each."""
    by_partition: dict[int, list[StudentRestore]] = {}
    for student_id, state in states.items():
        by_partition.setdefault(partition_for(student_id, partitions), []).append(
            StudentRestore(
                student_id=student_id,
                days=state.days,
                last_active=state.last_active,
                revision=state.revision,
            )
        )
    out: list[Message] = []
    for partition, items in by_partition.items():
        for start in range(0, len(items), RESTORE_CHUNK):
            chunk = items[start : start + RESTORE_CHUNK]
            value = json.dumps({"restore": [r.model_dump(mode="json") for r in chunk]}).encode()
            out.append(Message(partition, value))
    return out


def forget_envelopes(student_ids: Sequence[str], partitions: int) -> list[Message]:
    """Retention: one 'forget' message per partition naming its students to erase."""
    by_partition: dict[int, list[str]] = {}
    for student_id in student_ids:
        by_partition.setdefault(partition_for(student_id, partitions), []).append(student_id)
    return [
        Message(partition, json.dumps({"forget": ids}).encode()) for partition, ids in by_partition.items()
    ]
