"""Adapters: upstream formats -> canonical ActivityEvents, one result per record, never an exception.

Pure: an adapter consumes an iterable of text lines (a file opened in text mode, stdin, a list) and
yields one `Parsed`, `Skipped` or `Invalid` per record, with the record's position, so the caller
(ingest, an HTTP collector, a test) decides what to publish, count and dead-letter. Line formats
stream: a file larger than memory works. The JSON formats (caliper, xapi) are single documents and
are read whole.

Privacy at the edge: titles, document names, item and page names and URLs are read only where a
decision needs them (an asset check, a hash) and never reach an event or a reason. Reasons are fixed
phrases or field names, never input values; only `Invalid.raw` holds the record as it came, for the
dead-letter topic.

Times: an instant with a UTC offset is taken as it is. A CSV time without an offset is local time in
the institution's zone (the `timezone` keyword, default Europe/London). At the clock changes it uses
fold=0 (PEP 495): an ambiguous time (25 Oct 2026 01:30, which happens twice) is the first
occurrence, in BST (00:30Z); a nonexistent one (29 Mar 2026 01:30, skipped by the clocks) is read
with the offset in force before the change, GMT (01:30Z). Caliper, xAPI, EZproxy and canonical JSONL
must carry an offset (their formats require one); a time without it is Invalid there.

Event ids: the upstream id where there is one (Caliper and xAPI ids, library loan ids; attendance is
student + session). Otherwise a deterministic hash of the fields that identify the record, so a
re-sent file produces the same ids and the stream de-duplicates it. Duplicate deliveries are
passed through: de-duplication is the stream's job.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache, partial
from typing import Any, NamedTuple, Protocol, TypeAlias
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from models.events import (
    ActivityEvent,
    AttendanceStatus,
    Attributes,
    InvalidMessage,
    Source,
    describe_validation_error,
    parse_event,
)
from models.timebuckets import zone

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


class _Skip(NamedTuple):
    reason: str


class _Bad(Exception):
    """A record that cannot be read; `reason` must never quote the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_Outcome: TypeAlias = ActivityEvent | _Skip


def _settle(position: str, raw: Callable[[], str], build: Callable[[], _Outcome]) -> Record:
    """Run one record's conversion and turn its outcome or failure into a result (never raises on input)."""
    try:
        outcome = build()
    except _Bad as bad:
        return Invalid(position, bad.reason, raw())
    except ValidationError as error:
        return Invalid(position, describe_validation_error(error), raw())
    if isinstance(outcome, _Skip):
        return Skipped(position, outcome.reason)
    return Parsed(position, outcome)


# -- shared helpers ------------------------------------------------------------------------------------


def _instant(value: object, field: str, tz: ZoneInfo | None) -> datetime:
    """An aware UTC instant from ISO 8601 text; without an offset it is local time in `tz` (fold=0).

    With tz None (formats whose standard requires an offset) a missing offset is invalid.
    """
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"{field}: missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(f"{field}: not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        if tz is None:
            raise _Bad(f"{field}: no UTC offset")
        parsed = parsed.replace(tzinfo=tz, fold=0)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Bad(f"{field}: out of range") from None


def _user(value: object) -> str | None:
    """The student id, or None when the user field is empty or '-' (no one to attribute it to)."""
    if not isinstance(value, str):
        return None
    user = value.strip()
    return None if user in ("", "-") else user


def _derived_id(prefix: str, *parts: str) -> str:
    """A deterministic event id: a hash of the identifying fields (never the fields, e.g. a URL)."""
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return f"{prefix}:{hashlib.blake2b(joined, digest_size=16).hexdigest()}"


def _count(value: str, field: str) -> int:
    """A small non-negative integer written in ASCII digits (int() would accept '1_0' and other scripts)."""
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise _Bad(f"{field}: not a whole number")
    return int(text)


def _event(
    event_id: str,
    student_id: str,
    source: Source,
    occurred_at: datetime,
    attributes: Attributes | None = None,
) -> ActivityEvent:
    return ActivityEvent(
        event_id=event_id,
        student_id=student_id,
        source=source,
        occurred_at=occurred_at,
        attributes=attributes,
    )


