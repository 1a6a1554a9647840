"""The canonical activity event and the envelope that carries many of them in one Kafka message.

Privacy by construction: the models ignore every field they do not declare, so a title, URL or
document name sent by an upstream system is dropped here, at the edge, and can never be stored.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)


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

StudentId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
EventId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Attributes(BaseModel):
    """The only details an event may carry; anything else is ignored (never stored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: AttendanceStatus | None = None
    pages: Annotated[int, Field(ge=0, le=100_000)] | None = None


class ActivityEvent(BaseModel):
    """One thing a student did, as any upstream system may send it (one JSON object per line)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: EventId
    student_id: StudentId
    source: Source
    occurred_at: AwareDatetime
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
    days: dict[int, list[int]]
    last_active: int | None = None
    revision: int = 0


class Envelope(BaseModel):
    """What one message on the activity topic holds: many events, and optionally a watermark.

    A watermark promises that every event up to that instant has already been published to this
    partition; the event-time clock (replay, simulation) advances on it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    events: list[ActivityEvent] = Field(default_factory=list)
    watermark: AwareDatetime | None = None
    restore: list[StudentRestore] | None = None
    forget: list[StudentId] | None = None  # retention: erase these students' state


_ENVELOPE = TypeAdapter(Envelope)
_EVENT = TypeAdapter(ActivityEvent)


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
        if envelope.events or envelope.watermark is not None or envelope.restore or envelope.forget:
            return Decoded(
                envelope.events, envelope.watermark, [], envelope.restore or [], list(envelope.forget or [])
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
            watermark = TypeAdapter(AwareDatetime).validate_python(decoded["watermark"])
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
    return Decoded(events, watermark, invalid, [])


def encode_envelope(events: list[ActivityEvent], watermark: datetime | None = None) -> bytes:
    """Serialise events (and an optional watermark) as one activity-topic message."""
    return Envelope(events=events, watermark=watermark).model_dump_json(exclude_none=True).encode()
