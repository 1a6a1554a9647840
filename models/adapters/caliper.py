"""Caliper 1.1 and 1.2 envelopes: every action by a student in the VLE, except logging out.

Who the student is: Canvas live events name the SIS id in the actor's Canvas extension
(actor.extensions["com.instructure.canvas"].user_sis_id), which wins when present. Any other sensor
(IMS's caliper-python, caliper-js, a publisher's platform) names a Person by an IRI only
(`https://example.edu/users/554433`), so the institution maps Person ids to student ids
(`PersonMap`): a user map of exact ids (`read_person_map`, a CSV person_id,student_id) and IRI
patterns, regular expressions with a named group `student` that must match the whole id. The map is
tried first, then the patterns in order. An actor that is not a Person (a SoftwareApplication, an
Organization), or whose id nothing maps, is skipped ("no user", "no user mapping"), never guessed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
NO_MAPPING = "no user mapping"
NOT_AN_EVENT = "not an event"
#: Longer Person ids are not matched against the patterns (an IRI is far shorter).
MAX_PERSON_ID = 2048
STUDENT_GROUP = "student"


class BadPersonPattern(ValueError):
    """A configured Person id pattern that cannot be used (the message says why)."""


def person_pattern(text: str) -> re.Pattern[str]:
    """A Person id pattern: a regular expression with a named group `student`. Raises BadPersonPattern."""
    try:
        pattern = re.compile(text)
    except re.error as error:
        raise BadPersonPattern(f"{text!r} is not a regular expression: {error}") from None
    if STUDENT_GROUP not in pattern.groupindex:
        raise BadPersonPattern(f"{text!r} has no named group (?P<{STUDENT_GROUP}>...) for the student id")
    return pattern


@dataclass(frozen=True)
class PersonMap:
    """Caliper Person ids -> student ids: exact ids first (a user map), then patterns in order."""

    ids: Mapping[str, str] = field(default_factory=dict)
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, patterns: Sequence[str] = (), ids: Mapping[str, str] | None = None) -> PersonMap:
        """From pattern texts and a user map. Raises BadPersonPattern."""
        return cls(dict(ids or {}), tuple(person_pattern(p) for p in patterns))

    def student(self, person_id: str) -> str | None:
        """The student id of a Person id, or None when nothing maps it."""
        if person_id in self.ids:
            return self.ids[person_id]
        if len(person_id) > MAX_PERSON_ID:
            return None
        for pattern in self.patterns:
            match = pattern.fullmatch(person_id)
            if match:
                return student_of(match.group(STUDENT_GROUP))
        return None


@dataclass
class PersonIds:
    """A user map read from a file: Person id -> student id, and what could not be read (by line)."""

    ids: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows: int = 0


def read_person_map(lines: Iterable[str]) -> PersonIds:
    """A CSV with a header naming the columns person_id and student_id (others ignored). A Person id
    given two different student ids keeps the first, and the line is reported (never its values)."""
    out = PersonIds()
    reader = csv.DictReader(line.lstrip("\ufeff") if i == 0 else line for i, line in enumerate(lines))
    try:
        header = [name.strip() for name in reader.fieldnames or ()]
        if not {"person_id", "student_id"} <= set(header):
            out.problems.append("line 1: header lacks the columns person_id and student_id")
            return out
        reader.fieldnames = header
        for row in reader:
            out.rows += 1
            person, student = (row.get("person_id") or "").strip(), student_of(row.get("student_id"))
            if not person or student is None:
                out.problems.append(f"line {reader.line_num}: person_id or student_id missing")
                continue
            if out.ids.setdefault(person, student) != student:
                out.problems.append(
                    f"line {reader.line_num}: a second, different student id (the first is kept)"
                )
    except csv.Error as error:
        out.problems.append(f"line {reader.line_num}: unreadable CSV: {error}")
    return out


def _actor_student(actor: Any, people: PersonMap) -> str | Skip:
    """The student an actor names: Canvas's SIS id extension, else a Person id through the map."""
    if isinstance(actor, str):  # an IRI reference to an entity described elsewhere
        actor = {"id": actor}
    if not isinstance(actor, dict):
        raise BadRecord("actor: missing")
    sis_id = dig(actor, "extensions", _CANVAS, "user_sis_id")
    if sis_id is not None and not isinstance(sis_id, str):
        raise BadRecord("actor.extensions.user_sis_id: not a string")
    student = student_of(sis_id)
    if student is not None:
        return student
    # Canvas sends no SIS id for staff and service accounts: without a mapping, still "no user".
    unmapped = Skip(NO_USER) if dig(actor, "extensions", _CANVAS) is not None else Skip(NO_MAPPING)
    person_id = actor.get("id")
    if actor.get("type", "Person") != "Person" or not isinstance(person_id, str) or not person_id.strip():
        return Skip(NO_USER)  # e.g. a software application acting on its own
    return people.student(person_id.strip()) or unmapped


def _caliper_event(item: Any, people: PersonMap) -> Outcome:
    """One Caliper event: every action by a student in the VLE is vle engagement, except logging out."""
    if not isinstance(item, dict):
        raise BadRecord("event is not a JSON object")
    if "actor" not in item and "action" not in item and not str(item.get("type", "Event")).endswith("Event"):
        return Skip(NOT_AN_EVENT)  # an entity described in the envelope (Caliper allows them in data)
    event_id = item.get("id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise BadRecord("id: missing")
    actor = item.get("actor")
    if actor is None:
        raise BadRecord("actor: missing")
    occurred_at = utc_instant(item.get("eventTime"), "eventTime", None)
    student = _actor_student(actor, people)
    if isinstance(student, Skip):
        return student
    if item.get("action") in _CALIPER_LOGOFF_ACTIONS:
        return Skip(LOGOFF)
    return make_event(event_id, student, Source.VLE, occurred_at)


def read_caliper(
    lines: Iterable[str], *, timezone: str = DEFAULT_TIMEZONE, people: PersonMap | None = None
) -> Iterator[Record]:
    """A Caliper 1.1 or 1.2 envelope ({"sensor", "sendTime", "dataVersion", "data": [events]});
    positions data[i].

    The student: Canvas's SIS id extension, else the actor's Person id through `people` (none: every
    such event is skipped as "no user mapping"); actors that are not a Person are skipped as "no
    user", entities described in `data` as "not an event". eventTime must carry an offset (Caliper: UTC).
    """
    del timezone  # Caliper times are UTC by the standard
    people = people or PersonMap()
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
        yield settle(f"data[{index}]", partial(dumped_json, item), partial(_caliper_event, item, people))
