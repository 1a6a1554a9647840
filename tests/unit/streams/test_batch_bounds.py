"""The batch path under extreme input (issue 22, item 1): nothing that passed validation can crash a
batch, events outside the time window are dead-lettered and never move the feed's freshness, and a
property test throws extreme values of every field at it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.activity import StudentActivity
from models.event_time import LATEST, TimeWindow
from models.partitioning import partition_for
from models.timebuckets import zone
from streams.batch import OUT_OF_WINDOW, RawMessage, process_batch

LONDON = zone("Europe/London")
PARTITIONS = 4
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow.around(NOW, date(2000, 1, 1), timedelta(seconds=900))


def raw_event(event_id: str, student: str, when: str, source: str = "vle") -> dict[str, Any]:
    return {"event_id": event_id, "student_id": student, "source": source, "occurred_at": when}


def envelope(*events: dict[str, Any], offset: int = 0) -> RawMessage:
    """Events of one student's partition as the raw JSON a producer may send (no model on the way)."""
    partition = partition_for(events[0]["student_id"], PARTITIONS)
    return RawMessage(partition, offset, json.dumps({"events": list(events)}).encode())


def test_an_event_in_the_year_2999_is_a_dead_letter_not_a_crashed_batch() -> None:
    # Before: accepted by the decoder, then OverflowError packing the day into the state's 64-bit mark.
    message = envelope(
        raw_event("good", "900000001", "2026-12-01T10:00:00Z"),
        raw_event("bad", "900000001", "2999-01-01T00:00:00Z"),
    )
    out = process_batch([message], lambda sid: None, LONDON, PARTITIONS, {})
    assert out.applied_by_source == {"vle": 1}
    [letter] = out.dead_letters
    assert letter.index == 1 and "2149-01-01" in letter.reason


def test_a_far_future_event_that_fits_is_refused_and_does_not_move_freshness() -> None:
    message = envelope(
        raw_event("now", "900000001", "2026-12-04T11:00:00Z"),
        raw_event("future", "900000001", "2100-01-01T00:00:00Z"),
        raw_event("skewed", "900000001", "2026-12-04T12:10:00Z", source="library"),
    )
    out = process_batch([message], lambda sid: None, LONDON, PARTITIONS, {}, WINDOW)
    assert out.applied_by_source == {"vle": 1, "library": 1}  # ten minutes of skew is allowed
    assert out.newest_by_source["vle"] == datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    assert out.newest_event == datetime(2026, 12, 4, 12, 10, tzinfo=UTC)
    assert out.out_of_window_by_source == {"vle": 1}
    [letter] = out.dead_letters
    assert letter.reason.startswith(OUT_OF_WINDOW) and "ahead of the service's clock" in letter.reason
    assert letter.index == 1 and b"2100-01-01" in letter.payload
    assert date(2100, 1, 1).toordinal() not in out.states["900000001"].days


def test_an_event_before_the_floor_is_refused_with_the_floor_named() -> None:
    message = envelope(raw_event("old", "900000001", "1999-12-31T10:00:00Z"))
    out = process_batch([message], lambda sid: None, LONDON, PARTITIONS, {}, WINDOW)
    assert out.applied_by_source == {}
    assert "LDE_EVENT_TIME_FLOOR" in out.dead_letters[0].reason


def test_without_a_window_only_the_stores_range_applies() -> None:
    message = envelope(raw_event("future", "900000001", "2148-12-31T12:00:00Z"))
    out = process_batch([message], lambda sid: None, LONDON, PARTITIONS, {})
    assert out.applied_by_source == {"vle": 1}
    assert out.rows[0][1] == date(2148, 12, 31).toordinal()


def test_restored_counts_at_the_limit_still_take_the_days_events() -> None:
    day = date(2026, 12, 1).toordinal()
    restore = {"restore": [{"student_id": "900000001", "days": {str(day): [1_000_000_000] * 8}}]}
    partition = partition_for("900000001", PARTITIONS)
    messages = [
        RawMessage(partition, 0, json.dumps(restore).encode()),
        envelope(raw_event("more", "900000001", "2026-12-01T10:00:00Z"), offset=1),
    ]
    out = process_batch(messages, lambda sid: None, LONDON, PARTITIONS, {})
    assert out.states["900000001"].counts(day)[0] == 1_000_000_001


