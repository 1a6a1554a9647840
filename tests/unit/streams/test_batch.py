"""The batch core the activity agent wraps: one state per touched student, rows, dead letters."""

from datetime import UTC, date, datetime, timedelta

from models.activity import StudentActivity
from models.events import SOURCE_INDEX, encode_envelope, parse_event
from models.partitioning import partition_for
from models.timebuckets import zone
from streams.batch import (
    BatchOutcome,
    RawMessage,
    SlicedBatch,
    oldest_accepted_days,
    process_batch,
)

LONDON = zone("Europe/London")
PARTITIONS = 4


def ev(eid: str, sid: str, when: str = "2026-10-20T10:00:00Z", source: str = "vle"):
    return parse_event({"event_id": eid, "student_id": sid, "source": source, "occurred_at": when})


def message(offset: int, events, partition: int | None = None) -> RawMessage:
    part = partition if partition is not None else partition_for(events[0].student_id, PARTITIONS)
    return RawMessage(part, offset, encode_envelope(events))


def test_batch_updates_each_student_once_and_emits_absolute_rows() -> None:
    store: dict[str, StudentActivity] = {}
    loads: list[str] = []

    def load(sid: str) -> StudentActivity | None:
        loads.append(sid)
        return store.get(sid)

    batch = [message(0, [ev("a", "s1"), ev("b", "s1")]), message(1, [ev("c", "s1")])]
    out = process_batch(batch, load, LONDON, PARTITIONS, {})
    assert loads == ["s1"]
    assert out.rows == [("s1", date(2026, 10, 20).toordinal(), [3, 0, 0, 0, 0, 0, 0, 0], 2)]
    assert out.states["s1"].counts(date(2026, 10, 20).toordinal())[SOURCE_INDEX["vle"]] == 3
    assert out.applied_by_source == {"vle": 3}


def test_replaying_the_batch_on_the_resulting_state_changes_nothing() -> None:
    batch = [message(0, [ev("a", "s1")]), message(1, [ev("b", "s1")])]
    first = process_batch(batch, lambda sid: None, LONDON, PARTITIONS, {})
    state = first.states["s1"]
    again = process_batch(batch, lambda sid: state, LONDON, PARTITIONS, {})
    assert again.states["s1"].counts(date(2026, 10, 20).toordinal())[SOURCE_INDEX["vle"]] == 2
    assert again.duplicates == 2
    assert again.duplicates_by_source == {"vle": 2}
    assert again.applied_by_source == {}


def test_skipped_events_are_counted_per_source_and_reason() -> None:
    batch = [
        message(0, [ev("a", "s1"), ev("a", "s1"), ev("b", "s1", source="library")]),
        message(1, [ev("b", "s1", source="library"), ev("old", "s1", "2026-09-01T10:00:00Z", "print")]),
    ]
    every = dict.fromkeys(range(PARTITIONS), date(2026, 10, 1).toordinal())
    out = process_batch(batch, lambda sid: None, LONDON, PARTITIONS, every)
    assert out.applied_by_source == {"vle": 1, "library": 1}
    assert out.duplicates_by_source == {"vle": 1, "library": 1}
    assert out.too_late_by_source == {"print": 1}
    assert len(out.dead_letters) == 1
    assert out.too_late() == (1, [partition_for("s1", PARTITIONS)], 1)  # count, partitions, first offset
    assert process_batch(batch, lambda sid: None, LONDON, PARTITIONS, {}).too_late() is None


def test_bad_messages_and_events_are_dead_lettered_with_positions() -> None:
    good = ev("a", "s1")
    batch = [
        RawMessage(partition_for("s1", PARTITIONS), 5, b"garbage"),
        RawMessage(
            partition_for("s1", PARTITIONS),
            6,
            b'{"events": [' + good.model_dump_json().encode() + b', {"event_id": "x"}]}',
        ),
        RawMessage(0, 7, None),
    ]
    out = process_batch(batch, lambda sid: None, LONDON, PARTITIONS, {})
    reasons = [(d.offset, d.index) for d in out.dead_letters]
    assert reasons == [(5, None), (6, 1), (7, None)]
    assert out.states["s1"].counts(date(2026, 10, 20).toordinal())[SOURCE_INDEX["vle"]] == 1


def test_events_on_the_wrong_partition_are_rerouted_not_applied() -> None:
    wrong = (partition_for("s1", PARTITIONS) + 1) % PARTITIONS
    out = process_batch(
        [message(0, [ev("a", "s1")], partition=wrong)], lambda s: None, LONDON, PARTITIONS, {}
    )
    assert [e.event_id for e in out.misrouted] == ["a"]
    assert out.states == {}


def test_late_events_are_dead_lettered_with_the_reason() -> None:
    out = process_batch(
        [message(0, [ev("old", "s1", "2026-09-01T10:00:00Z")])],
        lambda s: None,
        LONDON,
        PARTITIONS,
        {partition_for("s1", PARTITIONS): date(2026, 10, 1).toordinal()},
    )
    assert len(out.dead_letters) == 1
    assert out.dead_letters[0].reason.startswith("too late")


def test_lateness_is_judged_per_partition() -> None:
    """A partition's backlog is judged against its own limit, never another partition's."""
    home = partition_for("s1", PARTITIONS)
    other = (home + 1) % PARTITIONS
    batch = [message(0, [ev("old", "s1", "2026-09-01T10:00:00Z")])]
    out = process_batch(batch, lambda s: None, LONDON, PARTITIONS, {other: date(2026, 10, 1).toordinal()})
    assert out.dead_letters == []
    assert out.applied_by_source == {"vle": 1}


