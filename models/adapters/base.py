"""What every adapter shares: the three results, the Adapter contract, the fixed skip reasons, and the
field helpers (times, users, derived ids, JSON documents) the format modules build events with.

Times: an instant with a UTC offset is taken as it is. A CSV time without an offset is local time in
the institution's zone (the `timezone` keyword, default Europe/London). At the clock changes it uses
fold=0 (PEP 495): an ambiguous time (25 Oct 2026 01:30, which happens twice) is the first
occurrence, in BST (00:30Z); a nonexistent one (29 Mar 2026 01:30, skipped by the clocks) is read
with the offset in force before the change, GMT (01:30Z). Caliper, xAPI, EZproxy and canonical JSONL
must carry an offset (their formats require one); a time without it is Invalid there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from models.events import ActivityEvent, Attributes, Source, describe_validation_error

DEFAULT_TIMEZONE = "Europe/London"

# -- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    """A record that became a canonical event."""

    position: str
    event: ActivityEvent


@dataclass(frozen=True, slots=True)
class Skipped:
    """A well-formed record that is deliberately not engagement (counted by reason, not dead-lettered)."""

    position: str
    reason: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that cannot be read; `raw` is the record as it came, for the dead-letter topic."""

    position: str
    reason: str
    raw: str


Record: TypeAlias = Parsed | Skipped | Invalid


class Adapter(Protocol):
    """Every adapter: lines in, one result per record out; `timezone` applies to times without an offset."""

    def __call__(self, lines: Iterable[str], /, *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]: ...


# Skip reasons: fixed phrases, so a summary can count them and no input value can leak into one.
NO_USER = "no user"
LOGOFF = "logoff"
ASSET_REQUEST = "asset request"
DENIED = "denied"
NOT_FOUND = "not found"
SERVER_ERROR = "server error"
FAILED_REQUEST = "failed request"
UNMAPPED_VERB = "unmapped verb"
NOTHING_PRINTED = "nothing printed"


def http_status_skip(status: int) -> str | None:
    """Why a logged HTTP request is not engagement, or None: 2xx and 3xx (304 too) are access."""
    if 200 <= status < 400:
        return None
    if status in (401, 403, 407):
        return DENIED
    if status in (404, 410):
        return NOT_FOUND
    if status >= 500:
        return SERVER_ERROR
    return FAILED_REQUEST


class Skip(NamedTuple):
    """A format's verdict that the record is not engagement; `settle` turns it into `Skipped`."""

    reason: str


class BadRecord(Exception):
    """A record that cannot be read; `reason` must never quote the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: What a format's per-record conversion returns (a bad record raises BadRecord instead).
Outcome: TypeAlias = ActivityEvent | Skip


def settle(position: str, raw: Callable[[], str], build: Callable[[], Outcome]) -> Record:
    """Run one record's conversion and turn its outcome or failure into a result (never raises on input)."""
    try:
        outcome = build()
    except BadRecord as bad:
        return Invalid(position, bad.reason, raw())
    except ValidationError as error:
        return Invalid(position, describe_validation_error(error), raw())
    if isinstance(outcome, Skip):
        return Skipped(position, outcome.reason)
    return Parsed(position, outcome)


# -- shared helpers ------------------------------------------------------------------------------------


def utc_instant(value: object, field: str, tz: ZoneInfo | None) -> datetime:
    """An aware UTC instant from ISO 8601 text; without an offset it is local time in `tz` (fold=0).

    With tz None (formats whose standard requires an offset) a missing offset is invalid.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadRecord(f"{field}: missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRecord(f"{field}: not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if tz is None:
            raise BadRecord(f"{field}: no UTC offset")
        parsed = parsed.replace(tzinfo=tz, fold=0)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadRecord(f"{field}: out of range") from None


def student_of(value: object) -> str | None:
    """The student id, or None when the user field is empty or '-' (no one to attribute it to)."""
    if not isinstance(value, str):
        return None
    user = value.strip()
    return None if user in ("", "-") else user


def derived_id(prefix: str, *parts: str) -> str:
    """A deterministic event id: a hash of the identifying fields (never the fields, e.g. a URL)."""
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return f"{prefix}:{hashlib.blake2b(joined, digest_size=16).hexdigest()}"


def make_event(
    event_id: str,
    student_id: str,
    source: Source,
    occurred_at: datetime,
    attributes: Attributes | None = None,
) -> ActivityEvent:
    """The canonical event, validated by ActivityEvent (a ValidationError becomes Invalid in `settle`)."""
    return ActivityEvent(
        event_id=event_id,
        student_id=student_id,
        source=source,
        occurred_at=occurred_at,
        attributes=attributes,
    )


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]... or None where a level is missing or not an object (JSON may hold anything)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# -- JSON documents ------------------------------------------------------------------------------------


def decode_json(text: str) -> Any:
    """The decoded JSON document; raises BadRecord (the parser's position, never the text) if not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRecord(f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except (ValueError, RecursionError):
        raise BadRecord("not JSON: too deeply nested or a number too long") from None


def dumped_json(item: Any) -> str:
    """A JSON record re-serialised for the dead-letter topic (ASCII-escaped, so it always encodes)."""
    try:
        return json.dumps(item)
    except (ValueError, RecursionError):
        return repr(item)
