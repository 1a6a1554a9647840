"""xAPI statements (Jisc learning analytics recipes), mapped to a source by the verb."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from models.adapters.base import (
    DEFAULT_TIMEZONE,
    NO_USER,
    UNMAPPED_VERB,
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
from models.events import AttendanceStatus, Attributes, Source

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
    definition_type = dig(statement, "object", "definition", "type")
    subtypes = {dig(statement, "object", "definition", "extensions", key) for key in _SUBTYPE_KEYS}
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
    platform = dig(statement, "context", "platform")
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
    if dig(result, "extensions", _JISC_LATE) is True:
        return AttendanceStatus.LATE
    return AttendanceStatus.PRESENT


def _xapi_statement(statement: Any) -> Outcome:
    """One xAPI statement mapped by verb (attended, borrowed, viewed, logged in); others are skipped."""
    if not isinstance(statement, dict):
        raise BadRecord("statement is not a JSON object")
    event_id = statement.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise BadRecord("id: missing")
    actor = statement.get("actor")
    if not isinstance(actor, dict):
        raise BadRecord("actor: missing")
    verb_id = dig(statement, "verb", "id")
    if not isinstance(verb_id, str) or not verb_id.strip():
        raise BadRecord("verb.id: missing")
    # xAPI: a statement without a timestamp happened when it was stored.
    when = statement.get("timestamp") if statement.get("timestamp") is not None else statement.get("stored")
    occurred_at = utc_instant(when, "timestamp", None)
    name = dig(actor, "account", "name")
    if name is not None and not isinstance(name, str):
        raise BadRecord("actor.account.name: not a string")
    student = student_of(name)
    if student is None:
        return Skip(NO_USER)
    verb = _verb_name(verb_id)
    if verb == "attended":
        status = _attendance_status(statement)
        return make_event(event_id, student, Source.ATTENDANCE, occurred_at, Attributes(status=status))
    if verb == "borrowed":
        return make_event(event_id, student, Source.LIBRARY, occurred_at)
    if verb == "viewed":
        source = Source.VLE if _is_vle_object(statement) else Source.ERESOURCE
        return make_event(event_id, student, source, occurred_at)
    if verb == "loggedin":
        return make_event(event_id, student, _login_source(statement), occurred_at)
    return Skip(UNMAPPED_VERB)


#: One statement's outcome (an event or a skip; raises BadRecord): the xAPI statements resource's mapping.
statement_outcome = _xapi_statement


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
        decoded = decode_json(text)
    except BadRecord as bad:
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
        yield settle(
            f"statement {number}", partial(dumped_json, statement), partial(_xapi_statement, statement)
        )
