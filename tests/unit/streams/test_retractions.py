"""Retractions (xAPI voids) in student state and in the stream's batches: an event withdrawn upstream
is uncounted once, replays change nothing, an event arriving after its retraction never counts, and
retractions of events never seen or beyond the lateness limit are skipped with their reason."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from models.activity import (
    ATTENDANCE,
    ATTENDED,
    RETRACTED,
    RETRACTION_DUPLICATE,
    RETRACTION_UNSEEN,
    StudentActivity,
    fingerprint,
)
from models.events import (
    SOURCE_INDEX,
    ActivityEvent,
    decode_message,
    decode_records,
    encode_envelope,
    parse_event,
)
from models.partitioning import partition_for
from models.timebuckets import zone
from streams.batch import RETRACTION_TOO_LATE, RawMessage, process_batch

LONDON = zone("Europe/London")
PARTITIONS = 4
DAY = date(2026, 10, 20).toordinal()
VLE = SOURCE_INDEX["vle"]


def ev(
    eid: str,
    sid: str = "s1",
    when: str = "2026-10-20T10:00:00Z",
    source: str = "vle",
    status: str | None = None,
) -> ActivityEvent:
    raw = {"event_id": eid, "student_id": sid, "source": source, "occurred_at": when}
    if status is not None:
        raw["attributes"] = {"status": status}  # type: ignore[assignment]
    return parse_event(raw)


def message(
    offset: int, events: list[ActivityEvent], retract: list[ActivityEvent] | None = None
) -> RawMessage:
    student = (events or retract or [])[0].student_id
    return RawMessage(partition_for(student, PARTITIONS), offset, encode_envelope(events, retract=retract))


def run(
    batches: list[list[RawMessage]], oldest: dict[int, int] | None = None
) -> tuple[dict[str, StudentActivity], list]:
    """Apply batches one after another on a store of states (as the agent does), returning the store and
    the outcomes."""
    store: dict[str, StudentActivity] = {}
    outcomes = []
    for batch in batches:
        out = process_batch(batch, lambda sid: store.get(sid), LONDON, PARTITIONS, oldest or {})
        store.update({sid: StudentActivity.from_bytes(s.to_bytes()) for sid, s in out.states.items()})
        outcomes.append(out)
    return store, outcomes


# -- the state ---------------------------------------------------------------------------------------------


def test_retract_uncounts_once_and_keeps_the_mark() -> None:
    state = StudentActivity()
    assert state.record(DAY, fingerprint("a"), VLE, False)
    assert state.record(DAY, fingerprint("b"), VLE, False)
    assert state.retract(DAY, fingerprint("a"), VLE, False) == RETRACTED
    assert state.counts(DAY)[VLE] == 1
    assert state.retract(DAY, fingerprint("a"), VLE, False) == RETRACTION_DUPLICATE
    assert state.counts(DAY)[VLE] == 1
    assert not state.record(DAY, fingerprint("a"), VLE, False)  # sent again after its void: not counted


def test_a_retraction_before_its_event_keeps_the_event_out() -> None:
    state = StudentActivity()
    assert state.retract(DAY, fingerprint("a"), VLE, False) == RETRACTION_UNSEEN
    assert not state.record(DAY, fingerprint("a"), VLE, False)
    assert state.counts(DAY)[VLE] == 0


def test_retracting_an_attended_session_uncounts_attendance_and_last_active_moves_back() -> None:
    state = StudentActivity()
    state.record(DAY - 1, fingerprint("v"), VLE, False)
    state.record(DAY, fingerprint("att"), ATTENDANCE, True)
    assert state.last_active == DAY
    assert state.retract(DAY, fingerprint("att"), ATTENDANCE, True) == RETRACTED
    assert state.counts(DAY)[ATTENDANCE] == 0 and state.counts(DAY)[ATTENDED] == 0
    assert state.last_active == DAY - 1
    state.retract(DAY - 1, fingerprint("v"), VLE, False)
    assert state.last_active is None  # nothing known any more


def test_state_with_retractions_round_trips_and_without_keeps_its_bytes() -> None:
    plain = StudentActivity()
    plain.record(DAY, fingerprint("a"), VLE, False)
    assert plain.to_bytes()[0] == 2  # the format older releases read
    plain.retract(DAY, fingerprint("a"), VLE, False)
    data = plain.to_bytes()
    assert data[0] == 3
    again = StudentActivity.from_bytes(data)
    assert again == plain and list(again.voided) == list(plain.voided)
    assert again.retract(DAY, fingerprint("a"), VLE, False) == RETRACTION_DUPLICATE


def test_trim_forgets_old_retractions_with_the_marks() -> None:
    state = StudentActivity()
    for day in (DAY - 10, DAY):
        state.record(day, fingerprint(f"e{day}"), VLE, False)
        state.retract(day, fingerprint(f"e{day}"), VLE, False)
    state.trim(DAY - 5)
    assert len(state.voided) == 1 and len(state.marks) == 1


# -- the envelope ------------------------------------------------------------------------------------------


def test_retractions_survive_the_envelope_both_decoders() -> None:
    value = encode_envelope([ev("a")], retract=[ev("b", status=None)])
    assert [e.event_id for e in decode_message(value).retract] == ["b"]
    assert [r["event_id"] for r in decode_records(value).retract] == ["b"]
    only = encode_envelope([], retract=[ev("b")])
    assert [r["event_id"] for r in decode_records(only).retract] == ["b"]
    assert decode_records(encode_envelope([ev("a")])).retract == []


def test_a_bad_retraction_in_a_partly_bad_envelope_is_reported() -> None:
    value = b'{"events":[{"bad":1}],"retract":[{"event_id":"b"},' + ev("c").model_dump_json().encode() + b"]}"
    decoded = decode_records(value)
    assert [r["event_id"] for r in decoded.retract] == ["c"]
    assert any(reason.startswith("retract 0:") for _, reason in decoded.invalid)


# -- the batch ------------------------------------------------------------------------------------------


def test_a_retraction_rewrites_the_days_absolute_count() -> None:
    store, (first, second) = run([[message(0, [ev("a"), ev("b")])], [message(1, [], [ev("a")])]])
    assert first.rows == [("s1", DAY, [2, 0, 0, 0, 0, 0, 0, 0], 1)]
    assert second.rows == [("s1", DAY, [1, 0, 0, 0, 0, 0, 0, 0], 2)]
    assert second.retracted_by_source == {"vle": 1} and not second.retractions_skipped
    assert store["s1"].counts(DAY)[VLE] == 1


def test_replayed_and_repeated_retractions_change_nothing() -> None:
    events = message(0, [ev("a"), ev("b")])
    void = message(1, [], [ev("a")])
    store, outcomes = run([[events, void], [events, void], [message(2, [], [ev("a")])]])
    assert store["s1"].counts(DAY)[VLE] == 1
    assert outcomes[1].retractions_skipped == {("vle", RETRACTION_DUPLICATE): 1}  # offset replay
    assert outcomes[2].retractions_skipped == {("vle", RETRACTION_DUPLICATE): 1}  # re-sent void
    assert outcomes[2].rows == []  # nothing changed: nothing rewritten


def test_an_event_after_its_retraction_never_counts() -> None:
    store, outcomes = run([[message(0, [], [ev("a")])], [message(1, [ev("a"), ev("b")])]])
    assert outcomes[0].retractions_skipped == {("vle", RETRACTION_UNSEEN): 1}
    assert store["s1"].counts(DAY)[VLE] == 1 and outcomes[1].duplicates_by_source == {"vle": 1}


def test_events_and_their_retraction_in_one_message() -> None:
    store, (out,) = run([[message(0, [ev("a"), ev("b")], [ev("a")])]])
    assert store["s1"].counts(DAY)[VLE] == 1 and out.rows[-1][2][VLE] == 1


def test_too_old_and_misrouted_retractions() -> None:
    part = partition_for("s1", PARTITIONS)
    store, _ = run([[message(0, [ev("a")])]])
    misrouted = RawMessage((part + 1) % PARTITIONS, 0, encode_envelope([], retract=[ev("b")]))
    out = process_batch(
        [message(1, [], [ev("a")]), misrouted], store.get, LONDON, PARTITIONS, {part: DAY + 1}
    )
    assert out.retractions_skipped == {("vle", RETRACTION_TOO_LATE): 1}
    assert [d.reason for d in out.dead_letters] == [
        "retraction published to another partition than its student's"
    ]
    assert out.states["s1"].counts(DAY)[VLE] == 1 and out.rows == []


# -- property: any order the stream may see, the count is the events never voided -------------------------

ids = st.sampled_from(["a", "b", "c", "d"])
steps = st.lists(st.tuples(st.sampled_from(["event", "void", "replay"]), ids), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None, database=None)
@given(steps=steps)
def test_counts_are_the_events_never_voided(steps: list[tuple[str, str]]) -> None:
    messages: list[RawMessage] = []
    voided: set[str] = set()
    sent: set[str] = set()
    batches: list[list[RawMessage]] = []
    for kind, eid in steps:
        if kind == "replay" and messages:
            batches.append(list(messages))  # a re-consumption from the start
            continue
        offset = len(messages)
        if kind == "event":
            sent.add(eid)
            messages.append(message(offset, [ev(eid)]))
        else:
            voided.add(eid)
            messages.append(message(offset, [], [ev(eid)]))
        batches.append([messages[-1]])
    store, _ = run(batches)
    expected = len(sent - voided)
    state = store.get("s1")
    assert (state.counts(DAY)[VLE] if state else 0) == expected
