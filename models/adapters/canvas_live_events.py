"""Canvas Live Events in Canvas's own format: {"metadata": {...}, "body": {...}}, one event a record.

Canvas Data Services sends one event per HTTPS POST (its body the event JSON, or a signed JWT whose
claims are the event: `ops.edge.canvas_signing` opens that before this adapter reads it); `lde ingest`
reads a file of them, one a line (JSONL). The student is `metadata.user_sis_id`, as in the Caliper
adapter. What counts as engagement, from Canvas's event schemas (doc/api/data_services/json/canvas):

- vle: logged_in; asset_accessed (viewing a course, page, file, quiz, discussion, module...: Canvas has
  no separate "wiki page viewed" event); submission_created; submission_comment_created;
  discussion_topic_created; discussion_entry_created; quiz_submitted; wiki_page_created and
  wiki_page_updated (students edit group pages).
- skipped "logoff": logged_out. Skipped "not engagement": everything else (course, enrollment,
  grading, outcome, account and SIS events, which are system or staff actions; conversation messages,
  which are private mail, not study; discussion_entry_submitted, which repeats discussion_entry_created
  for a graded discussion). Canvas has no attendance event (Roll Call attendance is not a live event).
- skipped "no user": an event without a user SIS id (system jobs, staff or integration accounts).
- skipped "masquerade": metadata.real_user_id differs from user_id, i.e. an administrator acting as the
  student: not the student's engagement.

Privacy at the edge: titles (asset_name, display_name, filename), URLs (url, referrer, redirect_url),
texts, names, logins, user agents and IPs are never read. The event id is derived from ids only:
event_name, user_id, event_time, request_id or job_id and the body's *_id fields. Canvas gives the
same event the same values on a re-delivery, so a re-sent event de-duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    LOGOFF,
    NO_USER,
    BadRecord,
    Invalid,
    Outcome,
    Record,
    Skip,
    decode_json,
    derived_id,
    dumped_json,
    make_event,
    settle,
    student_of,
    utc_instant,
)
from models.events import Source

NOT_ENGAGEMENT = "not engagement"
MASQUERADE = "masquerade"

#: Canvas event names that are a student's own engagement with their studies (see the module doc).
ENGAGEMENT_EVENTS = frozenset(
    {
        "logged_in",
        "asset_accessed",
        "submission_created",
        "submission_comment_created",
        "discussion_topic_created",
        "discussion_entry_created",
        "quiz_submitted",
        "wiki_page_created",
        "wiki_page_updated",
    }
)
LOGOFF_EVENTS = frozenset({"logged_out"})


def _identifier(value: object, field: str) -> str | None:
    """A Canvas id as text (ids come as strings or numbers), None when absent; never a float or object."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRecord(f"{field}: not an id")
    text = str(value).strip()
    return text or None


def _body_ids(body: object) -> list[str]:
    """The body's id fields (asset_id, submission_id, ...) as key=value, sorted: ids, never titles."""
    if not isinstance(body, dict):
        return []
    return sorted(
        f"{key}={value}"
        for key, value in body.items()
        if isinstance(key, str)
        and (key == "id" or key.endswith("_id"))
        and isinstance(value, str | int)
        and not isinstance(value, bool)
    )


def _live_event(item: Any) -> Outcome:
    """One Canvas live event: engagement -> vle; the decisions in the module doc, in that order."""
    if not isinstance(item, dict):
        raise BadRecord("event is not a JSON object")
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        raise BadRecord("metadata: missing")
    name = metadata.get("event_name")
    if not isinstance(name, str) or not name.strip():
        raise BadRecord("metadata.event_name: missing")
    name = name.strip()
    event_time = metadata.get("event_time")
    occurred_at = utc_instant(event_time, "metadata.event_time", None)
    sis_id = metadata.get("user_sis_id")
    if sis_id is not None and not isinstance(sis_id, str):
        raise BadRecord("metadata.user_sis_id: not a string")
    user_id = _identifier(metadata.get("user_id"), "metadata.user_id")
    real_user_id = _identifier(metadata.get("real_user_id"), "metadata.real_user_id")
    if name in LOGOFF_EVENTS:
        return Skip(LOGOFF)
    if name not in ENGAGEMENT_EVENTS:
        return Skip(NOT_ENGAGEMENT)
    student = student_of(sis_id)
    if student is None:
        return Skip(NO_USER)
    if real_user_id is not None and real_user_id != user_id:
        return Skip(MASQUERADE)
    request = _identifier(metadata.get("request_id"), "metadata.request_id")
    job = _identifier(metadata.get("job_id"), "metadata.job_id")
    event_id = derived_id(
        "canvas-live",
        name,
        user_id or student,
        str(event_time).strip(),
        request or job or "",
        *_body_ids(item.get("body")),
    )
    return make_event(event_id, student, Source.VLE, occurred_at)


def _line_records(lines: Iterable[str], first: int) -> Iterator[Record]:
    """JSONL: one event a line at "line N"; blank lines are ignored."""
    for number, line in enumerate(lines, start=first):
        text = line.strip()
        if not text:
            continue
        position = f"line {number}"
        if not text.startswith("{") and text.count(".") == 2 and " " not in text:
            yield Invalid(
                position,
                "a signed (JWT) event: send it to the collector, which checks its signature",
                line.rstrip("\r\n"),
            )
            continue
        yield settle(position, partial(str, line.rstrip("\r\n")), partial(_decoded_event, text))


def _decoded_event(text: str) -> Outcome:
    return _live_event(decode_json(text))


def read_canvas_live_events(lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[Record]:
    """Canvas live events: JSONL (a file, "line N"), or one request body with the whole event (the
    collector: a multi-line JSON object is "document"; a body of several lines that is not one object
    is read as JSONL). Times must carry an offset (Canvas: UTC, "Z")."""
    del timezone  # Canvas's event_time is UTC by its schema
    number = 1
    for chunk in lines:
        inner = chunk.strip()
        if "\n" in inner or "\r" in inner:  # a whole request body, not one line of a file
            try:
                document = decode_json(inner)
            except BadRecord:
                document = None
            if isinstance(document, dict):
                yield settle("document", partial(dumped_json, document), partial(_live_event, document))
                number += 1
                continue
            parts = chunk.splitlines()
            yield from _line_records(parts, number)
            number += len(parts)
            continue
        yield from _line_records([chunk], number)
        number += 1
