"""Per-student rolling state: bucketing, de-duplication, replay safety, trimming, serialisation."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from models.activity import ATTENDED, ROW_WIDTH, StudentActivity
from models.events import SOURCE_INDEX, ActivityEvent
from models.timebuckets import zone

LONDON = zone("Europe/London")


def event(eid: str, source: str, when: str, **attributes: object) -> ActivityEvent:
    return ActivityEvent.model_validate(
        {
            "event_id": eid,
            "student_id": "s1",
            "source": source,
            "occurred_at": when,
            "attributes": attributes or None,
        }
    )


def day(text: str) -> int:
    return date.fromisoformat(text).toordinal()


def test_counts_land_on_local_days_by_source() -> None:
    state = StudentActivity()
    result = state.apply(
        [
            event("a", "vle", "2026-10-24T23:30:41Z"),  # BST: 25 October
            event("b", "vle", "2026-10-24T12:00:00Z"),
            event("c", "print", "2026-10-24T12:05:00Z", pages=3),
        ],
        offset=10,
        tz=LONDON,
    )
    assert result.applied == 3
    assert result.by_source == {"vle": 2, "print": 1}
    assert state.counts(day("2026-10-25"))[SOURCE_INDEX["vle"]] == 1
    assert state.counts(day("2026-10-24"))[SOURCE_INDEX["vle"]] == 1
    assert state.counts(day("2026-10-24"))[SOURCE_INDEX["print"]] == 1
    assert state.last_active == day("2026-10-25")
    assert state.offset == 10


def test_same_event_id_twice_counts_once() -> None:
    state = StudentActivity()
    state.apply([event("dup", "vle", "2026-10-20T10:00:00Z")], offset=1, tz=LONDON)
    again = state.apply([event("dup", "vle", "2026-10-20T10:00:00Z")], offset=2, tz=LONDON)
    assert again.duplicates == 1
    assert again.applied == 0
    assert state.counts(day("2026-10-20"))[SOURCE_INDEX["vle"]] == 1


def test_replayed_offset_changes_nothing() -> None:
    state = StudentActivity()
    state.apply([event("a", "vle", "2026-10-20T10:00:00Z")], offset=5, tz=LONDON)
    before = state.to_bytes()
    replay = state.apply([event("z", "vle", "2026-10-20T11:00:00Z")], offset=5, tz=LONDON)
    assert replay.duplicates == 1
    assert state.to_bytes() == before


def test_attendance_counts_expected_and_attended_and_absence_is_not_engagement() -> None:
    state = StudentActivity()
    state.apply(
        [
            event("p", "attendance", "2026-10-27T09:03:00Z", status="present"),
            event("l", "attendance", "2026-10-27T13:21:00Z", status="late"),
            event("x", "attendance", "2026-10-28T14:00:00Z", status="absent"),
        ],
        offset=1,
        tz=LONDON,
    )
    assert state.counts(day("2026-10-27"))[SOURCE_INDEX["attendance"]] == 2
    assert state.counts(day("2026-10-27"))[ATTENDED] == 2
    assert state.counts(day("2026-10-28"))[SOURCE_INDEX["attendance"]] == 1
    assert state.counts(day("2026-10-28"))[ATTENDED] == 0
    # Being marked absent is not engagement: the last active day stays the 27th.
    assert state.last_active == day("2026-10-27")


def test_too_late_events_are_returned_not_counted() -> None:
    state = StudentActivity()
    result = state.apply(
        [event("old", "library", "2026-10-01T10:00:00Z"), event("new", "library", "2026-10-20T10:00:00Z")],
        offset=1,
        tz=LONDON,
        oldest_accepted_day=day("2026-10-18"),
    )
    assert [e.event_id for e in result.too_late] == ["old"]
    assert result.applied == 1


def test_trim_keeps_last_active_and_rolling_totals() -> None:
    state = StudentActivity()
    events = [event(f"e{d}", "vle", f"2026-10-{d:02d}T10:00:00Z") for d in range(1, 21)]
    state.apply(events, offset=1, tz=LONDON)
    assert state.window_totals(day("2026-10-20"), 7)[SOURCE_INDEX["vle"]] == 7
    state.trim(day("2026-10-15"))
    assert min(state.days) == day("2026-10-15")
    assert state.last_active == day("2026-10-20")
    assert state.last_active_on_or_before(day("2026-10-17")) == day("2026-10-17")
    assert state.last_active_on_or_before(day("2026-10-20")) == day("2026-10-20")


def test_serialisation_round_trip() -> None:
    state = StudentActivity()
    state.apply([event("a", "remote", "2026-10-20T10:00:00Z")], offset=3, tz=LONDON)
    copy = StudentActivity.from_bytes(state.to_bytes())
    assert copy == state
    assert len(copy.counts(day("2026-10-20"))) == ROW_WIDTH


def test_restore_day_sets_absolute_counts() -> None:
    state = StudentActivity()
    row = [0] * ROW_WIDTH
    row[SOURCE_INDEX["vle"]] = 4
    state.restore_day(day("2026-10-20"), row, revision=9)
    state.restore_day(day("2026-10-20"), row, revision=9)
    assert state.counts(day("2026-10-20"))[SOURCE_INDEX["vle"]] == 4
    assert state.last_active == day("2026-10-20")
    assert state.revision == 9


def test_binary_round_trip_and_size() -> None:
    state = StudentActivity()
    events = [event(f"e{i}", "vle", f"2026-10-{1 + i % 20:02d}T10:{i % 60:02d}:00Z") for i in range(200)]
    state.apply(events, offset=41, tz=LONDON)
    encoded = state.to_bytes()
    assert StudentActivity.from_bytes(encoded) == state
    assert StudentActivity.from_bytes(StudentActivity().to_bytes()) == StudentActivity()
    # 20 days of counts and 200 fingerprints: 36 bytes a day and 8 per remembered event id.
    assert len(encoded) == 33 + 20 * 36 + 200 * 8  # header, days, marks


def test_trim_forgets_fingerprints_sooner_than_counts() -> None:
    state = StudentActivity()
    state.apply(
        [event(f"e{d}", "vle", f"2026-10-{d:02d}T10:00:00Z") for d in range(1, 21)], offset=1, tz=LONDON
    )
    state.trim(day("2026-10-01"), seen_from_day=day("2026-10-17"))
    assert len(state.days) == 20
    assert state.seen_days() == [day(f"2026-10-{d}") for d in (17, 18, 19, 20)]


@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 40), st.sampled_from(list(SOURCE_INDEX))), max_size=120
    )
)
def test_counts_match_a_plain_model_whatever_the_arrival_order(arrivals: list[tuple[int, int, str]]) -> None:
    """Days and fingerprints arrive in any order (late feeds): the flat arrays count like a dict would."""
    state = StudentActivity()
    expected: dict[int, list[int]] = {}
    seen: set[tuple[int, int]] = set()
    for offset, (day_index, eid, source) in enumerate(arrivals):
        moment = f"2026-10-{1 + day_index:02d}T10:00:00Z"
        result = state.apply([event(f"id{eid}", source, moment, status="present")], offset=offset, tz=LONDON)
        ordinal = date(2026, 10, 1 + day_index).toordinal()
        if (ordinal, eid) in seen:
            assert result.duplicates == 1
            continue
        seen.add((ordinal, eid))
        row = expected.setdefault(ordinal, [0] * ROW_WIDTH)
        row[SOURCE_INDEX[source]] += 1
        if source == "attendance":
            row[ATTENDED] += 1
    assert state.days == dict(sorted(expected.items()))
    assert StudentActivity.from_bytes(state.to_bytes()) == state
    if expected:
        assert state.last_active == max(expected)
        state.trim(min(expected) + 5)
        assert state.days == {d: r for d, r in sorted(expected.items()) if d >= min(expected) + 5}