def _dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]... or None where a level is missing or not an object (JSON may hold anything)."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


# -- canonical JSONL -----------------------------------------------------------------------------------


def read_lde_jsonl(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Canonical events, one JSON object per line (blank lines ignored). Times must carry an offset."""
    del timezone  # the canonical event requires an offset
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Parsed(f"line {number}", parse_event(line))
        except InvalidMessage as error:
            yield Invalid(f"line {number}", error.reason, line.rstrip("\r\n"))


# -- JSON documents ------------------------------------------------------------------------------------


def _decode(text: str) -> Any:
    """The decoded JSON document; raises _Bad (with the parser's position, never the text) when not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _Bad(f"not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except (ValueError, RecursionError):
        raise _Bad("not JSON: too deeply nested or a number too long") from None


def _dumped(item: Any) -> str:
    """A JSON record re-serialised for the dead-letter topic (ASCII-escaped, so it always encodes)."""
    try:
        return json.dumps(item)
    except (ValueError, RecursionError):
        return repr(item)


_CANVAS = "com.instructure.canvas"
_CALIPER_LOGOFF_ACTIONS = frozenset({"LoggedOut", "TimedOut"})


def _caliper_event(item: Any) -> _Outcome:
    """One Caliper event: every action by a student in the VLE is vle engagement, except logging out."""
    if not isinstance(item, dict):
        raise _Bad("event is not a JSON object")
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise _Bad("id: missing")
    actor = item.get("actor")
    if not isinstance(actor, dict):
        raise _Bad("actor: missing")
    occurred_at = _instant(item.get("eventTime"), "eventTime", None)
    sis_id = _dig(actor, "extensions", _CANVAS, "user_sis_id")
    if sis_id is not None and not isinstance(sis_id, str):
        raise _Bad("actor.extensions.user_sis_id: not a string")
    student = _user(sis_id)
    if student is None:
        return _Skip(NO_USER)  # e.g. a staff or service account: Canvas sends no SIS id for it
    if item.get("action") in _CALIPER_LOGOFF_ACTIONS:
        return _Skip(LOGOFF)
    return _event(event_id, student, Source.VLE, occurred_at)


def read_caliper(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """A Caliper 1.1 envelope ({"data": [events]}) as Canvas live events send it; positions data[i].

    The student is the SIS id in actor.extensions["com.instructure.canvas"].user_sis_id; events with
    none (staff, integrations) are skipped as "no user". eventTime must carry an offset (Caliper: UTC).
    """
    del timezone  # Caliper times are UTC by the standard
    text = "".join(lines)
    if not text.strip():
        return
    try:
        envelope = _decode(text)
    except _Bad as bad:
        yield Invalid("document", bad.reason, text)
        return
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, list):
        yield Invalid("document", "expected a Caliper envelope with a 'data' list", text)
        return
    for index, item in enumerate(data):
        yield _settle(f"data[{index}]", partial(_dumped, item), partial(_caliper_event, item))


_JISC_LATE = "http://xapi.jisc.ac.uk/attendance_late"
_SUBTYPE_KEYS = ("http://xapi.jisc.ac.uk/subType", "http://xapi.jisc.ac.uk/applicationType")
_LMS = "http://id.tincanapi.com/activitytype/lms"
#: Object types that are the VLE itself or its content; any other viewed object is an e-resource.
_VLE_TYPES = frozenset(
    {
        _LMS,
        "http://adlnet.gov/expapi/activities/course",
        "http://adlnet.gov/expapi/activities/module",
        "http://adlnet.gov/expapi/activities/lesson",
    }
)
_VLE_TYPE_PREFIX = "http://xapi.jisc.ac.uk/vle/"
#: Words in context.platform that say a login happened on a campus PC (a directory / workstation feed).
_CAMPUS_PC_WORDS = ("campus pc", "workstation", "active directory", "pc logon", "pc login")


def _verb_name(verb_id: str) -> str:
    """The verb's last path segment, normalised: .../verbs/loggedin/, .../logged-in -> 'loggedin'."""
    segment = verb_id.rstrip("/").rsplit("/", 1)[-1]
    return segment.lower().replace("-", "").replace("_", "")


def _is_vle_object(statement: dict[str, Any]) -> bool:
    definition_type = _dig(statement, "object", "definition", "type")
    subtypes = {_dig(statement, "object", "definition", "extensions", key) for key in _SUBTYPE_KEYS}
    if _LMS in subtypes:
        return True
    return isinstance(definition_type, str) and (
        definition_type in _VLE_TYPES or definition_type.startswith(_VLE_TYPE_PREFIX)
    )


def _login_source(statement: dict[str, Any]) -> Source:
    """Logged in: to the VLE -> vle; on a campus PC (by context.platform) -> pc_logon; else remote.

    Jisc's logged-in recipe marks a VLE login with an lms subType. Campus PC logons normally come from
    the directory (pc-logons CSV); the remaining logged-in statements are application / remote desktop
    / VPN logins, i.e. off-campus access.
    """
    if _is_vle_object(statement):
        return Source.VLE
    platform = _dig(statement, "context", "platform")
    if isinstance(platform, str) and any(word in platform.lower() for word in _CAMPUS_PC_WORDS):
        return Source.PC_LOGON
    return Source.REMOTE


def _attendance_status(statement: dict[str, Any]) -> AttendanceStatus:
    """Jisc attendance: completion false -> absent; the late extension true -> late; else present."""
    result = statement.get("result")
    if not isinstance(result, dict):
        return AttendanceStatus.PRESENT
    if result.get("completion") is False:
        return AttendanceStatus.ABSENT
    if _dig(result, "extensions", _JISC_LATE) is True:
        return AttendanceStatus.LATE
    return AttendanceStatus.PRESENT


def _xapi_statement(statement: Any) -> _Outcome:
    """One xAPI statement mapped by verb (attended, borrowed, viewed, logged in); others are skipped."""
    if not isinstance(statement, dict):
        raise _Bad("statement is not a JSON object")
    event_id = statement.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise _Bad("id: missing")
    actor = statement.get("actor")
    if not isinstance(actor, dict):
        raise _Bad("actor: missing")
    verb_id = _dig(statement, "verb", "id")
    if not isinstance(verb_id, str) or not verb_id.strip():
        raise _Bad("verb.id: missing")
    # xAPI: a statement without a timestamp happened when it was stored.
    when = statement.get("timestamp") if statement.get("timestamp") is not None else statement.get("stored")
    occurred_at = _instant(when, "timestamp", None)
    name = _dig(actor, "account", "name")
    if name is not None and not isinstance(name, str):
        raise _Bad("actor.account.name: not a string")
    student = _user(name)
    if student is None:
        return _Skip(NO_USER)
    verb = _verb_name(verb_id)
    if verb == "attended":
        status = _attendance_status(statement)
        return _event(event_id, student, Source.ATTENDANCE, occurred_at, Attributes(status=status))
    if verb == "borrowed":
        return _event(event_id, student, Source.LIBRARY, occurred_at)
    if verb == "viewed":
        source = Source.VLE if _is_vle_object(statement) else Source.ERESOURCE
        return _event(event_id, student, source, occurred_at)
    if verb == "loggedin":
        return _event(event_id, student, _login_source(statement), occurred_at)
    return _Skip(UNMAPPED_VERB)


def read_xapi(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """xAPI: one statement, an array of statements, or a StatementResult; positions "statement N" (from 1).

    The student is actor.account.name. Mapping by the verb's last path segment:
    attended -> attendance (absent when result.completion is false, late when the Jisc attendance_late
    extension is true, else present); borrowed -> library; viewed -> vle when the object is the VLE or
    VLE content (Jisc vle/* types, ADL course/module/lesson, an lms subType), else eresource;
    logged in -> vle / pc_logon / remote (see _login_source). Other verbs: skipped "unmapped verb".
    """
    del timezone  # xAPI timestamps carry an offset
    text = "".join(lines)
    if not text.strip():
        return
    try:
        decoded = _decode(text)
    except _Bad as bad:
        yield Invalid("document", bad.reason, text)
        return
    if isinstance(decoded, dict) and isinstance(decoded.get("statements"), list):
        statements: list[Any] = decoded["statements"]
    elif isinstance(decoded, dict):
        statements = [decoded]
    elif isinstance(decoded, list):
        statements = decoded
    else:
        yield Invalid("document", "expected a statement, an array of statements or a StatementResult", text)
        return
    for number, statement in enumerate(statements, start=1):
        yield _settle(f"statement {number}", partial(_dumped, statement), partial(_xapi_statement, statement))


# -- EZproxy access log --------------------------------------------------------------------------------

# The request is a quoted string with backslash escapes, written as the "unrolled loop"
# [^"\\]*(?:\\.[^"\\]*)*: the same strings as (?:[^"\\]|\\.)*, without a regex branch per character
# (several times faster on long URLs).
_CLF = re.compile(
    r'(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]*)\] "(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" '
    r"(?P<status>[0-9]{3}) (?P<size>\S+)(?: .*)?"
)
_CLF_TIME = re.compile(
    r"(?P<day>[0-9]{2})/(?P<month>[A-Za-z]{3})/(?P<year>[0-9]{4}):"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2}) "
    r"(?P<sign>[+-])(?P<oh>[0-9]{2})(?P<om>[0-9]{2})"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
    )
}
#: Page furniture a browser fetches on its own: not a student reading anything.
_ASSET_SUFFIXES = frozenset(
    {
        "js", "css", "map", "png", "jpg", "jpeg", "gif", "svg", "ico", "webp", "bmp",
        "woff", "woff2", "ttf", "otf", "eot",
    }
)  # fmt: skip


