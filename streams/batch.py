"""Apply a batch of activity-topic messages to per-student state. Pure: no Kafka, no ClickHouse.

The Faust agent hands a batch of raw messages here and gets back what to write: each touched
student's new state (once per batch), the absolute day counts for ClickHouse, dead letters with
reasons, events to re-route to their student's partition, and watermarks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from models.activity import (
    ATTENDANCE,
    N_SOURCES,
    RETRACTED,
    RETRACTION_DUPLICATE,
    StudentActivity,
    fingerprint,
    local_days,
)
from models.event_time import TimeWindow
from models.events import (
    SOURCE_INDEX,
    SOURCES,
    ActivityEvent,
    EventRecord,
    InvalidMessage,
    decode_records,
    record_attended,
    record_event,
)
from models.partitioning import partition_for
from models.timebuckets import local_day
from streams.gc_pause import collector_paused


@dataclass(frozen=True, slots=True)
class RawMessage:
    partition: int
    offset: int
    value: bytes | None
    timestamp: float | None = None


TOO_LATE = "too late"  # how a dead letter's reason starts when its event was beyond the lateness limit
#: How a dead letter's reason starts when its event was outside the accepted time window (issue 22).
OUT_OF_WINDOW = "out of window"
#: How a dead letter's reason starts when its message raised every time it was applied (issue 22).
POISON = "poison"
#: A retraction of an event beyond the lateness limit: that day may be judged already, and its event's
#: mark may be gone, so it is skipped (counted, not dead-lettered: a void needs no operator).
RETRACTION_TOO_LATE = "retraction_too_late"


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
    #: Events skipped as re-deliveries or upstream re-sends, and events beyond the lateness limit
    #: (dead-lettered), per source: the operator's "skipped" counts.
    duplicates_by_source: Counter[str] = field(default_factory=Counter)
    too_late_by_source: Counter[str] = field(default_factory=Counter)
    #: Events outside the accepted time window (dead-lettered), per source: never counted, and never
    #: seen by the feed-freshness gauge (a far-future event must not make a dead feed look alive).
    out_of_window_by_source: Counter[str] = field(default_factory=Counter)
    forget: dict[str, int] = field(default_factory=dict)  # student -> partition, erased by retention
    #: Retractions (xAPI voids) that uncounted their event, per source, and those skipped, per
    #: (source, reason): models.activity's RETRACTION_* reasons and RETRACTION_TOO_LATE.
    retracted_by_source: Counter[str] = field(default_factory=Counter)
    retractions_skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    newest_event: datetime | None = None
    #: Newest event time per source in the batch (duplicates and late events included: they still show
    #: the feed arriving), for the feed-freshness gauge.
    newest_by_source: dict[str, datetime] = field(default_factory=dict)
    #: Offsets of messages skipped whole as replays (every student's state already past the offset),
    #: per partition: expected after a restart or takeover, logged so that a skip can be checked.
    replayed: dict[int, list[int]] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return sum(self.duplicates_by_source.values())

    def too_late(self) -> tuple[int, list[int], int] | None:
        """Events set aside as beyond the lateness limit, for the operator's log line: how many,
        the partitions they came from, the first message offset; None when there were none."""
        late = [d for d in self.dead_letters if d.reason.startswith(TOO_LATE)]  # one per event
        if not late:
            return None
        return len(late), sorted({d.partition for d in late}), min(d.offset for d in late)


def oldest_accepted_days(
    references: Mapping[int, datetime | None], lateness: timedelta, tz: ZoneInfo
) -> dict[int, int]:
    """Per partition, the oldest local day (ordinal) whose events are still accepted: the day of the
    partition's reference instant less the lateness limit. A partition without a reference (None)
    is left out: it accepts every day.

    The reference is per partition because, on the event clock, a worker's "now" is the lowest
    watermark over the partitions it owned at its last evaluator tick: a partition just taken over,
    with days of backlog, was judged against the other partitions' later watermarks and its backlog
    was dead-lettered as too late (the fault harness lost four partitions' last days that way).
    """
    return {
        partition: local_day(reference - lateness, tz).toordinal()
        for partition, reference in references.items()
        if reference is not None
    }


#: student id -> partition, per partition count: the batch asks for every event (partition_for's own
#: cache keys on a tuple, which costs more than the lookup itself).
_OWNERS: dict[int, dict[str, int]] = {}
_OWNERS_LIMIT = 1_000_000


def _owners(partitions: int) -> dict[str, int]:
    owners = _OWNERS.setdefault(partitions, {})
    if len(owners) >= _OWNERS_LIMIT:
        owners.clear()
    return owners


def process_batch(
    messages: Sequence[RawMessage],
    load_state: Callable[[str], StudentActivity | None],
    tz: ZoneInfo,
    partitions: int,
    oldest_accepted_day: Mapping[int, int],
    window: TimeWindow | None = None,
) -> BatchOutcome:
    """Decode, validate, de-duplicate and bucket a batch; each student's state is loaded once.

    The same outcome as applying each message's events student by student with
    StudentActivity.apply, in one pass over the events: an envelope of 100 events usually holds 100
    different students, so per-student, per-message work (a result object, a counter update, a
    list per student) cost more than the events themselves.

    The cyclic collector is paused meanwhile: a batch allocates several container objects per event
    (decoded records, rows, new day buckets); reference counting frees nearly all of them when the
    batch ends, but while they live they set off a young-generation collection every 700 allocations
    and, as the students' state grows, full collections that walk every student's state (0.3 s each
    at 20,000 students, a third of the batch time in profiles).

    oldest_accepted_day gives, per partition, the oldest local day (ordinal) whose events are still
    accepted (older ones are dead-lettered as too late); a partition not in it accepts every day.
    `window` bounds event times (models.event_time): an event outside it is dead-lettered, whatever
    published it (the entrances refuse such events first; this holds for any other producer).
    """
    with collector_paused():
        return _process_batch(messages, load_state, tz, partitions, oldest_accepted_day, window)


def _process_batch(
    messages: Sequence[RawMessage],
    load_state: Callable[[str], StudentActivity | None],
    tz: ZoneInfo,
    partitions: int,
    oldest_accepted_day: Mapping[int, int],
    window: TimeWindow | None,
) -> BatchOutcome:
    out = BatchOutcome()
    touched_days: dict[str, set[int]] = {}
    states = out.states
    last_offsets = out.last_offsets
    dead_letters = out.dead_letters
    misrouted = out.misrouted
    day_of = local_days(tz).of
    owners = _owners(partitions)
    applied = [0] * N_SOURCES
    duplicates = [0] * N_SOURCES
    too_late = [0] * N_SOURCES
    out_of_window = [0] * N_SOURCES
    newest: list[datetime | None] = [None] * N_SOURCES  # per source column
    earliest = window.earliest if window is not None else None
    latest = window.latest if window is not None else None

    def state_of(student_id: str, partition: int) -> StudentActivity:
        state = states.get(student_id)
        if state is None:
            state = load_state(student_id) or StudentActivity()
            states[student_id] = state
            out.partition_of[student_id] = partition
        return state

    for message in messages:
        partition = message.partition
        offset = message.offset
        oldest = oldest_accepted_day.get(partition)
        if offset > last_offsets.get(partition, -1):
            last_offsets[partition] = offset
        payload = message.value or b""
        try:
            decoded = decode_records(message.value)
        except InvalidMessage as error:
            dead_letters.append(DeadLetter(error.reason, partition, offset, payload))
            continue
        for index, reason in decoded.invalid:
            dead_letters.append(DeadLetter(reason, partition, offset, payload, index))
        if decoded.watermark is not None:
            current = out.watermarks.get(partition)
            if current is None or decoded.watermark > current:
                out.watermarks[partition] = decoded.watermark
        for student_id in decoded.forget:
            out.forget[student_id] = partition
            states.pop(student_id, None)
            touched_days.pop(student_id, None)
        for restore in decoded.restore:
            state = state_of(restore.student_id, partition)
            restored = touched_days.setdefault(restore.student_id, set())
            for day, row in restore.days.items():
                state.restore_day(int(day), row, restore.revision)
                restored.add(int(day))
            if restore.last_active is not None and (state.last_active or 0) < restore.last_active:
                state.last_active = restore.last_active
        if not decoded.events and not decoded.retract:
            continue

        # Per student of this message: its state and touched days, or None when the message's
        # offset is already in the state (a replay: every event of it is a duplicate).
        targets: dict[str, tuple[StudentActivity, set[int]] | None] = {}
        counted: set[str] = set()  # students with an event counted (their revision moves once)
        late: list[tuple[str, EventRecord]] = []
        outside: list[tuple[int, EventRecord, str]] = []
        for index, record in enumerate(decoded.events):
            student_id = record["student_id"]
            owner = owners.get(student_id)
            if owner is None:
                owner = owners[student_id] = partition_for(student_id, partitions)
            if owner != partition:
                misrouted.append(record_event(record))
                continue
            occurred_at = record["occurred_at"]
            column = SOURCE_INDEX[record["source"]]
            if earliest is not None and (
                occurred_at < earliest or (latest is not None and occurred_at > latest)
            ):
                assert window is not None
                outside.append((index, record, window.refusal(occurred_at) or "outside the window"))
                out_of_window[column] += 1
                continue
            seen = newest[column]
            if seen is None or occurred_at > seen:
                newest[column] = occurred_at
            if student_id in targets:
                target = targets[student_id]
            else:
                state = states.get(student_id) or state_of(student_id, partition)
                days = touched_days.get(student_id)
                if days is None:
                    days = touched_days[student_id] = set()
                if offset <= state.offset:
                    target = None
                else:
                    state.offset = offset
                    target = (state, days)
                targets[student_id] = target
            if target is None:
                duplicates[column] += 1
                continue
            day = day_of(occurred_at)
            if oldest is not None and day < oldest:
                late.append((student_id, record))
                too_late[column] += 1
                continue
            attended = column == ATTENDANCE and record_attended(record)
            if target[0].record(day, fingerprint(record["event_id"]), column, attended):
                target[1].add(day)
                applied[column] += 1
                counted.add(student_id)
            else:
                duplicates[column] += 1
        for record in decoded.retract:
            student_id = record["student_id"]
            source = record["source"]
            if partition_for(student_id, partitions) != partition:
                dead_letters.append(
                    DeadLetter(
                        "retraction published to another partition than its student's",
                        partition,
                        offset,
                        payload,
                    )
                )
                continue
            if student_id in targets:
                target = targets[student_id]
            else:
                state = state_of(student_id, partition)
                days = touched_days.setdefault(student_id, set())
                target = None if offset <= state.offset else (state, days)
                if target is not None:
                    state.offset = offset
                targets[student_id] = target
            if target is None:
                out.retractions_skipped[(source, RETRACTION_DUPLICATE)] += 1
                continue
            day = day_of(record["occurred_at"])
            if oldest is not None and day < oldest:
                out.retractions_skipped[(source, RETRACTION_TOO_LATE)] += 1
                continue
            column = SOURCE_INDEX[source]
            attended = column == ATTENDANCE and record_attended(record)
            done = target[0].retract(day, fingerprint(record["event_id"]), column, attended)
            if done == RETRACTED:
                target[1].add(day)
                out.retracted_by_source[source] += 1
                counted.add(student_id)
            else:
                out.retractions_skipped[(source, done)] += 1
        for student_id in counted:
            states[student_id].revision += 1
        if targets and all(target is None for target in targets.values()):
            out.replayed.setdefault(partition, []).append(offset)
        for index, record, reason in outside:
            dead_letters.append(
                DeadLetter(
                    f"{OUT_OF_WINDOW}: occurred_at {reason}",
                    partition,
                    offset,
                    record_event(record).model_dump_json().encode(),
                    index,
                )
            )
        if late:
            # StudentActivity.apply's order: student by student (first appearance), then event order.
            rank = {student_id: i for i, student_id in enumerate(targets)}
            late.sort(key=lambda item: rank[item[0]])
            for _, record in late:
                event = record_event(record)
                dead_letters.append(
                    DeadLetter(
                        f"{TOO_LATE}: {event.occurred_at.isoformat()} is beyond the lateness limit",
                        partition,
                        offset,
                        event.model_dump_json().encode(),
                    )
                )

    out.duplicates_by_source.update({SOURCES[i].value: n for i, n in enumerate(duplicates) if n})
    out.too_late_by_source.update({SOURCES[i].value: n for i, n in enumerate(too_late) if n})
    out.out_of_window_by_source.update({SOURCES[i].value: n for i, n in enumerate(out_of_window) if n})
    out.newest_by_source = {SOURCES[i].value: t for i, t in enumerate(newest) if t is not None}
    out.newest_event = max(out.newest_by_source.values(), default=None)
    out.applied_by_source.update({SOURCES[i].value: n for i, n in enumerate(applied) if n})
    rows = out.rows
    for student_id, touched in touched_days.items():
        state = states[student_id]
        counts = state.counts
        revision = state.revision
        rows.extend([(student_id, day, counts(day), revision) for day in sorted(touched)])
    return out


class SlicedBatch:
    """A batch applied a slice at a time (issue 26: the event loop is given back between slices),
    gathered into the outcome one pass over the whole batch would give.

    Each slice is processed with the earlier slices' states (`loader`), so its states are the same
    objects, further on. A (student, day) touched in several slices has a row from each; the last
    is kept, which holds the day's final counts (its version is the student's revision at that
    slice, lower than one pass would give when a later slice touched only other days: versions only
    order a student's rows, and the counts are absolute). Rows are kept by (student, day) as they
    come, so a batch of many slices costs what its rows cost, not rows times slices (the first
    version filtered every earlier row at each slice: at 30,000 students it took most of the loop)."""

    def __init__(self) -> None:
        self.total = BatchOutcome()
        self._rows: dict[tuple[str, int], tuple[str, int, list[int], int]] = {}
        self._days: dict[str, list[tuple[str, int]]] = defaultdict(list)

    def loader(
        self, load_state: Callable[[str], StudentActivity | None]
    ) -> Callable[[str], StudentActivity | None]:
        """The next slice's state loader (see `slice_loader`)."""
        return slice_loader(self.total, load_state)

    def add(self, part: BatchOutcome) -> None:
        """Add the outcome of the batch's next slice."""
        total = self.total
        for student_id, partition in part.forget.items():  # erased: the earlier slices' rows go too
            total.forget[student_id] = partition
            total.states.pop(student_id, None)
            for key in self._days.pop(student_id, ()):
                self._rows.pop(key, None)
        total.states.update(part.states)
        total.partition_of.update(part.partition_of)
        for row in part.rows:
            key = (row[0], row[1])
            if key not in self._rows:
                self._days[row[0]].append(key)
            self._rows[key] = row
        total.dead_letters.extend(part.dead_letters)
        total.misrouted.extend(part.misrouted)
        for partition, mark in part.watermarks.items():
            if partition not in total.watermarks or mark > total.watermarks[partition]:
                total.watermarks[partition] = mark
        for partition, offset in part.last_offsets.items():
            total.last_offsets[partition] = max(offset, total.last_offsets.get(partition, -1))
        total.applied_by_source.update(part.applied_by_source)
        total.duplicates_by_source.update(part.duplicates_by_source)
        total.too_late_by_source.update(part.too_late_by_source)
        total.out_of_window_by_source.update(part.out_of_window_by_source)
        total.retracted_by_source.update(part.retracted_by_source)
        total.retractions_skipped.update(part.retractions_skipped)
        for source, moment in part.newest_by_source.items():
            if source not in total.newest_by_source or moment > total.newest_by_source[source]:
                total.newest_by_source[source] = moment
        total.newest_event = max(total.newest_by_source.values(), default=None)
        for partition, offsets in part.replayed.items():
            total.replayed.setdefault(partition, []).extend(offsets)

    def outcome(self) -> BatchOutcome:
        """The batch's outcome, rows included."""
        self.total.rows = list(self._rows.values())
        return self.total


def slice_loader(
    total: BatchOutcome, load_state: Callable[[str], StudentActivity | None]
) -> Callable[[str], StudentActivity | None]:
    """The next slice's state loader: the earlier slices' state of a student, else the stored one
    (as one pass would load it: a student erased earlier in the batch loads the stored state)."""

    def load(student_id: str) -> StudentActivity | None:
        found = total.states.get(student_id)
        return found if found is not None else load_state(student_id)

    return load
