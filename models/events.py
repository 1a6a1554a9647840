"""The canonical activity event and the envelope that carries many of them in one Kafka message.

Privacy by construction: the models ignore every field they do not declare, so a title, URL or
document name sent by an upstream system is dropped here, at the edge, and can never be stored.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, NotRequired, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from models.event_time import EARLIEST, LATEST, check_event_time


class Source(StrEnum):
    """Where an activity came from. The order is the column order of per-student state."""

    VLE = "vle"
    LIBRARY = "library"
    ERESOURCE = "eresource"
    PRINT = "print"
    PC_LOGON = "pc_logon"
    REMOTE = "remote"
    ATTENDANCE = "attendance"


SOURCES: tuple[Source, ...] = tuple(Source)
SOURCE_INDEX: dict[str, int] = {source.value: i for i, source in enumerate(SOURCES)}


class AttendanceStatus(StrEnum):
    PRESENT = "present"
    LATE = "late"
    ABSENT = "absent"
    AUTHORISED_ABSENCE = "authorised_absence"


ATTENDED_STATUSES = frozenset({AttendanceStatus.PRESENT, AttendanceStatus.LATE})

#: The same values as Source and AttendanceStatus, as Literal types: the stream's fast decoding
#: (EventRecord) validates to plain strings, which are far cheaper to look up than enum members.
SourceName = Literal["vle", "library", "eresource", "print", "pc_logon", "remote", "attendance"]
StatusName = Literal["present", "late", "absent", "authorised_absence"]
assert get_args(SourceName) == tuple(s.value for s in Source), "SourceName must list Source's values"
assert get_args(StatusName) == tuple(s.value for s in AttendanceStatus), "StatusName must match"

StudentId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Pages = Annotated[int, Field(ge=0, le=100_000)]
#: An instant the stream can represent (models.event_time's fixed range, checked natively by pydantic):
#: watermarks and restored days are held to it too.
BoundedInstant = Annotated[AwareDatetime, Field(ge=EARLIEST, lt=LATEST)]
#: An event's time: the fixed range, and the window of the entrance reading it (models.event_time).
EventTime = Annotated[BoundedInstant, AfterValidator(check_event_time)]
#: A local-day ordinal inside the fixed range; a day's counts (uint32 each, as the state stores them).
DayOrdinal = Annotated[int, Field(ge=EARLIEST.toordinal() - 1, lt=LATEST.toordinal() + 1)]
#: A restored day's count: far below the state's uint32, so the day's later events can still be counted.
DayCount = Annotated[int, Field(ge=0, le=1_000_000_000)]
#: A day's row as restored: a count per source, then sessions attended (models.activity.ROW_WIDTH).
DayRow = Annotated[list[DayCount], Field(max_length=len(Source) + 1)]


class Attributes(BaseModel):
    """The only details an event may carry; anything else is ignored (never stored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: AttendanceStatus | None = None
    pages: Pages | None = None


class ActivityEvent(BaseModel):
    """One thing a student did, as any upstream system may send it (one JSON object per line)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    student_id: StudentId
    source: Source
    occurred_at: EventTime
    attributes: Attributes | None = None

    def attended(self) -> bool:
        """True for an attendance record that counts as attended (present or late)."""
        return (
            self.source is Source.ATTENDANCE
            and self.attributes is not None
            and self.attributes.status in ATTENDED_STATUSES
        )


class StudentRestore(BaseModel):
    """Absolute day counts for one student, published by `lde up` to rebuild state on an empty broker."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    student_id: StudentId
    days: dict[DayOrdinal, DayRow]
    last_active: DayOrdinal | None = None
    revision: Annotated[int, Field(ge=0, lt=2**62)] = 0


class Envelope(BaseModel):
    """What one message on the activity topic holds: many events, and optionally a watermark.

    A watermark promises that every event up to that instant has already been published to this
    partition; the event-time clock (replay, simulation) advances on it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    events: list[ActivityEvent] = Field(default_factory=list)
    watermark: BoundedInstant | None = None
    restore: list[StudentRestore] | None = None
    forget: list[StudentId] | None = None  # retention: erase these students' state
    #: Events withdrawn upstream (an xAPI voiding statement): each uncounts the event of the same id,
    #: applied after this message's events.
    retract: list[ActivityEvent] | None = None


_ENVELOPE = TypeAdapter(Envelope)
_WATERMARK: TypeAdapter[datetime] = TypeAdapter(BoundedInstant)
_EVENT = TypeAdapter(ActivityEvent)


class AttributesRecord(TypedDict, total=False):
    """Attributes as a plain dict (unknown keys dropped, as by Attributes)."""

    status: StatusName | None
    pages: Pages | None


class EventRecord(TypedDict):
    """An ActivityEvent as a plain dict: the same fields and the same validation, without a model
    object per event (validated this way an envelope decodes about twice as fast)."""

    event_id: EventId
    student_id: StudentId
    source: SourceName
    occurred_at: EventTime
    attributes: NotRequired[AttributesRecord | None]


class EnvelopeRecord(TypedDict, total=False):
    """An Envelope whose events are EventRecords; it validates exactly when Envelope does."""

    events: list[EventRecord]
    watermark: BoundedInstant | None
    restore: list[StudentRestore] | None
    forget: list[StudentId] | None
    retract: list[EventRecord] | None


_ENVELOPE_RECORD = TypeAdapter(EnvelopeRecord)
_EVENT_RECORD = TypeAdapter(EventRecord)

#: One canonical event (JSON bytes or text) to an EventRecord; raises ValidationError. It accepts
#: exactly what parse_event accepts, at about half the cost (no model object): the ingest hot path.
validate_event_record = _EVENT_RECORD.validate_json


class InvalidMessage(ValueError):
    """A message or record that cannot be decoded; it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_validation_error(error: ValidationError, limit: int = 3) -> str:
    """A short, human-readable reason for a dead-letter header or a CLI summary."""
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = len(error.errors()) - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def parse_event(raw: bytes | str | dict[str, Any]) -> ActivityEvent:
    """Validate one canonical event (JSON text or a decoded object); raise InvalidMessage."""
    try:
        if isinstance(raw, dict):
            return _EVENT.validate_python(raw)
        return _EVENT.validate_json(raw)
    except ValidationError as error:
        raise InvalidMessage(describe_validation_error(error)) from None


class Decoded(NamedTuple):
    events: list[ActivityEvent]
    watermark: datetime | None
    invalid: list[tuple[int, str]]
    restore: list[StudentRestore]
    forget: list[str] = []
    retract: list[ActivityEvent] = []


def decode_message(value: bytes | None) -> Decoded:
    """Decode an activity-topic message: an envelope or one bare canonical event.

    Returns the valid events, the watermark, and the (index, reason) of each invalid event, so a
    single bad event in an envelope costs only itself. Raises InvalidMessage when the message as a
    whole is unreadable.
    """
    if not value:
        raise InvalidMessage("empty message")
    try:
        envelope = _ENVELOPE.validate_json(value)
        if (
            envelope.events
            or envelope.watermark is not None
            or envelope.restore
            or envelope.forget
            or envelope.retract
        ):
            return Decoded(
                envelope.events,
                envelope.watermark,
                [],
                envelope.restore or [],
                list(envelope.forget or []),
                list(envelope.retract or []),
            )
    except ValidationError:
        pass
    try:
        decoded = json.loads(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidMessage(f"not JSON: {error}") from None
    if isinstance(decoded, dict) and "events" not in decoded and "watermark" not in decoded:
        return Decoded([parse_event(decoded)], None, [], [])
    if not isinstance(decoded, dict) or not isinstance(decoded.get("events", []), list):
        raise InvalidMessage("expected an envelope {'events': [...]} or one canonical event object")
    watermark = None
    if decoded.get("watermark") is not None:
        try:
            watermark = _WATERMARK.validate_python(decoded["watermark"])
        except ValidationError as error:
            raise InvalidMessage(f"watermark: {describe_validation_error(error)}") from None
    events: list[ActivityEvent] = []
    invalid: list[tuple[int, str]] = []
    for index, item in enumerate(decoded.get("events", [])):
        try:
            if not isinstance(item, dict):
                raise InvalidMessage("event is not a JSON object")
            events.append(parse_event(item))
        except InvalidMessage as error:
            invalid.append((index, error.reason))
    retract: list[ActivityEvent] = []
    items = decoded.get("retract") or []
    for index, item in enumerate(items if isinstance(items, list) else [items]):
        try:
            if not isinstance(item, dict):
                raise InvalidMessage("event is not a JSON object")
            retract.append(parse_event(item))
        except InvalidMessage as error:
            invalid.append((index, f"retract {index}: {error.reason}"))
    return Decoded(events, watermark, invalid, [], [], retract)


class DecodedRecords(NamedTuple):
    """Decoded, with the valid events as EventRecords."""

    events: list[EventRecord]
    watermark: datetime | None
    invalid: list[tuple[int, str]]
    restore: list[StudentRestore]
    forget: list[str]
    retract: list[EventRecord] = []


def decode_records(value: bytes | None) -> DecodedRecords:
    """decode_message for the stream's hot path: the same outcome for every input, events as dicts.

    A whole valid envelope and a bare valid event (the two everyday shapes) are decoded here, into
    the same fields and values decode_message would produce (EventRecord and EnvelopeRecord validate
    the same types); anything else (a partly invalid envelope, garbage) goes through decode_message
    itself, for its exact reasons.
    """
    if value:
        try:
            envelope = _ENVELOPE_RECORD.validate_json(value)
        except ValidationError:
            envelope = None
        if envelope is not None:
            events = envelope.get("events") or []
            watermark = envelope.get("watermark")
            restore = envelope.get("restore")
            forget = envelope.get("forget")
            retract = envelope.get("retract")
            if events or watermark is not None or restore or forget or retract:
                return DecodedRecords(
                    events, watermark, [], restore or [], list(forget or []), list(retract or [])
                )
            # An object without those keys is one bare event for decode_message, which validates the
            # object json.loads makes of it: the same object the JSON validation below parses.
            if "events" not in envelope and "watermark" not in envelope:
                try:
                    return DecodedRecords([_EVENT_RECORD.validate_json(value)], None, [], [], [])
                except ValidationError:
                    pass  # decode_message says why
    decoded = decode_message(value)
    return DecodedRecords(
        [event_record(e) for e in decoded.events],
        decoded.watermark,
        decoded.invalid,
        decoded.restore,
        decoded.forget,
        [event_record(e) for e in decoded.retract],
    )


def event_record(event: ActivityEvent) -> EventRecord:
    """An ActivityEvent as an EventRecord."""
    record: EventRecord = {
        "event_id": event.event_id,
        "student_id": event.student_id,
        "source": event.source.value,  # type: ignore[typeddict-item]  # one of SourceName
        "occurred_at": event.occurred_at,
    }
    if event.attributes is not None:
        status = event.attributes.status
        record["attributes"] = {
            "status": None if status is None else status.value,  # type: ignore[typeddict-item]
            "pages": event.attributes.pages,
        }
    return record


def record_event(record: EventRecord) -> ActivityEvent:
    """The ActivityEvent of an EventRecord (for a dead letter or a re-route: rare, so not hot)."""
    return ActivityEvent.model_validate(record)


def record_attended(record: EventRecord) -> bool:
    """ActivityEvent.attended() of an EventRecord."""
    if record["source"] != "attendance":
        return False
    attributes = record.get("attributes")
    return attributes is not None and attributes.get("status") in ("present", "late")


def encode_envelope(
    events: list[ActivityEvent],
    watermark: datetime | None = None,
    retract: list[ActivityEvent] | None = None,
) -> bytes:
    """Serialise events (and an optional watermark, and retractions) as one activity-topic message."""
    envelope = Envelope(events=events, watermark=watermark, retract=retract or None)
    return envelope.model_dump_json(exclude_none=True).encode()


def encode_records_envelope(records: list[EventRecord], retract: list[EventRecord] | None = None) -> bytes:
    """encode_envelope for EventRecords: the same bytes as encode_envelope of the same events, without
    building a model object per event (the ingest hot path)."""
    envelope: EnvelopeRecord = {"events": records}
    if retract:
        envelope["retract"] = retract
    return _ENVELOPE_RECORD.dump_json(envelope, exclude_none=True)