# -- the property test ---------------------------------------------------------------------------------

#: Texts at the edges: empty, blank, very long, control characters, unpaired surrogate escapes, non-BMP.
texts = st.one_of(
    st.sampled_from(["", " ", "\x00", "\ud800", "9" * 65, "e" * 201, "🎓" * 70, "../../etc/passwd"]),
    st.text(max_size=80),
)
#: Instants at the edges of every range (Python's, the stores', the window's) with odd offsets.
instants = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-02T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "2026-03-29T01:30:00Z",
            "2026-10-25T01:30:00+01:00",
            "2100-01-01T00:00:00Z",
            "2148-12-31T23:59:59.999999Z",
            "2149-01-01T00:00:00Z",
            "2871-12-31T00:00:00Z",
            "2999-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "2026-12-04T12:00:00",
            "not a time",
            "",
        ]
    ),
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds with `timezones`
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from([UTC, LONDON, zone("Pacific/Kiritimati"), zone("Etc/GMT+12")]),
    ).map(lambda moment: moment.isoformat()),
)
numbers = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30)]),
    st.integers(),
)
any_value = st.one_of(st.none(), st.booleans(), numbers, texts, st.floats(allow_nan=True))
sources = st.one_of(
    st.sampled_from(["vle", "library", "eresource", "print", "pc_logon", "remote", "attendance"]), texts
)
events = st.fixed_dictionaries(
    {
        "event_id": st.one_of(texts, any_value),
        "student_id": st.one_of(st.sampled_from(["900000001", "900000002", "s"]), texts, any_value),
        "source": st.one_of(sources, any_value),
        "occurred_at": st.one_of(instants, any_value),
    },
    optional={
        "attributes": st.one_of(
            any_value,
            st.fixed_dictionaries(
                {},
                optional={
                    "status": st.one_of(
                        st.sampled_from(["present", "late", "absent", "authorised_absence"]), any_value
                    ),
                    "pages": numbers,
                },
            ),
        )
    },
)
restores = st.fixed_dictionaries(
    {
        "student_id": st.one_of(st.sampled_from(["900000001", "900000002"]), texts),
        "days": st.dictionaries(
            st.one_of(numbers, st.sampled_from([date(2026, 12, 1).toordinal(), LATEST.toordinal()])).map(str),
            st.lists(numbers, max_size=10),
            max_size=3,
        ),
    },
    optional={"last_active": numbers, "revision": numbers},
)
messages = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "events": st.lists(events, max_size=6),
            "watermark": st.one_of(instants, any_value),
            "restore": st.lists(restores, max_size=2),
            "forget": st.lists(st.one_of(texts, any_value), max_size=2),
            "retract": st.lists(events, max_size=2),
        },
    ),
    events,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bodies=st.lists(messages, min_size=1, max_size=5),
    partitions=st.lists(st.integers(0, PARTITIONS - 1), min_size=5, max_size=5),
    windowed=st.booleans(),
    late=st.sampled_from([None, date(2026, 11, 1).toordinal(), date(2200, 1, 1).toordinal()]),
)
def test_no_message_crashes_the_batch_and_every_state_stays_storable(
    bodies: list[Any], partitions: list[int], windowed: bool, late: int | None
) -> None:
    """Whatever a producer writes, the batch decides: applied, skipped or dead-lettered, never raised;
    and what it keeps fits the changelog and ClickHouse's Date."""
    store: dict[str, StudentActivity] = {}
    batch = [RawMessage(partitions[i], i, json.dumps(body).encode()) for i, body in enumerate(bodies)]
    oldest = {} if late is None else dict.fromkeys(range(PARTITIONS), late)
    for _ in range(2):  # and once more on the states it left: the replay
        out = process_batch(batch, store.get, LONDON, PARTITIONS, oldest, WINDOW if windowed else None)
        for student_id, state in out.states.items():
            assert StudentActivity.from_bytes(state.to_bytes()) == state
            store[student_id] = state
        for _, day, counts, revision in out.rows:
            assert date(1970, 1, 1) <= date.fromordinal(day) <= date(2149, 6, 6)
            assert all(0 <= count < 2**32 for count in counts) and 0 <= revision < 2**63
        for letter in out.dead_letters:
            assert letter.reason
        if windowed:
            assert all(WINDOW.refusal(moment) is None for moment in out.newest_by_source.values())
