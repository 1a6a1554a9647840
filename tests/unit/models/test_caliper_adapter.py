"""Issue 25.3: Caliper envelopes from any sensor. Person ids mapped to students by a user map and by
IRI patterns; the IMS 1.1 and 1.2 example shapes and Canvas's extension read from tests/fixtures/caliper."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest

from models.adapters import Invalid, Parsed, Record, Skipped, read_caliper
from models.adapters.caliper import BadPersonPattern, PersonMap, person_pattern, read_person_map
from tests.fixtures import caliper as fixtures

PEOPLE = PersonMap.of(fixtures.PATTERNS, fixtures.PEOPLE)


def records(name: str, people: PersonMap | None = PEOPLE) -> list[Record]:
    return list(read_caliper([fixtures.text(name)], people=people))


@pytest.mark.parametrize("name", [fixtures.V1P1, fixtures.V1P2, fixtures.CANVAS])
def test_the_specifications_envelopes_count_as_written_by_hand(name: str) -> None:
    accepted, duplicates, skipped = fixtures.EXPECTED[name]
    read = records(name)
    events = [r.event for r in read if isinstance(r, Parsed)]
    assert not [r for r in read if isinstance(r, Invalid)]
    assert {r.position: r.reason for r in read if isinstance(r, Skipped)} == skipped
    assert len({e.event_id for e in events}) == accepted and len(events) - accepted == duplicates
    per_student = Counter(e.student_id for e in {e.event_id: e for e in events}.values())
    assert dict(per_student) == {s: sum(d.values()) for s, d in fixtures.DAYS[name].items()}
    assert {e.source.value for e in events} == {"vle"}


def test_nothing_private_reaches_an_event_or_a_reason() -> None:
    for name in (fixtures.V1P1, fixtures.V1P2, fixtures.CANVAS):
        for record in records(name):
            shown = (
                repr(record.event) if isinstance(record, Parsed) else repr((record.position, record.reason))
            )
            assert not [p for p in fixtures.PRIVATE if p in shown], (name, record)


def test_without_a_mapping_plain_person_actors_are_skipped_and_canvas_still_counts() -> None:
    reasons = Counter(r.reason for r in records(fixtures.V1P1, None) if isinstance(r, Skipped))
    assert reasons == {"no user mapping": 7, "no user": 1}  # the student is asked before the action
    assert not [r for r in records(fixtures.V1P1, None) if isinstance(r, Parsed)]
    canvas = records(fixtures.CANVAS, None)
    assert [r.event.student_id for r in canvas if isinstance(r, Parsed)] == ["900300004"]


def event(actor: Any, **extra: Any) -> str:
    item = {
        "id": "urn:uuid:1",
        "type": "ViewEvent",
        "action": "Viewed",
        "eventTime": "2026-10-05T09:00:00.000Z",
    }
    return json.dumps({"data": [{**item, "actor": actor, **extra}]})


def one(body: str, people: PersonMap) -> Record:
    [record] = list(read_caliper([body], people=people))
    return record


def student(record: Record) -> str:
    assert isinstance(record, Parsed), record
    return record.event.student_id


def test_canvas_sis_id_wins_over_the_mapping() -> None:
    actor = {
        "id": "https://example.edu/users/900300001",
        "type": "Person",
        "extensions": {"com.instructure.canvas": {"user_sis_id": "900111222"}},
    }
    assert student(one(event(actor), PEOPLE)) == "900111222"
    no_sis = {**actor, "extensions": {"com.instructure.canvas": {"user_login": "x"}}}
    assert student(one(event(no_sis), PEOPLE)) == "900300001"  # a pattern still maps it
    unknown = {**no_sis, "id": "urn:instructure:canvas:user:1"}
    assert one(event(unknown), PEOPLE) == Skipped("data[0]", "no user")  # Canvas's own verdict, as before


def test_the_user_map_is_tried_before_the_patterns_and_patterns_in_order() -> None:
    people = PersonMap.of(
        [r"https://a\.edu/u/(?P<student>\d+)", r"https://a\.edu/(?P<student>.+)"],
        {"https://a.edu/u/1": "900000009"},
    )
    assert people.student("https://a.edu/u/1") == "900000009"
    assert people.student("https://a.edu/u/42") == "42"
    assert people.student("https://a.edu/other") == "other"
    assert people.student("https://b.edu/u/42") is None


def test_a_pattern_must_match_the_whole_id_and_give_a_student() -> None:
    people = PersonMap.of([r"https://a\.edu/u/(?P<student>\d+)", r"x(?P<student>\s*)"])
    assert people.student("https://a.edu/u/42/extra") is None
    assert people.student("prefix https://a.edu/u/42") is None
    assert people.student("x  ") is None  # an empty student id maps to nobody
    assert people.student("https://a.edu/u/" + "1" * 3000) is None  # too long to be a Person IRI


@pytest.mark.parametrize(
    ("actor", "reason"),
    [
        ({"id": "https://example.edu", "type": "SoftwareApplication"}, "no user"),
        ({"type": "Person"}, "no user"),
        ({"id": "  ", "type": "Person"}, "no user"),
        ({"id": "https://elsewhere.example/users/1", "type": "Person"}, "no user mapping"),
        ("https://elsewhere.example/users/1", "no user mapping"),
    ],
)
def test_actors_nobody_maps_are_skipped_with_the_reason(actor: Any, reason: str) -> None:
    assert one(event(actor), PEOPLE) == Skipped("data[0]", reason)


def test_an_iri_actor_is_a_person_reference() -> None:
    assert student(one(event("https://example.edu/users/900300001"), PEOPLE)) == "900300001"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"id": "urn:uuid:1", "type": "ViewEvent", "eventTime": "2026-10-05T09:00:00Z"}, "actor: missing"),
        (
            {"id": "urn:uuid:1", "type": "ViewEvent", "actor": 7, "eventTime": "2026-10-05T09:00:00Z"},
            "actor: missing",
        ),
        ({"type": "ViewEvent", "actor": "https://example.edu/users/900300001"}, "id: missing"),
        (
            {
                "id": "u",
                "actor": {"extensions": {"com.instructure.canvas": {"user_sis_id": 9}}},
                "eventTime": "x",
            },
            "eventTime",
        ),
    ],
)
def test_events_that_cannot_be_read_are_invalid(item: dict[str, Any], reason: str) -> None:
    record = one(json.dumps({"data": [item]}), PEOPLE)
    assert isinstance(record, Invalid) and record.reason.startswith(reason), record


def test_entities_in_the_envelope_are_not_events() -> None:
    entity = {"id": "https://example.edu/users/900300001", "type": "Person"}
    assert one(json.dumps({"data": [entity]}), PEOPLE) == Skipped("data[0]", "not an event")


@pytest.mark.parametrize(
    ("text", "message"),
    [("(unclosed", "not a regular expression"), (r"https://a\.edu/u/(\d+)", "no named group")],
)
def test_unusable_patterns_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(BadPersonPattern, match=message):
        person_pattern(text)
    with pytest.raises(BadPersonPattern):
        PersonMap.of([text])


def test_the_user_map_file_reads_ids_and_reports_lines_it_cannot_use() -> None:
    read = read_person_map(io.StringIO(fixtures.text(fixtures.PERSON_MAP)))
    assert read.ids == fixtures.PEOPLE and read.rows == 3
    assert read.problems == ["line 4: person_id or student_id missing"]
    twice = read_person_map(
        ["\ufeffperson_id,student_id\n", "p,900000001\n", "p,900000002\n", "p,900000001\n"]
    )
    assert twice.ids == {"p": "900000001"}
    assert twice.problems == ["line 3: a second, different student id (the first is kept)"]
    assert "900000002" not in " ".join(twice.problems)
    wrong = read_person_map(["canvas_user_id,sis_user_id\n", "1,900000001\n"])
    assert wrong.ids == {} and wrong.problems == ["line 1: header lacks the columns person_id and student_id"]
    assert read_person_map([]).problems == ["line 1: header lacks the columns person_id and student_id"]