@lru_cache(maxsize=4096)
def _clf_time(text: str) -> datetime:
    """'27/Oct/2026:21:17:44 +0000' -> UTC instant (month names parsed here: %b depends on the locale).

    Built field by field rather than by strptime (several times faster), accepting exactly what
    strptime("%Y-%m-%d %H:%M:%S %z") did; cached, as a busy log repeats each second many times.
    """
    match = _CLF_TIME.fullmatch(text)
    month = _MONTHS.get(match["month"].lower()) if match else None
    if match is None or month is None:
        raise _Bad("time: not a [dd/Mon/yyyy:hh:mm:ss +zzzz] timestamp")
    try:
        return datetime(
            int(match["year"]),
            month,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=_clf_offset(match["sign"], match["oh"], match["om"]),
        ).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Bad("time: not a valid date-time") from None


@lru_cache(maxsize=256)
def _clf_offset(sign: str, hours: str, minutes: str) -> tzinfo:
    """A fixed UTC offset; ValueError where strptime's %z refused it (minutes past 59, a day or more)."""
    if int(minutes) > 59:
        raise ValueError("offset minutes out of range")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return dt_timezone(-offset if sign == "-" else offset)


def _status_skip(status: int) -> str | None:
    """2xx and 3xx (including 304 Not Modified) are access; anything else is not engagement."""
    if 200 <= status < 400:
        return None
    if status in (401, 403, 407):
        return DENIED
    if status in (404, 410):
        return NOT_FOUND
    if status >= 500:
        return SERVER_ERROR
    return FAILED_REQUEST


