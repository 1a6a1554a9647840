"""The canonical event and envelopes: validation, bad input contained, private fields dropped."""

import json

import pytest

from models.events import InvalidMessage, decode_message, encode_envelope, parse_event

GOOD = {
    "event_id": "e1",
    "student_id": "900412771",
    "source": "vle",
    "occurred_at": "2026-10-24T23:30:41Z",
}


def test_unknown_fields_are_dropped_at_the_edge() -> None:
    event = parse_event(
        {**GOOD, "title": "Secret Title", "url": "https://x/doc", "attributes": {"document_name": "d.pdf"}}
    )
    dumped = event.model_dump_json()
    for private in ("Secret Title", "https://x/doc", "d.pdf", "title", "url"):
        assert private not in dumped


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"source": "canteen"}, "source"),
        ({"occurred_at": "2026-10-24T23:30:41"}, "occurred_at"),  # no offset
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"student_id": ""}, "student_id"),
        ({"event_id": None}, "event_id"),
        ({"attributes": {"status": "asleep"}}, "attributes.status"),
        ({"attributes": {"pages": -1}}, "attributes.pages"),
    ],
)
def test_invalid_events_name_the_field(change: dict, fragment: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse_event({**GOOD, **change})
    assert fragment in caught.value.reason


def test_envelope_round_trip_and_single_event_messages() -> None:
    event = parse_event(GOOD)
    decoded = decode_message(encode_envelope([event, event]))
    assert decoded.events == [event, event]
    assert decoded.invalid == []
    single = decode_message(json.dumps(GOOD).encode())
    assert single.events == [event]


def test_one_bad_event_in_an_envelope_costs_only_itself() -> None:
    payload = json.dumps({"events": [GOOD, {**GOOD, "source": "x"}, "nonsense", GOOD]}).encode()
    decoded = decode_message(payload)
    assert len(decoded.events) == 2
    assert [index for index, _ in decoded.invalid] == [1, 2]


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe", b"not json", b"[1,2]", b'{"events": 5}', b"null"])
def test_unreadable_messages_raise_invalid_message(payload: bytes) -> None:
    with pytest.raises(InvalidMessage):
        decode_message(payload)
