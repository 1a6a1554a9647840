"""Caliper 1.1 as Canvas live events send it: every action by a student in the VLE, except logging out."""

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
    dig,
    dumped_json,
    make_event,
    settle,
    student_of,
    utc_instant,
)
from models.events import Source

_CANVAS = "com.instructure.canvas"
_CALIPER_LOGOFF_ACTIONS = frozenset({"LoggedOut", "TimedOut"})


def _caliper_event(item: Any) -> Outcome:
    """One Caliper event: every action by a student in the VLE is vle engagement, except logging out."""
    if not isinstance(item, dict):
        raise BadRecord("event is not a JSON object")
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise BadRecord("id: missing")
    actor = item.get("actor")
    if not isinstance(actor, dict):
        raise BadRecord("actor: missing")
    occurred_at = utc_instant(item.get("eventTime"), "eventTime", None)
    sis_id = dig(actor, "extensions", _CANVAS, "user_sis_id")
    if sis_id is not None and not isinstance(sis_id, str):
        raise BadRecord("actor.extensions.user_sis_id: not a string")
    student = student_of(sis_id)
    if student is None:
        return Skip(NO_USER)  # e.g. a staff or service account: Canvas sends no SIS id for it
    if item.get("action") in _CALIPER_LOGOFF_ACTIONS:
        return Skip(LOGOFF)
    return make_event(event_id, student, Source.VLE, occurred_at)


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
        envelope = decode_json(text)
    except BadRecord as bad:
        yield Invalid("document", bad.reason, text)
        return
    data = envelope.get("data") if isinstance(envelope, dict) else None
    if not isinstance(data, list):
        yield Invalid("document", "expected a Caliper envelope with a 'data' list", text)
        return
    for index, item in enumerate(data):
        yield settle(f"data[{index}]", partial(dumped_json, item), partial(_caliper_event, item))