def _is_asset(target: str) -> bool:
    path = target.split("?", 1)[0].split("#", 1)[0]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in _ASSET_SUFFIXES


def _ezproxy_line(line: str) -> _Outcome:
    match = _CLF.fullmatch(line)
    if match is None:
        raise _Bad('not an access log line (host ident user [time] "request" status bytes)')
    occurred_at = _clf_time(match["time"])
    status = int(match["status"])
    if not 100 <= status <= 599:
        raise _Bad("status: not an HTTP status")
    student = _user(match["user"])
    if student is None:
        return _Skip(NO_USER)
    skip = _status_skip(status)
    if skip is not None:
        return _Skip(skip)
    request = match["request"].split()
    if not 2 <= len(request) <= 3 or not request[0].isascii() or not request[0].isalpha():
        raise _Bad("request: not 'METHOD target protocol'")
    target = request[1]
    if _is_asset(target):
        return _Skip(ASSET_REQUEST)
    # The URL is hashed together with the user and time: the id names no article, and the same
    # article read by two students gives unrelated ids (no cross-student link by URL).
    event_id = _derived_id("ezproxy", student, occurred_at.isoformat(), request[0], target)
    return _event(event_id, student, Source.ERESOURCE, occurred_at)


def read_ezproxy(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """EZproxy access log (common log format, optionally with more fields); one e-resource event a line.

    Decisions in order: an unreadable line, time or status -> Invalid; user '-' -> "no user";
    status 2xx/3xx -> access, 401/403/407 -> "denied", 404/410 -> "not found", 5xx -> "server error",
    other -> "failed request"; a request for a .js/.css/image/font file -> "asset request".
    The URL never leaves this function except inside Invalid.raw.
    """
    del timezone  # the log carries its offset
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        yield _settle(f"line {number}", partial(str, text), partial(_ezproxy_line, text))


# -- CSV exports ---------------------------------------------------------------------------------------


class _LineTap:
    """The lines the csv reader consumes, so each record knows its first line and raw text."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._count = 0
        self._pending: list[str] = []

    def __iter__(self) -> _LineTap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._count += 1
        if self._count == 1:
            line = line.removeprefix("\ufeff")  # a UTF-8 BOM decoded as text
        self._pending.append(line)
        return line

    def take(self) -> tuple[int, str]:
        """(first line number, raw text) of the lines consumed since the last take."""
        first = self._count - len(self._pending) + 1
        raw = "".join(self._pending).rstrip("\r\n")
        self._pending = []
        return first, raw


_RowConverter = Callable[[Mapping[str, str], ZoneInfo], _Outcome]


def _read_csv(
    lines: Iterable[str], required: tuple[str, ...], convert: _RowConverter, tz: ZoneInfo
) -> Iterator[Record]:
    """Stream a CSV export with a header row; each data row becomes one result at "line N".

    A header without a required column makes every row Invalid (loudly: the export changed). A row
    with a different number of fields than the header is Invalid rather than read with shifted columns.
    """
    tap = _LineTap(lines)
    reader = csv.reader(tap)
    header: list[str] | None = None
    missing = ""
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line, raw = tap.take()
            yield Invalid(f"line {line}", f"unreadable CSV: {error}", raw)
            continue
        line, raw = tap.take()
        if not any(field.strip() for field in fields):
            continue
        position = f"line {line}"
        if header is None:
            header = [field.strip() for field in fields]
            missing = ", ".join(name for name in required if name not in header)
            if missing:
                yield Invalid(position, f"header lacks column(s): {missing}", raw)
            continue
        if missing:
            yield Invalid(position, f"header lacks column(s): {missing}", raw)
            continue
        if len(fields) != len(header):
            yield Invalid(position, f"{len(fields)} fields where the header has {len(header)}", raw)
            continue
        row: dict[str, str] = {}
        for name, value in zip(header, fields, strict=True):
            row.setdefault(name, value)
        yield _settle(position, partial(str, raw), partial(convert, row, tz))


def _required(row: Mapping[str, str], name: str) -> str:
    value = row.get(name, "").strip()
    if not value:
        raise _Bad(f"{name}: missing")
    return value


def _papercut_row(row: Mapping[str, str], tz: ZoneInfo) -> _Outcome:
    """A print job: pages = Pages x Copies. Document Name is never read."""
    occurred_at = _instant(row["Time"], "Time", tz)
    pages = _count(row["Pages"], "Pages") * _count(row["Copies"], "Copies")
    student = _user(row["User"])
    if student is None:
        return _Skip(NO_USER)
    if pages == 0:
        return _Skip(NOTHING_PRINTED)
    event_id = _derived_id(
        "papercut",
        student,
        occurred_at.isoformat(),
        row.get("Printer", ""),
        row.get("Client", ""),
        row["Pages"].strip(),
        row["Copies"].strip(),
    )
    return _event(event_id, student, Source.PRINT, occurred_at, Attributes(pages=pages))


def _pc_logon_row(row: Mapping[str, str], tz: ZoneInfo) -> _Outcome:
    """A directory logon/logoff: the logon is the engagement; the logoff closes it and is skipped."""
    occurred_at = _instant(row["timestamp"], "timestamp", tz)
    kind = row["event"].strip().lower()
    if kind not in ("logon", "logoff"):
        raise _Bad("event: neither logon nor logoff")
    student = _user(row["username"])
    if student is None:
        return _Skip(NO_USER)
    if kind == "logoff":
        return _Skip(LOGOFF)
    event_id = _derived_id("pc-logons", student, occurred_at.isoformat(), row.get("computer", "").strip())
    return _event(event_id, student, Source.PC_LOGON, occurred_at)


def _remote_session_row(row: Mapping[str, str], tz: ZoneInfo) -> _Outcome:
    """One off-campus session: one remote event at its start."""
    occurred_at = _instant(row["session_start"], "session_start", tz)
    student = _user(row["username"])
    if student is None:
        return _Skip(NO_USER)
    event_id = _derived_id(
        "remote-sessions", student, occurred_at.isoformat(), row.get("application", "").strip()
    )
    return _event(event_id, student, Source.REMOTE, occurred_at)


def _library_loan_row(row: Mapping[str, str], tz: ZoneInfo) -> _Outcome:
    """One loan at its local loan time; the title is never read."""
    occurred_at = _instant(row["loan_datetime"], "loan_datetime", tz)
    loan_id = _required(row, "loan_id")
    student = _user(row["user_id"])
    if student is None:
        return _Skip(NO_USER)
    return _event(f"library-loans:{loan_id}", student, Source.LIBRARY, occurred_at)


def _attendance_row(row: Mapping[str, str], tz: ZoneInfo) -> _Outcome:
    """One expected session with its status; the id is student + session, so a re-send de-duplicates."""
    occurred_at = _instant(row["session_start"], "session_start", tz)
    session_id = _required(row, "session_id")
    try:
        status = AttendanceStatus(row["status"].strip().lower())
    except ValueError:
        raise _Bad("status: not one of " + ", ".join(s.value for s in AttendanceStatus)) from None
    student = _user(row["student_id"])
    if student is None:
        return _Skip(NO_USER)
    event_id = f"attendance:{student}:{session_id}"
    return _event(event_id, student, Source.ATTENDANCE, occurred_at, Attributes(status=status))


def read_papercut(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """PaperCut print log CSV; Time is local. Zero pages -> "nothing printed". Document Name is dropped."""
    return _read_csv(lines, ("Time", "User", "Pages", "Copies"), _papercut_row, zone(timezone))


def read_pc_logons(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Campus PC logons CSV: logon -> pc_logon; logoff -> skipped "logoff"; any other event is Invalid."""
    return _read_csv(lines, ("timestamp", "username", "event"), _pc_logon_row, zone(timezone))


def read_remote_sessions(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Remote / VPN sessions CSV: one remote event per session, at session_start."""
    return _read_csv(lines, ("session_start", "username"), _remote_session_row, zone(timezone))


def read_library_loans(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Library loans CSV: loan_datetime is local time (no offset); id from loan_id; title dropped."""
    return _read_csv(lines, ("loan_id", "user_id", "loan_datetime"), _library_loan_row, zone(timezone))


def read_attendance(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Attendance CSV: one attendance event per row at session_start, with its status."""
    required = ("student_id", "session_id", "session_start", "status")
    return _read_csv(lines, required, _attendance_row, zone(timezone))


#: Format name (as `lde ingest --format` spells it) -> adapter.
ADAPTERS: dict[str, Adapter] = {
    "lde-jsonl": read_lde_jsonl,
    "caliper": read_caliper,
    "xapi": read_xapi,
    "ezproxy": read_ezproxy,
    "papercut": read_papercut,
    "pc-logons": read_pc_logons,
    "remote-sessions": read_remote_sessions,
    "library-loans": read_library_loans,
    "attendance": read_attendance,
}
