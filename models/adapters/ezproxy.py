"""EZproxy access logs (common log format): one e-resource event per page a student requested."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache, partial

from models.adapters.base import (
    ASSET_REQUEST,
    DEFAULT_TIMEZONE,
    NO_USER,
    BadRecord,
    Outcome,
    Record,
    Skip,
    derived_id,
    http_status_skip,
    make_event,
    settle,
    student_of,
)
from models.events import Source

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
        raise BadRecord("time: not a [dd/Mon/yyyy:hh:mm:ss +zzzz] timestamp")
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
        raise BadRecord("time: not a valid date-time") from None


@lru_cache(maxsize=256)
def _clf_offset(sign: str, hours: str, minutes: str) -> tzinfo:
    """A fixed UTC offset; ValueError where strptime's %z refused it (minutes past 59, a day or more)."""
    if int(minutes) > 59:
        raise ValueError("offset minutes out of range")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return dt_timezone(-offset if sign == "-" else offset)


def _is_asset(target: str) -> bool:
    path = target.split("?", 1)[0].split("#", 1)[0]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return "." in last and last.rsplit(".", 1)[-1].lower() in _ASSET_SUFFIXES


def _ezproxy_line(line: str) -> Outcome:
    match = _CLF.fullmatch(line)
    if match is None:
        raise BadRecord('not an access log line (host ident user [time] "request" status bytes)')
    occurred_at = _clf_time(match["time"])
    status = int(match["status"])
    if not 100 <= status <= 599:
        raise BadRecord("status: not an HTTP status")
    student = student_of(match["user"])
    if student is None:
        return Skip(NO_USER)
    skip = http_status_skip(status)
    if skip is not None:
        return Skip(skip)
    request = match["request"].split()
    if not 2 <= len(request) <= 3 or not request[0].isascii() or not request[0].isalpha():
        raise BadRecord("request: not 'METHOD target protocol'")
    target = request[1]
    if _is_asset(target):
        return Skip(ASSET_REQUEST)
    # The URL is hashed together with the user and time: the id names no article, and the same
    # article read by two students gives unrelated ids (no cross-student link by URL).
    event_id = derived_id("ezproxy", student, occurred_at.isoformat(), request[0], target)
    return make_event(event_id, student, Source.ERESOURCE, occurred_at)


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
        yield settle(f"line {number}", partial(str, text), partial(_ezproxy_line, text))