def test_oldest_accepted_day_per_partition_from_its_own_reference() -> None:
    references = {
        0: datetime(2026, 10, 19, 23, 30, tzinfo=UTC),
        1: None,
        2: datetime(2026, 12, 4, 23, 30, tzinfo=UTC),
    }
    oldest = oldest_accepted_days(references, timedelta(hours=72), LONDON)
    # 23:30 UTC is 00:30 next day in London in summer time (BST), still the same day in winter (GMT);
    # partition 1 has no reference yet: it accepts every day.
    assert oldest == {0: date(2026, 10, 17).toordinal(), 2: date(2026, 12, 1).toordinal()}


def test_newest_event_time_is_reported_per_source_duplicates_included() -> None:
    first = [
        message(0, [ev("a", "s1", "2026-10-20T10:00:00Z"), ev("b", "s1", "2026-10-21T09:00:00Z")]),
        message(1, [ev("c", "s1", "2026-10-19T08:00:00+02:00", source="library")]),
    ]
    out = process_batch(first, lambda sid: None, LONDON, PARTITIONS, {})
    assert {s: t.isoformat() for s, t in out.newest_by_source.items()} == {
        "vle": "2026-10-21T09:00:00+00:00",
        "library": "2026-10-19T08:00:00+02:00",
    }
    assert out.newest_event == out.newest_by_source["vle"]
    # A replay applies nothing but still shows the feeds arriving (a restarted worker's gauges).
    state = out.states["s1"]
    again = process_batch(first, lambda sid: state, LONDON, PARTITIONS, {})
    assert again.applied_by_source == {}
    assert again.newest_by_source == out.newest_by_source


def mixed_batch() -> list[RawMessage]:
    """Students on several partitions over several days and messages: a re-sent event, an event too
    late, an undecodable message, an event on the wrong partition, a replayed offset."""
    students = [f"9001{n:05d}" for n in range(12)]
    out: list[RawMessage] = []
    offsets: dict[int, int] = {}
    for n in range(40):
        sid = students[n % len(students)]
        day = 18 + n % 5
        events = [ev(f"e{n}", sid, f"2026-10-{day}T10:00:00Z", ["vle", "library", "print"][n % 3])]
        if n % 7 == 0:
            events.append(ev(f"e{n - 1}", sid, f"2026-10-{day}T11:00:00Z"))  # a re-send (or a new one)
        if n % 11 == 0:
            events.append(ev(f"late{n}", sid, "2026-09-01T10:00:00Z"))
        part = partition_for(sid, PARTITIONS)
        offset = offsets[part] = offsets.get(part, 9) + 1
        out.append(RawMessage(part, offset, encode_envelope(events)))
    wrong = next(p for p in range(PARTITIONS) if p != partition_for(students[0], PARTITIONS))
    out.append(RawMessage(wrong, 99, encode_envelope([ev("w1", students[0])])))
    out.append(RawMessage(0, 100, b"not an envelope"))
    return out


def test_a_batch_applied_in_slices_ends_as_one_pass() -> None:
    batch = mixed_batch()
    stored = {
        "900100003": process_batch(batch[:5], lambda s: None, LONDON, PARTITIONS, {}).states.get("900100003")
    }
    oldest = {p: date(2026, 10, 1).toordinal() for p in range(PARTITIONS)}

    def fresh() -> dict[str, StudentActivity]:
        return {k: StudentActivity.from_bytes(v.to_bytes()) for k, v in stored.items() if v is not None}

    whole_store = fresh()
    whole = process_batch(batch, whole_store.get, LONDON, PARTITIONS, oldest)
    for step in (1, 3, 7):
        sliced_store = fresh()
        sliced = SlicedBatch()
        for start in range(0, len(batch), step):
            part = process_batch(
                batch[start : start + step], sliced.loader(sliced_store.get), LONDON, PARTITIONS, oldest
            )
            sliced.add(part)
        total = sliced.outcome()
        assert total.states == whole.states, step
        assert {(r[0], r[1]): r[2] for r in total.rows} == {(r[0], r[1]): r[2] for r in whole.rows}, step
        assert len(total.rows) == len(whole.rows), step
        for name in (
            "partition_of",
            "dead_letters",
            "misrouted",
            "watermarks",
            "last_offsets",
            "applied_by_source",
            "duplicates_by_source",
            "too_late_by_source",
            "forget",
            "newest_by_source",
            "newest_event",
            "replayed",
        ):
            assert getattr(total, name) == getattr(whole, name), (step, name)
    assert whole.applied_by_source and whole.duplicates and whole.dead_letters and whole.misrouted


def test_a_student_erased_in_a_later_slice_loses_the_earlier_slices_rows_only() -> None:
    first, erased, again = BatchOutcome(), BatchOutcome(), BatchOutcome()
    first.rows = [("S1", 10, [1], 1), ("S1", 11, [2], 1), ("S2", 10, [5], 1)]
    erased.forget = {"S1": 0}
    again.rows = [("S1", 12, [3], 2), ("S2", 10, [6], 2)]  # S2's day 10 again: the last row wins
    sliced = SlicedBatch()
    for part in (first, erased, again):
        sliced.add(part)
    rows = sliced.outcome().rows
    assert sorted(rows) == [("S1", 12, [3], 2), ("S2", 10, [6], 2)]
    assert sliced.total.forget == {"S1": 0}
