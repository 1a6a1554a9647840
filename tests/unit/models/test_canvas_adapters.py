"""Canvas adapters: live events in Canvas's format and Canvas Data 2 web_logs give the counts read off
the samples by hand, keep nothing private, map users through the pseudonyms table, and never raise."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.adapters import Invalid, Parsed, Record, Skipped, read_canvas_live_events, read_canvas_web_logs
from models.adapters.canvas_data import read_user_map
from models.adapters.canvas_live_events import ENGAGEMENT_EVENTS
from tests.fixtures import canvas as samples
from tests.unit.models.test_adapters import PROPERTY, counts, day, events, lines_of, mutate, private_strings

# -- helpers -------------------------------------------------------------------------------------------


def live(lines: Iterable[str]) -> list[Record]:
    return list(read_canvas_live_events(lines))


def web(lines: Iterable[str], users: dict[str, str] | None = samples.USERS) -> list[Record]:
    return list(read_canvas_web_logs(lines, users=users))


def sample(name: str) -> io.StringIO:
    return lines_of(samples.text(name))


def live_event(name: str = "asset_accessed", **metadata: Any) -> dict[str, Any]:
    """A user-generated live event as Canvas sends it, with a title and a URL that must not get through."""
    base: dict[str, Any] = {
        "event_name": name,
        "event_time": "2026-10-20T09:01:44.120Z",
        "user_id": "21070000000001001",
        "user_sis_id": "900412771",
        "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
        "url": "https://canvas.example.ac.uk/courses/1/pages/secret-page",
    }
    base.update(metadata)
    body = {"asset_name": "A Private Title", "asset_id": "21070000000035120", "asset_type": "wiki_page"}
    return {"metadata": {k: v for k, v in base.items() if v is not None}, "body": body}


def one(record_list: list[Record]) -> Record:
    [record] = record_list
    return record


# -- the samples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "users"),
    [("live-events.jsonl", None), ("web-logs.jsonl", samples.USERS), ("web-logs.csv", samples.USERS)],
)
def test_sample_counts(name: str, users: dict[str, str] | None) -> None:
    records = live(sample(name)) if name.startswith("live") else web(sample(name), users)
    assert counts(records) == samples.EXPECTED[name]


def test_live_event_sample_students_days_and_ids() -> None:
    records = live(sample("live-events.jsonl"))
    got = {(e.student_id, day(e), e.source.value) for e in events(records)}
    assert got == {
        ("900412771", date(2026, 10, 20), "vle"),
        ("900398004", date(2026, 10, 20), "vle"),
        ("900555123", date(2026, 10, 21), "vle"),  # 23:30Z is 00:30 BST on the 21st
        ("900201777", date(2026, 10, 21), "vle"),
    }
    by_line = {r.position: r for r in records}
    wiki, again = by_line["line 2"], by_line["line 13"]
    assert isinstance(wiki, Parsed) and isinstance(again, Parsed)
    assert wiki.event.event_id == again.event.event_id  # a re-delivery de-duplicates
    ids = [e.event_id for e in events(records)]
    assert len(set(ids)) == 7 and all(i.startswith("canvas-live:") for i in ids)
    assert [(r.position, r.reason) for r in records if isinstance(r, Invalid)] == [
        ("line 14", "not JSON: Expecting ',' delimiter at line 1 column 617"),
        ("line 15", "metadata.event_time: no UTC offset"),
    ]


def test_web_logs_jsonl_and_csv_give_the_same_events() -> None:
    from_jsonl = sorted(events(web(sample("web-logs.jsonl"))), key=lambda e: e.event_id)
    from_csv = sorted(events(web(sample("web-logs.csv"))), key=lambda e: e.event_id)
    assert from_jsonl == from_csv
    assert {(e.student_id, day(e)) for e in from_jsonl} == {
        ("900412771", date(2026, 10, 22)),
        ("900398004", date(2026, 10, 22)),
        ("900555123", date(2026, 10, 23)),  # 23:45Z in BST
        ("900201777", date(2026, 10, 22)),
    }
    assert from_jsonl[0].event_id == "canvas-web:8c1f0a8e-4b5e-4f6a-9a31-0d2b7c6e1001"
    [bad] = [r for r in web(sample("web-logs.csv")) if isinstance(r, Invalid)]
    assert (bad.position, bad.reason) == ("line 12", "5 fields where the header has 26")


def test_nothing_private_in_events_or_reasons() -> None:
    private = private_strings()
    assert "Week 7: dynamic programming notes" in private and "198.51.100.23" in private
    results = [
        *live(sample("live-events.jsonl")),
        *web(sample("web-logs.jsonl")),
        *web(sample("web-logs.csv")),
    ]
    for record in results:
        shown = repr(record.event) if isinstance(record, Parsed) else record.reason
        leaked = [p for p in private if p in shown]
        assert not leaked, (record.position, leaked)


def test_both_user_map_files_give_the_same_map() -> None:
    for name in (samples.PSEUDONYMS, samples.USER_MAP_CSV):
        users = read_user_map(sample(name))
        assert (users.ids, users.problems) == (samples.USERS, []), name


# -- live events: decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENGAGEMENT_EVENTS))
def test_every_engagement_event_is_vle(name: str) -> None:
    record = one(live([json.dumps(live_event(name))]))
    assert isinstance(record, Parsed) and record.event.source.value == "vle"
    assert record.event.student_id == "900412771"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (live_event("logged_out"), "logoff"),
        (live_event("grade_change"), "not engagement"),
        (live_event("discussion_entry_submitted"), "not engagement"),
        (live_event("conversation_message_created"), "not engagement"),
        (live_event("enrollment_created"), "not engagement"),
        (live_event(user_sis_id=None), "no user"),
        (live_event(user_sis_id="  "), "no user"),
        (live_event(real_user_id="21070000000000007"), "masquerade"),
    ],
)
def test_skips(event: dict[str, Any], reason: str) -> None:
    record = one(live([json.dumps(event)]))
    assert isinstance(record, Skipped) and record.reason == reason


def test_real_user_id_equal_to_the_user_is_not_masquerade() -> None:
    event = live_event(real_user_id="21070000000001001")
    assert isinstance(one(live([json.dumps(event)])), Parsed)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ([1, 2], "event is not a JSON object"),
        ({"body": {}}, "metadata: missing"),
        (live_event(event_name=""), "metadata.event_name: missing"),
        (live_event(event_time="yesterday"), "metadata.event_time: not an ISO 8601 date-time"),
        (live_event(user_sis_id=900412771), "metadata.user_sis_id: not a string"),
        (live_event(user_id={"id": 1}), "metadata.user_id: not an id"),
    ],
)
def test_invalid_events(event: Any, reason: str) -> None:
    record = one(live([json.dumps(event)]))
    assert isinstance(record, Invalid) and record.reason == reason and record.position == "line 1"


def test_ids_come_from_ids_only_and_differ_per_event() -> None:
    a = live_event(body_note="ignored")
    b = json.loads(json.dumps(a))
    b["body"]["asset_name"] = "Another title"  # a title is not an id: same event
    c = live_event(event_time="2026-10-20T09:01:45.000Z")
    ids = [one(live([json.dumps(x)])) for x in (a, b, c)]
    assert all(isinstance(r, Parsed) for r in ids)
    first, second, third = (r.event.event_id for r in ids if isinstance(r, Parsed))
    assert first == second != third


def test_a_request_body_is_one_document_or_jsonl() -> None:
    pretty = json.dumps(live_event(), indent=2)
    record = one(live([pretty]))
    assert isinstance(record, Parsed) and record.position == "document"
    body = "\n".join(json.dumps(live_event(event_time=f"2026-10-20T09:0{n}:00Z")) for n in range(3)) + "\n{"
    records = live([body])
    assert [r.position for r in records] == ["line 1", "line 2", "line 3", "line 4"]
    assert isinstance(records[3], Invalid)


def test_a_signed_event_in_a_file_is_invalid_with_a_reason() -> None:
    record = one(live(["eyJhbGciOiJSUzI1NiJ9.eyJtZXRhZGF0YSI6e319.c2lnbmF0dXJl\n"]))
    assert isinstance(record, Invalid) and "signed" in record.reason


def test_live_events_stream() -> None:
    line = json.dumps(live_event()) + "\n"
    assert len(list(itertools.islice(read_canvas_live_events(itertools.repeat(line)), 20))) == 20


# -- web_logs: decisions -------------------------------------------------------------------------------

HEADER = "id,timestamp,user_id,real_user_id,http_status,url,user_agent,remote_ip\n"


def web_row(**changes: str) -> str:
    row = {
        "id": "b2c1",
        "timestamp": "2026-10-22T09:00:00Z",
        "user_id": "1001",
        "real_user_id": "",
        "http_status": "200",
        "url": "/courses/1/pages/private-page",
        "user_agent": "Mozilla/5.0",
        "remote_ip": "192.0.2.1",
    }
    row.update(changes)
    return ",".join(row.values()) + "\n"


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({}, None),
        ({"http_status": "304"}, None),
        ({"http_status": "200 OK"}, None),
        ({"http_status": ""}, None),
        ({"user_id": ""}, "no user"),
        ({"user_id": "1099"}, "no user mapping"),
        ({"real_user_id": "1099"}, "masquerade"),
        ({"real_user_id": "1001"}, None),
        ({"http_status": "403"}, "denied"),
        ({"http_status": "410"}, "not found"),
        ({"http_status": "503"}, "server error"),
        ({"http_status": "422"}, "failed request"),
    ],
)
def test_web_log_rows(changes: dict[str, str], outcome: str | None) -> None:
    record = one(web(lines_of(HEADER + web_row(**changes))))
    if outcome is None:
        assert isinstance(record, Parsed), record
        assert record.event.event_id == "canvas-web:b2c1" and record.position == "line 2"
    else:
        assert isinstance(record, Skipped) and record.reason == outcome


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": ""}, "id: missing"),
        ({"timestamp": ""}, "timestamp: missing"),
        ({"timestamp": "22/10/2026"}, "timestamp: not an ISO 8601 date-time"),
        ({"user_id": "12a"}, "user_id: not a Canvas id"),
        ({"http_status": "OK"}, "http_status: not an HTTP status"),
        ({"http_status": "999"}, "http_status: not an HTTP status"),
    ],
)
def test_invalid_web_log_rows(changes: dict[str, str], reason: str) -> None:
    record = one(web(lines_of(HEADER + web_row(**changes))))
    assert isinstance(record, Invalid) and record.reason == reason


def test_web_log_times_without_an_offset_are_utc() -> None:
    record = one(web(lines_of(HEADER + web_row(timestamp="2026-10-22 23:30:00"))))
    assert isinstance(record, Parsed)
    assert record.event.occurred_at.isoformat() == "2026-10-22T23:30:00+00:00"
    assert day(record.event) == date(2026, 10, 23)


def test_web_logs_without_a_user_map_skip_every_user() -> None:
    records = web(sample("web-logs.jsonl"), users=None)
    assert not events(records)
    assert counts(records)[1]["no user mapping"] == 7


def test_web_logs_header_without_a_required_column() -> None:
    records = web(lines_of("id,user_id\nx,1001\n"))
    assert [(r.position, r.reason) for r in records if isinstance(r, Invalid)] == [
        ("line 1", "header lacks column(s): timestamp"),
        ("line 2", "header lacks column(s): timestamp"),
    ]


def test_web_logs_jsonl_record_shapes() -> None:
    good = {"key": {"id": "r1"}, "value": {"timestamp": "2026-10-22T09:00:00Z", "user_id": 1001}, "meta": {}}
    assert isinstance(one(web([json.dumps(good)])), Parsed)
    for item, reason in (
        ([], "record is not a JSON object"),
        ({"key": "r1"}, "key: not an object"),
        ({}, "expected a DAP record with key, value and meta"),
        ({**good, "value": {**good["value"], "user_id": 1.5}}, "user_id: not a Canvas id"),
        ({**good, "value": {**good["value"], "user_id": True}}, "user_id: not a Canvas id"),
    ):
        first, record = web([json.dumps(good), json.dumps(item)])  # JSONL is told by its first line
        assert isinstance(first, Parsed)
        assert isinstance(record, Invalid) and record.reason == reason, item
        assert record.position == "line 2"


def test_web_logs_stream() -> None:
    row = web_row()
    endless = itertools.chain([HEADER], itertools.repeat(row))
    assert len(list(itertools.islice(read_canvas_web_logs(endless, users=samples.USERS), 20))) == 20
    line = samples.text("web-logs.jsonl").splitlines(keepends=True)[0]
    assert len(list(itertools.islice(read_canvas_web_logs(itertools.repeat(line)), 20))) == 20


# -- the user map --------------------------------------------------------------------------------------


def test_user_map_from_a_prefixed_dap_csv_and_its_problems() -> None:
    text = (
        "key.id,value.user_id,value.sis_user_id,value.workflow_state,value.unique_id\n"
        "1,1001,900412771,active,c.khan\n"
        "2,1001,900999999,active,c.khan2\n"  # a second, different SIS id: the first is kept
        "3,x,900398004,active,t.rowe\n"
        "4,1002,900398004,deleted,t.rowe\n"
        "5,1003,,active,guest\n"
        "6,,900555123,active,nobody\n"
    )
    users = read_user_map(lines_of(text))
    assert users.ids == {"1001": "900412771"}
    assert users.problems == [
        "line 3: Canvas user has a second, different SIS id (the first is kept)",
        "line 4: user_id: not a Canvas id",
        "line 7: user_id: missing",
    ]
    assert not [p for p in users.problems if "c.khan" in p or "900999999" in p]  # no value is quoted
    assert users.rows == 6


def test_user_map_refuses_a_file_that_is_not_one() -> None:
    users = read_user_map(lines_of("id,name\n1001,Carys Khan\n"))
    assert users.ids == {} and "header lacks" in users.problems[0]
    assert read_user_map([]).ids == {}
    broken = read_user_map(
        ['{"key": {"id": 1}, "value": {"user_id": 1001, "sis_user_id": "9"}}\n', "{nope\n"]
    )
    assert broken.ids == {"1001": "9"} and broken.problems[0].startswith("line 2: not JSON")


# -- no input makes them raise -------------------------------------------------------------------------

random_lines = st.one_of(
    st.lists(st.text(max_size=120), max_size=8),
    st.text(max_size=400).map(lambda t: list(lines_of(t))),
)


@PROPERTY
@given(lines=random_lines)
def test_random_input_never_raises(lines: list[str]) -> None:
    live(lines)
    web(lines)
    read_user_map(lines)


edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "truncate", "repeat"]),
        st.floats(min_value=0, max_value=1),
        st.integers(min_value=1, max_value=80),
        st.one_of(st.sampled_from(list(',"-:[]{} \n\r\t\\xZ0')), st.text(min_size=1, max_size=6)),
    ),
    min_size=1,
    max_size=4,
)


@PROPERTY
@given(plan=edits)
def test_mutated_samples_never_raise_nor_leak(plan: list[tuple[str, float, int, str]]) -> None:
    for name in ("live-events.jsonl", "web-logs.jsonl", "web-logs.csv", samples.PSEUDONYMS):
        lines = list(lines_of(mutate(samples.text(name), plan)))
        results = read_user_map(lines).problems if name == samples.PSEUDONYMS else []
        records = live(lines) if name.startswith("live") else web(lines)
        reasons = results + [r.reason for r in records if isinstance(r, Skipped | Invalid)]
        for reason in reasons:
            assert "example.ac.uk" not in reason and "dynamic" not in reason and "Mozilla" not in reason
