"""The one envelope builder: every entrance (HTTP, `lde ingest`, replay, the agent's re-route) puts the
same bytes on the activity topic for the same events, and those bytes are pinned to the ones LDE
published before the entrances shared it."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.activity import StudentActivity
from models.envelopes import (
    EnvelopeBuilder,
    Message,
    envelopes,
    forget_envelopes,
    restore_envelopes,
    watermark_envelopes,
)
from models.events import ActivityEvent, decode_message, encode_envelope, event_record, parse_event
from models.partitioning import partition_for

SOURCES = ["vle", "library", "attendance", "print"]


def workload(count: int = 250) -> list[ActivityEvent]:
    """Deterministic events over 13 students, with attendance statuses and printed pages."""
    start = datetime(2026, 10, 19, 8, 0, tzinfo=UTC)
    events = []
    for i in range(count):
        source = SOURCES[i % 4]
        raw: dict[str, object] = {
            "event_id": f"e{i}",
            "student_id": f"9000{i * 7 % 13:02d}",
            "source": source,
            "occurred_at": (start + timedelta(minutes=17 * i)).isoformat(),
        }
        if source == "attendance":
            raw["attributes"] = {"status": ["present", "absent", "late"][i % 3]}
        if source == "print":
            raw["attributes"] = {"pages": i % 9}
        events.append(parse_event(raw))
    return events


def digest(messages: list[Message]) -> str:
    h = hashlib.sha256()
    for partition, value in messages:
        h.update(f"{partition}:".encode() + value + b"\n")
    return h.hexdigest()


EVENTS = workload()


def test_the_bytes_on_the_topic_are_the_ones_published_before() -> None:
    """Digests of what the collector, the xAPI resource and the publisher sent for this input before
    they shared the builder (computed with their own code): a change here changes the wire format."""
    plain = envelopes(EVENTS, partitions=4, max_events=7)
    assert digest(plain) == "4159f86fcb7a85ecf0352bbc534ab43acfdd32f725b7e6160097625896b4b097"
    voids = envelopes(EVENTS[:140], partitions=4, max_events=7, retract=EVENTS[200:])
    assert digest(voids) == "83da9ce15c58e04ca85a5a4387ad407964cfbd13f94886d64f2d84f2994698e3"
    full = envelopes(EVENTS[:14], partitions=1, max_events=7, retract=EVENTS[14:20])
    assert digest(full) == "1a336b9b0cd310c15f155b53d02ec15746803e76f8655776281d2af447c92025"


def test_one_envelope_reads_as_written() -> None:
    [(partition, value)] = envelopes(EVENTS[:1], partitions=4, max_events=100)
    assert partition == partition_for(EVENTS[0].student_id, 4)
    assert value == (
        b'{"events":[{"event_id":"e0","student_id":"900000","source":"vle",'
        b'"occurred_at":"2026-10-19T08:00:00Z"}]}'
    )


def reference(
    events: list[ActivityEvent], retract: list[ActivityEvent], partitions: int, size: int
) -> dict[int, list[bytes]]:
    """The rule in its plainest form: a partition's events in order, cut every `size`, encoded by the
    Envelope model; its retractions in its last envelope."""
    out: dict[int, list[bytes]] = {}
    for p in range(partitions):
        mine = [e for e in events if partition_for(e.student_id, partitions) == p]
        gone = [e for e in retract if partition_for(e.student_id, partitions) == p]
        starts = list(range(0, len(mine), size)) or ([0] if gone else [])
        out[p] = [
            encode_envelope(mine[s : s + size], retract=gone if s == starts[-1] else None) for s in starts
        ]
    return {p: values for p, values in out.items() if values}


def by_partition(messages: list[Message]) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for partition, value in messages:
        out.setdefault(partition, []).append(value)
    return out


@given(
    count=st.integers(0, 60),
    voided=st.integers(0, 10),
    partitions=st.integers(1, 5),
    size=st.integers(1, 9),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_streamed_and_one_shot_are_the_reference(
    count: int, voided: int, partitions: int, size: int, cuts: list[int]
) -> None:
    """`lde ingest` feeds the builder in blocks; the HTTP edge all at once: the same messages per
    partition, each holding one partition's students only and at most `size` events."""
    events, retract = EVENTS[:count], EVENTS[count : count + voided]
    expected = reference(events, retract, partitions, size)
    one_shot = envelopes(events, partitions=partitions, max_events=size, retract=retract)
    assert by_partition(one_shot) == expected
    assert [m.partition for m in one_shot] == sorted(m.partition for m in one_shot)
    builder = EnvelopeBuilder(partitions, size)
    streamed: list[Message] = []
    bounds = [0, *sorted(c for c in cuts if c <= count), count]
    for start, end in itertools.pairwise(bounds):
        streamed += builder.add(event_record(e) for e in events[start:end])
    builder.retract(event_record(e) for e in retract)
    streamed += builder.finish()
    assert by_partition(streamed) == expected
    assert builder.finish() == []  # emptied
    for partition, value in streamed:
        decoded = decode_message(value)
        assert len(decoded.events) <= size
        students = {e.student_id for e in decoded.events + decoded.retract}
        assert {partition_for(student, partitions) for student in students} <= {partition}


def test_a_full_last_envelope_still_carries_the_retractions() -> None:
    messages = envelopes(EVENTS[:7], partitions=1, max_events=7, retract=EVENTS[7:8])
    assert len(messages) == 1
    decoded = decode_message(messages[0].value)
    assert len(decoded.events) == 7 and [e.event_id for e in decoded.retract] == ["e7"]


def test_nothing_in_means_nothing_out() -> None:
    assert envelopes([], partitions=4, max_events=10) == []


def test_an_envelope_holds_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="max_events"):
        EnvelopeBuilder(4, 0)


def test_watermarks_restores_and_forgets() -> None:
    instant = datetime(2026, 10, 20, 23, 0, tzinfo=UTC)
    marks = watermark_envelopes(instant, 3)
    assert [m.partition for m in marks] == [0, 1, 2]
    assert all(decode_message(m.value).watermark == instant for m in marks)
    states = {f"s{i}": StudentActivity() for i in range(450)}
    restores = restore_envelopes(states, 2)
    restored = [json.loads(m.value)["restore"] for m in restores]
    assert max(len(chunk) for chunk in restored) == 200
    assert sorted(r["student_id"] for chunk in restored for r in chunk) == sorted(states)
    for message, chunk in zip(restores, restored, strict=True):
        assert {partition_for(r["student_id"], 2) for r in chunk} == {message.partition}
    forgets = forget_envelopes(["a", "b", "c"], 2)
    assert sorted(i for m in forgets for i in json.loads(m.value)["forget"]) == ["a", "b", "c"]
    for message in forgets:
        assert {partition_for(i, 2) for i in json.loads(message.value)["forget"]} == {message.partition}
