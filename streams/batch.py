"""Apply a batch of activity-topic messages to per-student state. Pure: no Kafka, no ClickHouse.

The Faust agent hands a batch of raw messages here and gets back what to write: each touched
student's new state (once per batch), the absolute day counts for ClickHouse, dead letters with
reasons, events to re-route to their student's partition, and watermarks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from models.activity import StudentActivity
from models.events import ActivityEvent, InvalidMessage, decode_message
from models.partitioning import partition_for


@dataclass(frozen=True, slots=True)
class RawMessage:
    partition: int
    offset: int
    value: bytes | None
    timestamp: float | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something that could not be used, with the reason and where it came from."""

    reason: str
    partition: int
    offset: int
    payload: bytes
    index: int | None = None  # position of the event inside its envelope, when only one event was bad


@dataclass(slots=True)
class BatchOutcome:
    states: dict[str, StudentActivity] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)
    rows: list[tuple[str, int, list[int], int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    misrouted: list[ActivityEvent] = field(default_factory=list)
    watermarks: dict[int, datetime] = field(default_factory=dict)
    last_offsets: dict[int, int] = field(default_factory=dict)
    applied_by_source: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    forget: dict[str, int] = field(default_factory=dict)  # student -> partition, erased by retention
    newest_event: datetime | None = None


def process_batch(
    messages: Sequence[RawMessage],
    load_state: Callable[[str], StudentActivity | None],
    tz: ZoneInfo,
    partitions: int,
    oldest_accepted_day: int | None,
) -> BatchOutcome:
    """Decode, validate, de-duplicate and bucket a batch; each student's state is loaded once."""
    out = BatchOutcome()
    touched_days: dict[str, set[int]] = defaultdict(set)

    def state_of(student_id: str, partition: int) -> StudentActivity:
        state = out.states.get(student_id)
        if state is None:
            state = load_state(student_id) or StudentActivity()
            out.states[student_id] = state
            out.partition_of[student_id] = partition
        return state

    for message in messages:
        out.last_offsets[message.partition] = max(out.last_offsets.get(message.partition, -1), message.offset)
        payload = message.value or b""
        try:
            decoded = decode_message(message.value)
        except InvalidMessage as error:
            out.dead_letters.append(DeadLetter(error.reason, message.partition, message.offset, payload))
            continue
        for index, reason in decoded.invalid:
            out.dead_letters.append(DeadLetter(reason, message.partition, message.offset, payload, index))
        if decoded.watermark is not None:
            current = out.watermarks.get(message.partition)
            if current is None or decoded.watermark > current:
                out.watermarks[message.partition] = decoded.watermark
        for student_id in decoded.forget:
            out.forget[student_id] = message.partition
            out.states.pop(student_id, None)
            touched_days.pop(student_id, None)
        for restore in decoded.restore:
            state = state_of(restore.student_id, message.partition)
            for day, row in restore.days.items():
                state.restore_day(int(day), row, restore.revision)
                touched_days[restore.student_id].add(int(day))
            if restore.last_active is not None and (state.last_active or 0) < restore.last_active:
                state.last_active = restore.last_active

        by_student: dict[str, list[ActivityEvent]] = defaultdict(list)
        for event in decoded.events:
            if partition_for(event.student_id, partitions) != message.partition:
                out.misrouted.append(event)
            else:
                by_student[event.student_id].append(event)
        for student_id, events in by_student.items():
            state = state_of(student_id, message.partition)
            result = state.apply(events, message.offset, tz, oldest_accepted_day)
            out.duplicates += result.duplicates
            touched_days[student_id] |= result.touched_days
            for event in result.too_late:
                out.dead_letters.append(
                    DeadLetter(
                        f"too late: {event.occurred_at.isoformat()} is beyond the lateness limit",
                        message.partition,
                        message.offset,
                        event.model_dump_json().encode(),
                    )
                )
            for event in events:
                if out.newest_event is None or event.occurred_at > out.newest_event:
                    out.newest_event = event.occurred_at
            out.applied_by_source.update(result.by_source)

    for student_id, days in touched_days.items():
        state = out.states[student_id]
        for day in sorted(days):
            out.rows.append((student_id, day, state.counts(day), state.revision))
    return out
