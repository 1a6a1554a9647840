"""Event times (issue 22, item 1): the range every store can hold, and the window around the clock that
every entrance applies through the event model's own validation."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from models.adapters import ADAPTERS, Invalid, Parsed
from models.event_time import EARLIEST, LATEST, TimeWindow, accepting
from models.events import InvalidMessage, decode_message, decode_records, parse_event, validate_event_record
from models.jsonl import read_jsonl_block
from ops.settings import Settings

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
FLOOR = date(2000, 1, 1)
WINDOW = TimeWindow.around(NOW, FLOOR, timedelta(seconds=900))


def event(when: str) -> dict[str, str]:
    return {"event_id": "e1", "student_id": "900000001", "source": "vle", "occurred_at": when}


def line(when: str) -> str:
    return f'{{"event_id": "e1", "student_id": "900000001", "source": "vle", "occurred_at": "{when}"}}'


@pytest.mark.parametrize("when", ["2999-01-01T00:00:00Z", "2871-12-31T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_an_instant_past_the_stores_range_is_invalid_everywhere(when: str) -> None:
    # The year-2999 event: once accepted, it crashed every worker that read it (OverflowError).
    with pytest.raises(InvalidMessage, match="less than 2149-01-01"):
        parse_event(event(when))
    decoded = decode_records(f'{{"events": [{line(when)}]}}'.encode())
    assert decoded.events == [] and len(decoded.invalid) == 1


@pytest.mark.parametrize("when", ["1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T12:00:00Z"])
def test_an_instant_before_the_stores_range_is_invalid(when: str) -> None:
    with pytest.raises(InvalidMessage, match="greater than or equal to 1970-01-02"):
        parse_event(event(when))


def test_the_range_ends_are_inclusive_and_exclusive_as_documented() -> None:
    assert parse_event(event(EARLIEST.isoformat())).occurred_at == EARLIEST
    last = LATEST - timedelta(microseconds=1)
    assert parse_event(event(last.isoformat())).occurred_at == last
    with pytest.raises(InvalidMessage):
        parse_event(event(LATEST.isoformat()))


def test_watermarks_and_restored_days_are_held_to_the_range() -> None:
    with pytest.raises(InvalidMessage, match="watermark"):
        decode_message(b'{"events": [{"bad": 1}], "watermark": "2999-01-01T00:00:00Z"}')
    far = date(2999, 1, 1).toordinal()
    restore = f'{{"restore": [{{"student_id": "s", "days": {{"{far}": [1]}}}}]}}'.encode()
    with pytest.raises(InvalidMessage):
        decode_message(restore)
    too_big = b'{"restore": [{"student_id": "s", "days": {"740000": [4294967295]}}]}'
    with pytest.raises(InvalidMessage):
        decode_message(too_big)
    too_wide = b'{"restore": [{"student_id": "s", "days": {"740000": [1,1,1,1,1,1,1,1,1]}}]}'
    with pytest.raises(InvalidMessage):
        decode_message(too_wide)


def test_the_window_refuses_the_future_beyond_the_skew_and_the_past_before_the_floor() -> None:
    assert WINDOW.refusal(NOW + timedelta(seconds=900)) is None
    assert WINDOW.refusal(datetime(2000, 1, 1, tzinfo=UTC)) is None
    ahead = WINDOW.refusal(NOW + timedelta(seconds=901))
    assert ahead is not None and "more than 900 s ahead" in ahead and "2026-12-04T12:15:00" in ahead
    before = WINDOW.refusal(datetime(1999, 12, 31, 23, 59, tzinfo=UTC))
    assert before is not None and "LDE_EVENT_TIME_FLOOR" in before


def test_without_a_reading_or_an_allowance_there_is_no_upper_bound_of_its_own() -> None:
    unread = TimeWindow.around(None, FLOOR, timedelta(seconds=60))
    for window in (unread, TimeWindow.around(NOW, FLOOR, None)):
        assert window.latest is None
        assert window.refusal(datetime(2148, 1, 1, tzinfo=UTC)) is None
        assert window.refusal(datetime(1999, 1, 1, tzinfo=UTC)) is not None


def test_the_window_applies_inside_accepting_and_only_there() -> None:
    far = event("2100-01-01T00:00:00Z")
    assert parse_event(far).occurred_at.year == 2100  # the range alone lets 2100 through
    with accepting(WINDOW):
        with pytest.raises(InvalidMessage, match="ahead of the service's clock"):
            parse_event(far)
        with pytest.raises(InvalidMessage, match="LDE_EVENT_TIME_FLOOR"):
            parse_event(event("1999-06-01T00:00:00Z"))
        assert parse_event(event("2026-12-04T11:00:00+01:00")).occurred_at == NOW - timedelta(hours=2)
    assert parse_event(far).occurred_at.year == 2100


def test_a_thread_started_elsewhere_does_not_inherit_the_window() -> None:
    seen: list[bool] = []

    def parse() -> None:
        seen.append(parse_event(event("2100-01-01T00:00:00Z")).occurred_at.year == 2100)

    with accepting(WINDOW):
        worker = threading.Thread(target=parse)
        worker.start()
        worker.join()
    assert seen == [True]


def test_every_adapter_and_the_bulk_jsonl_path_refuse_with_the_reason() -> None:
    # The adapters build events through the model, so the window reaches every format.
    logons = ["timestamp,username,computer,event,site", "2100-01-01T00:00:00Z,900000001,PC-1,logon,Main"]
    with accepting(WINDOW):
        [jsonl] = list(ADAPTERS["lde-jsonl"]([line("2100-01-01T00:00:00Z")]))
        [statement] = list(ADAPTERS["pc-logons"](logons))
        chunk = read_jsonl_block((line("2100-01-01T00:00:00Z") + "\n").encode(), 1)
    for record in (jsonl, statement):
        assert isinstance(record, Invalid) and "ahead of the service's clock" in record.reason
    assert chunk.events == [] and "ahead of the service's clock" in chunk.invalid[0][1].reason
    [fine] = list(ADAPTERS["lde-jsonl"]([line("2100-01-01T00:00:00Z")]))
    assert isinstance(fine, Parsed)
    assert validate_event_record(line("2100-01-01T00:00:00Z"))["occurred_at"].year == 2100


def test_settings_give_the_wall_clock_a_future_bound_and_the_event_clock_none() -> None:
    wall = Settings(clock="wall", event_max_future_seconds=60, event_time_floor=date(2010, 1, 1))
    window = wall.event_time_window(NOW)
    assert window.latest == NOW + timedelta(seconds=60)
    assert window.earliest == datetime(2010, 1, 1, tzinfo=UTC)
    event_clock = Settings(clock="event").event_time_window(NOW)
    assert event_clock.latest is None  # a replay publishes a day's events before its watermark


def test_the_floor_setting_cannot_leave_the_stores_range() -> None:
    with pytest.raises(ValueError):
        Settings(event_time_floor=date(1960, 1, 1))
