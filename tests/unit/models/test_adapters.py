"""Adapters: every sample file gives the counts and events we read in it by hand; nothing private gets
through; no input, however broken, makes an adapter raise; local times cross the clock changes."""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.adapters import (
    ADAPTERS,
    DEFAULT_TIMEZONE,
    Invalid,
    Parsed,
    Record,
    Skipped,
    read_attendance,
    read_caliper,
    read_ezproxy,
    read_lde_jsonl,
    read_library_loans,
    read_papercut,
    read_pc_logons,
    read_xapi,
)
from models.events import ActivityEvent, AttendanceStatus, Source
from models.timebuckets import local_day, zone
from tests.fixtures import canvas as canvas_samples
from tests.fixtures import upstream

LONDON = zone(DEFAULT_TIMEZONE)

#: The counts read off each fixture by hand (tests/fixtures/upstream/README.md says what each line is):
#: (accepted, skipped by reason, invalid).
EXPECTED: dict[str, tuple[int, dict[str, int], int]] = {
    # 6 events: the repeated download counts twice (the stream de-duplicates); a logout; the staff
    # account has no SIS id.
    "caliper": (4, {"logoff": 1, "no user": 1}, 0),
    # statement 9 has no account name and a timestamp that is not one: malformed, so Invalid.
    "xapi": (7, {"unmapped verb": 1}, 1),
    # "-" user (a font), a cover image, a 401, a 404, a 503, and a line that is not a log line.
    "ezproxy": (3, {"no user": 1, "asset request": 1, "denied": 1, "not found": 1, "server error": 1}, 1),
    # the unknown user 900777000 is kept: the stream decides unknown students.
    "papercut": (3, {"nothing printed": 1}, 1),
    # the repeated logon is a duplicate delivery: passed through with the same id.
    "pc-logons": (3, {"logoff": 2, "no user": 1}, 1),
    "remote-sessions": (2, {"no user": 1}, 0),
    # the unknown patron 900999001 is kept; a day-first date is not ISO 8601.
    "library-loans": (4, {}, 1),
    # the re-sent row passes through with the same id.
    "attendance": (6, {}, 1),
}


# -- helpers -------------------------------------------------------------------------------------------


def run(name: str, lines: Iterable[str], **options: Any) -> list[Record]:
    """All results of an adapter; each must be one of the three result types."""
    records = list(ADAPTERS[name](lines, **options))
    for record in records:
        assert isinstance(record, Parsed | Skipped | Invalid), record
    return records


def lines_of(text: str) -> io.StringIO:
    """Text as a file opened with newline='' would give it: one item per physical line."""
    return io.StringIO(text, newline="")


def run_sample(name: str) -> list[Record]:
    return run(name, lines_of(upstream.feed(name)))


def counts(records: list[Record]) -> tuple[int, dict[str, int], int]:
    accepted = sum(isinstance(r, Parsed) for r in records)
    skipped = Counter(r.reason for r in records if isinstance(r, Skipped))
    invalid = sum(isinstance(r, Invalid) for r in records)
    return accepted, dict(skipped), invalid


def events(records: list[Record]) -> list[ActivityEvent]:
    return [r.event for r in records if isinstance(r, Parsed)]


def by_position(records: list[Record]) -> dict[str, Record]:
    return {r.position: r for r in records}


def event_at(records: list[Record], position: str) -> ActivityEvent:
    record = by_position(records)[position]
    assert isinstance(record, Parsed), record
    return record.event


def day(event: ActivityEvent) -> date:
    return local_day(event.occurred_at, LONDON)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def private_strings() -> set[str]:
    """Titles, document names, item and page names, free text, logins and URLs in every fixture."""
    found = upstream.private_strings() | canvas_samples.private_strings()
    return found | {"canvas.example.ac.uk", "dynamic programming"}


# -- the fixtures --------------------------------------------------------------------------------------


def test_every_fixture_file_is_accounted_for() -> None:
    """A new fixture file must get an expectation here (or be declared a record file), and every
    adapter has a fixture: the Canvas formats' in tests/fixtures/canvas, the others' here."""
    present = {p.name for p in upstream.HERE.iterdir() if p.is_file()}
    records = {upstream.ROSTER, upstream.STAFF, upstream.ABSENCES}
    assert present == set(upstream.FEEDS.values()) | records | upstream.NOT_PAYLOADS
    assert set(upstream.FEEDS) == set(EXPECTED)
    assert set(upstream.FEEDS) | {"lde-jsonl"} | set(canvas_samples.CANVAS_FILES) == set(ADAPTERS)


def test_a_missing_fixture_fails_saying_which() -> None:
    with pytest.raises(FileNotFoundError, match=r"test fixture .*no-such-file.csv is missing"):
        upstream.path("no-such-file.csv")


@pytest.mark.parametrize("name", sorted(upstream.FEEDS))
def test_sample_counts(name: str) -> None:
    assert counts(run_sample(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(upstream.FEEDS))
def test_nothing_private_in_events_or_reasons(name: str) -> None:
    private = private_strings()
    # The extraction found what each file's private fields hold (a search for nothing finds nothing).
    assert {
        "Graph algorithms coursework v3 FINAL.docx",
        "Reserve test item - do not issue",
        "coursework-brief-2-binary-trees.pdf",
        "Reflective essay: my first placement",
        "https://doi.org/10.1016/j.nedt.2026.105912",
        "I think it is, because it always picks the nearest unvisited node",
        "cmpdoyle",
    } <= private
    assert any(p.startswith("https://www.clinicalkey.example.com:443/nursing/") for p in private)
    for record in run_sample(name):
        shown = repr(record.event) if isinstance(record, Parsed) else record.reason
        leaked = [p for p in private if p in shown]
        assert not leaked, (record.position, leaked)


def test_caliper_sample_rows() -> None:
    records = run_sample("caliper")
    near_midnight = event_at(records, "data[0]")
    assert near_midnight.event_id == "urn:uuid:3d0c9b1e-7a51-4f0e-8b6a-5e2f1c7d9a01"
    assert (near_midnight.student_id, near_midnight.source) == ("900201777", Source.VLE)
    assert near_midnight.occurred_at == utc("2026-10-24T23:41:09Z")
    assert day(near_midnight) == date(2026, 10, 25)  # 00:41 BST
    first, again = event_at(records, "data[1]"), event_at(records, "data[2]")
    assert first.event_id == again.event_id == "urn:uuid:a4e7c2d9-0b3f-4c18-9e5d-7f6a8b9c0d02"
    assert day(first) == date(2026, 10, 25)  # 01:20 GMT, after the clocks went back
    assert event_at(records, "data[3]").student_id == "900555123"
    assert by_position(records)["data[4]"] == Skipped("data[4]", "logoff")
    assert by_position(records)["data[5]"] == Skipped("data[5]", "no user")  # staff, no SIS id
    assert {e.source for e in events(records)} == {Source.VLE}


def test_xapi_sample_rows() -> None:
    records = run_sample("xapi")
    late = event_at(records, "statement 1")
    assert late.event_id == "c0a80a1e-4b2f-4e6a-9d3c-2f1e0a9b8c01"
    assert late.source is Source.ATTENDANCE and late.attended()
    assert late.attributes is not None and late.attributes.status is AttendanceStatus.LATE
    absent = event_at(records, "statement 2")
    assert absent.attributes is not None and absent.attributes.status is AttendanceStatus.ABSENT
    assert not absent.attended()
    borrowed = event_at(records, "statement 3")  # the time it happened, not the time it was stored
    assert (borrowed.source, borrowed.occurred_at) == (Source.LIBRARY, utc("2026-11-02T15:22:40Z"))
    assert event_at(records, "statement 4").source is Source.ERESOURCE  # an e-journal article
    assert event_at(records, "statement 5").source is Source.VLE  # a VLE page
    remote = event_at(records, "statement 6")
    assert (remote.student_id, remote.source) == ("900555123", Source.REMOTE)  # the VPN
    assert event_at(records, "statement 7").source is Source.PC_LOGON  # a campus workstation
    assert by_position(records)["statement 8"] == Skipped("statement 8", "unmapped verb")
    broken = by_position(records)["statement 9"]
    assert isinstance(broken, Invalid) and broken.reason.startswith("timestamp")
    assert "c0a80a1e-4b2f-4e6a-9d3c-2f1e0a9b8c09" in broken.raw


def test_ezproxy_sample_rows() -> None:
    records = run_sample("ezproxy")
    chapter, pdf, night = (event_at(records, f"line {n}") for n in (1, 2, 3))
    assert {e.source for e in (chapter, pdf, night)} == {Source.ERESOURCE}
    assert chapter.event_id != pdf.event_id  # same chapter, two requests a second apart
    assert all(e.event_id.startswith("ezproxy:") for e in (chapter, pdf, night))
    # logged as 00:30:12 +0100: 23:30:12Z, local 25 October
    assert night.occurred_at == utc("2026-10-24T23:30:12Z") and day(night) == date(2026, 10, 25)
    skipped = {n: by_position(records)[f"line {n}"] for n in range(4, 9)}
    assert [r.reason for r in skipped.values() if isinstance(r, Skipped)] == [
        "no user",
        "asset request",
        "denied",
        "not found",
        "server error",
    ]
    garbage = by_position(records)["line 9"]
    assert (
        isinstance(garbage, Invalid) and garbage.raw == "EZproxy restarted: log rotated at 2026-11-05 03:00"
    )


def test_papercut_sample_rows() -> None:
    records = run_sample("papercut")
    assert [e.attributes.pages if e.attributes else None for e in events(records)] == [8, 2, 1]
    first = event_at(records, "line 2")
    # local 01:30 on 25 October happened twice: the first (BST) is taken
    assert first.occurred_at == utc("2026-10-25T00:30:00Z")
    assert first.source is Source.PRINT and first.event_id.startswith("papercut:")
    assert event_at(records, "line 3").occurred_at == utc("2026-11-02T14:05:51Z")  # local GMT
    assert event_at(records, "line 4").student_id == "900777000"  # unknown: kept for the stream
    assert by_position(records)["line 5"] == Skipped("line 5", "nothing printed")
    broken = by_position(records)["line 6"]
    assert isinstance(broken, Invalid) and broken.reason == "Pages: not a whole number"
    assert event_at(records, "line 2").event_id == event_at(run_sample("papercut"), "line 2").event_id


def test_pc_logons_sample_rows() -> None:
    records = run_sample("pc-logons")
    late_night = event_at(records, "line 2")
    assert late_night.occurred_at == utc("2026-10-24T23:52:10Z") and day(late_night) == date(2026, 10, 25)
    assert event_at(records, "line 4").event_id == event_at(records, "line 5").event_id  # re-delivery
    assert event_at(records, "line 2").event_id != event_at(records, "line 4").event_id
    assert {r.position for r in records if isinstance(r, Skipped)} == {"line 3", "line 6", "line 7"}
    unlock = by_position(records)["line 8"]
    assert isinstance(unlock, Invalid) and unlock.reason == "event: neither logon nor logoff"


def test_remote_sessions_sample_rows() -> None:
    records = run_sample("remote-sessions")
    assert [(e.student_id, e.source, e.occurred_at) for e in events(records)] == [
        ("900398004", Source.REMOTE, utc("2026-11-02T18:40:00Z")),
        ("900201777", Source.REMOTE, utc("2026-11-04T07:55:31Z")),
    ]
    assert by_position(records)["line 4"] == Skipped("line 4", "no user")


def test_library_loans_sample_rows() -> None:
    records = run_sample("library-loans")
    assert [(e.event_id, e.student_id, e.occurred_at) for e in events(records)] == [
        ("library-loans:LN-26-104551", "900398004", utc("2026-11-02T15:22:40Z")),
        ("library-loans:LN-26-104552", "900201777", utc("2026-10-31T11:03:09Z")),
        ("library-loans:LN-26-104553", "900555123", utc("2026-11-02T09:14:00Z")),
        ("library-loans:LN-26-104554", "900999001", utc("2026-11-02T17:55:00Z")),
    ]
    assert {e.source for e in events(records)} == {Source.LIBRARY}
    day_first = by_position(records)["line 6"]
    assert isinstance(day_first, Invalid) and day_first.reason.startswith("loan_datetime")


def test_attendance_sample_rows() -> None:
    records = run_sample("attendance")
    statuses = [(e.event_id, e.attributes.status if e.attributes else None) for e in events(records)]
    assert statuses == [
        ("attendance:900201777:4002COMP-LEC-W06-1", AttendanceStatus.PRESENT),
        ("attendance:900201777:4002COMP-LAB-W06-2", AttendanceStatus.ABSENT),
        ("attendance:900412771:4002COMP-LAB-W06-2", AttendanceStatus.LATE),
        ("attendance:900398004:5104PSY-SEM-W06-1", AttendanceStatus.AUTHORISED_ABSENCE),
        ("attendance:900555123:6005NUR-SIM-W06-1", AttendanceStatus.PRESENT),
        ("attendance:900555123:6005NUR-SIM-W06-1", AttendanceStatus.PRESENT),  # sent again
    ]
    # recorded two days later, but the event is when the session happened
    assert event_at(records, "line 6").occurred_at == utc("2026-11-04T09:00:00Z")
    excused = by_position(records)["line 8"]
    assert isinstance(excused, Invalid) and excused.reason.startswith("status: not one of")


# -- local times and the clock changes -----------------------------------------------------------------

LOANS_HEADER = "loan_id,user_id,item_barcode,title,loan_datetime,due_date,return_datetime,branch\n"


@pytest.mark.parametrize(
    ("local", "instant"),
    [
        ("2026-10-25 00:59:59", "2026-10-24T23:59:59Z"),  # BST
        ("2026-10-25 01:30:00", "2026-10-25T00:30:00Z"),  # happens twice: fold=0 is the first (BST)
        ("2026-10-25 02:00:00", "2026-10-25T02:00:00Z"),  # GMT
        ("2026-03-29 00:59:59", "2026-03-29T00:59:59Z"),  # GMT
        ("2026-03-29 01:30:00", "2026-03-29T01:30:00Z"),  # never happens: read with the GMT offset
        ("2026-03-29 02:00:00", "2026-03-29T01:00:00Z"),  # BST
        ("2026-10-26T16:41:12+00:00", "2026-10-26T16:41:12Z"),  # an explicit offset is respected
    ],
)
def test_library_loan_local_times_across_clock_changes(local: str, instant: str) -> None:
    records = list(
        read_library_loans([LOANS_HEADER, f"L-1,900412771,390,A Title,{local},2026-11-23,,Main\n"])
    )
    assert [r.event.occurred_at for r in records if isinstance(r, Parsed)] == [utc(instant)]


def test_papercut_local_time_and_another_zone() -> None:
    header = '"Time","User","Pages","Copies","Printer","Document Name"\n'
    row = '"2026-10-25 01:30:00","900412771","2","3","P1","secret.docx"\n'
    [london] = events(list(read_papercut([header, row])))
    [new_york] = events(list(read_papercut([header, row], timezone="America/New_York")))
    assert london.occurred_at == utc("2026-10-25T00:30:00Z")
    assert new_york.occurred_at == utc("2026-10-25T05:30:00Z")
    assert london.attributes is not None and london.attributes.pages == 6


def test_unknown_time_zone_fails_when_the_adapter_is_called() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        read_library_loans([], timezone="Mars/Olympus_Mons")


# -- mapping decisions ---------------------------------------------------------------------------------


def statement(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "s-1",
        "actor": {"objectType": "Agent", "account": {"homePage": "https://x", "name": "900412771"}},
        "verb": {"id": "http://id.tincanapi.com/verb/viewed"},
        "object": {"objectType": "Activity", "id": "https://x/y", "definition": {"type": "http://x/z"}},
        "timestamp": "2026-10-27T10:00:00Z",
    }
    base.update(changes)
    return base


def xapi_one(document: Any) -> Record:
    [record] = list(read_xapi([json.dumps(document)]))
    return record


def xapi_source(**changes: Any) -> Source:
    record = xapi_one(statement(**changes))
    assert isinstance(record, Parsed), record
    return record.event.source


@pytest.mark.parametrize(
    ("verb", "definition", "context", "source"),
    [
        ("http://id.tincanapi.com/verb/viewed", {"type": "http://xapi.jisc.ac.uk/vle/forum"}, None, "vle"),
        (
            "http://id.tincanapi.com/verb/viewed",
            {"type": "http://adlnet.gov/expapi/activities/course"},
            None,
            "vle",
        ),
        ("http://id.tincanapi.com/verb/viewed", {"type": "http://xapi.jisc.ac.uk/e-book"}, None, "eresource"),
        ("http://id.tincanapi.com/verb/viewed", None, None, "eresource"),
        ("http://xapi.jisc.ac.uk/borrowed", {"type": "http://xapi.jisc.ac.uk/library_item"}, None, "library"),
        (
            "https://brindlewaye.com/xAPITerms/verbs/loggedin/",
            {
                "type": "http://activitystrea.ms/schema/1.0/application",
                "extensions": {"http://xapi.jisc.ac.uk/subType": "http://id.tincanapi.com/activitytype/lms"},
            },
            {"platform": "Moodle"},
            "vle",
        ),
        (
            "https://w3id.org/xapi/adl/verbs/logged-in",
            {"type": "http://activitystrea.ms/schema/1.0/application"},
            {"platform": "Campus PC (Active Directory)"},
            "pc_logon",
        ),
        (
            "https://brindlewaye.com/xAPITerms/verbs/loggedin",
            {"type": "http://activitystrea.ms/schema/1.0/application"},
            {"platform": "AppsAnywhere"},
            "remote",
        ),
    ],
)
def test_xapi_verb_and_object_mapping(
    verb: str, definition: dict[str, Any] | None, context: dict[str, Any] | None, source: str
) -> None:
    obj: dict[str, Any] = {"objectType": "Activity", "id": "https://x/y"}
    if definition is not None:
        obj["definition"] = definition
    changes: dict[str, Any] = {"verb": {"id": verb}, "object": obj}
    if context is not None:
        changes["context"] = context
    assert xapi_source(**changes) == Source(source)


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (None, AttendanceStatus.PRESENT),
        ({"completion": True}, AttendanceStatus.PRESENT),
        ({"extensions": {"http://xapi.jisc.ac.uk/attendance_late": True}}, AttendanceStatus.LATE),
        ({"completion": False, "extensions": {"http://xapi.jisc.ac.uk/attendance_late": True}}, "absent"),
    ],
)
def test_xapi_attendance_status(result: dict[str, Any] | None, status: str) -> None:
    changes: dict[str, Any] = {"verb": {"id": "http://adlnet.gov/expapi/verbs/attended"}}
    if result is not None:
        changes["result"] = result
    record = xapi_one(statement(**changes))
    assert isinstance(record, Parsed) and record.event.attributes is not None
    assert record.event.attributes.status == AttendanceStatus(status)


def test_xapi_documents_and_edge_cases() -> None:
    assert isinstance(xapi_one(statement()), Parsed)  # a single statement
    result = list(read_xapi([json.dumps({"statements": [statement(), statement(id="s-2")], "more": ""})]))
    assert [r.position for r in result] == ["statement 1", "statement 2"]
    stored = xapi_one(statement(timestamp=None, stored="2026-10-28T02:05:00Z"))
    assert isinstance(stored, Parsed) and stored.event.occurred_at == utc("2026-10-28T02:05:00Z")
    assert xapi_one(statement(verb={"id": "http://adlnet.gov/expapi/verbs/answered"})) == Skipped(
        "statement 1", "unmapped verb"
    )
    assert xapi_one(statement(actor={"mbox": "mailto:someone@example.ac.uk"})) == Skipped(
        "statement 1", "no user"
    )
    naive = xapi_one(statement(timestamp="2026-10-27T10:00:00"))
    assert isinstance(naive, Invalid) and naive.reason == "timestamp: no UTC offset"
    assert isinstance(xapi_one(statement(actor=None)), Invalid)
    assert isinstance(xapi_one("just a string"), Invalid)
    [broken] = list(read_xapi(["[{", "\n"]))
    assert isinstance(broken, Invalid) and broken.position == "document" and broken.raw == "[{\n"
    assert list(read_xapi(["  \n"])) == []


def test_caliper_document_shapes() -> None:
    [not_envelope] = list(read_caliper(['{"sensor": "x"}']))
    assert isinstance(not_envelope, Invalid) and not_envelope.position == "document"
    logout = {
        "id": "urn:uuid:1",
        "action": "LoggedOut",
        "eventTime": "2026-10-25T08:02:17.000Z",
        "actor": {"extensions": {"com.instructure.canvas": {"user_sis_id": "900398004"}}},
    }
    bad_time = {**logout, "id": "urn:uuid:2", "action": "LoggedIn", "eventTime": "2026-10-25T08:02:17"}
    records = list(read_caliper([json.dumps({"data": [logout, bad_time, 7]})]))
    assert records[0] == Skipped("data[0]", "logoff")
    assert isinstance(records[1], Invalid) and records[1].reason == "eventTime: no UTC offset"
    assert isinstance(records[2], Invalid) and records[2].raw == "7"


EZ = '10.0.0.1 - {user} [27/Oct/2026:21:17:44 +0100] "GET {url} HTTP/1.1" {status} 512{extra}\n'


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, None),
        (206, None),
        (302, None),
        (304, None),
        (401, "denied"),
        (403, "denied"),
        (404, "not found"),
        (410, "not found"),
        (400, "failed request"),
        (429, "failed request"),
        (500, "server error"),
        (503, "server error"),
        (101, "failed request"),
    ],
)
def test_ezproxy_statuses(status: int, outcome: str | None) -> None:
    line = EZ.format(user="900412771", url="https://j.example.org/a/1", status=status, extra="")
    [record] = list(read_ezproxy([line]))
    if outcome is None:
        assert isinstance(record, Parsed)
        assert record.event.occurred_at == utc("2026-10-27T20:17:44Z")
    else:
        assert record == Skipped("line 1", outcome)


def test_ezproxy_assets_ids_and_bad_lines() -> None:
    url = "https://j.example.org/doi/full/10.1/abc?x=1"
    extra = ' "https://referer.example/" "Mozilla/5.0 (X11)"'
    lines = [
        EZ.format(user="900412771", url=url, status=200, extra=extra),
        EZ.format(user="900412771", url=url, status=200, extra=""),
        EZ.format(user="900398004", url=url, status=200, extra=""),
        EZ.format(user="900412771", url="https://j.example.org/static/site.CSS?v=3", status=200, extra=""),
        EZ.format(user="900412771", url="https://j.example.org/logo.png", status=404, extra=""),
        EZ.format(user="900412771", url=url, status=999, extra=""),
        EZ.format(user="900412771", url=url, status=200, extra="").replace("Oct", "Foo"),
        "\n",
        EZ.format(user="900412771", url=url, status=200, extra="").replace('"GET ', '"'),
    ]
    records = list(read_ezproxy(lines))
    first, same, other = (event_at(records, f"line {n}") for n in (1, 2, 3))
    assert first.event_id == same.event_id  # deterministic: a re-sent log de-duplicates
    assert first.event_id != other.event_id  # two students, same article: unrelated ids
    assert "j.example.org" not in first.event_id and "doi" not in repr(first)
    assert by_position(records)["line 4"] == Skipped("line 4", "asset request")
    assert by_position(records)["line 5"] == Skipped("line 5", "not found")
    assert [r.position for r in records if isinstance(r, Invalid)] == ["line 6", "line 7", "line 9"]
    assert all(url not in r.reason for r in records if isinstance(r, Invalid))


PAPERCUT_HEADER = '"Time","User","Pages","Copies","Printer","Document Name","Client"\n'


def test_papercut_rows() -> None:
    rows = [
        '"2026-10-27 10:14:02","-","1","1","P1","My Secret Essay.docx","C1"\n',
        '"2026-10-27 10:14:02","","1","1","P1","My Secret Essay.docx","C1"\n',
        '"2026-10-27 10:14:02","900412771","0","3","P1","My Secret Essay.docx","C1"\n',
        '"2026-10-27 10:14:02","900412771","1_0","1","P1","My Secret Essay.docx","C1"\n',
        '"2026-10-27 10:14:02","900412771","50000","3","P1","My Secret Essay.docx","C1"\n',
        '"yesterday","900412771","1","1","P1","My Secret Essay.docx","C1"\n',
    ]
    records = list(read_papercut([PAPERCUT_HEADER, *rows]))
    assert counts(records) == (0, {"no user": 2, "nothing printed": 1}, 3)
    assert [r.reason for r in records if isinstance(r, Invalid)] == [
        "Pages: not a whole number",
        "pages: Input should be less than or equal to 100000",
        "Time: not an ISO 8601 date-time",
    ]
    assert all("Secret" in r.raw for r in records if isinstance(r, Invalid))  # raw goes to dead letters


def test_csv_structure_problems_cost_only_their_rows() -> None:
    header = "timestamp,username,computer,event,site\n"
    good = "2026-10-27T09:55:12Z,900398004,PC-1,logon,Main\n"
    lines = [
        "\ufeff" + header,  # a BOM decoded as text
        good,
        "\n",
        "2026-10-27T09:55:12Z,900398004,PC-1,unlock,Main\n",
        "2026-10-27T09:55:12Z,900398004,PC-1,logon\n",
        '2026-10-27T09:55:12Z,900398004,"PC\n',
        '1",logon,Main\n',  # a quoted field over two lines: one record, at its first line
        good,
    ]
    records = list(read_pc_logons(lines))
    assert [(type(r).__name__, r.position) for r in records] == [
        ("Parsed", "line 2"),
        ("Invalid", "line 4"),
        ("Invalid", "line 5"),
        ("Parsed", "line 6"),
        ("Parsed", "line 8"),
    ]
    assert [r.reason for r in records if isinstance(r, Invalid)] == [
        "event: neither logon nor logoff",
        "4 fields where the header has 5",
    ]


def test_an_oversized_csv_field_costs_only_its_row() -> None:
    header = "timestamp,username,computer,event,site\n"
    good = "2026-10-27T09:55:12Z,900398004,PC-1,logon,Main\n"
    huge = '2026-10-27T09:55:12Z,900398004,"' + "x" * 200_000 + '",logon,Main\n'
    records = list(read_pc_logons([header, good, huge, good]))
    assert [type(r) for r in records] == [Parsed, Invalid, Parsed]
    assert isinstance(records[1], Invalid) and records[1].reason.startswith("unreadable CSV: field larger")


def test_csv_header_without_a_required_column_makes_every_row_invalid() -> None:
    records = list(
        read_attendance(["student,session_id,session_start,status\n", "1,S,2026-10-27T09:00Z,present\n"])
    )
    assert [(r.position, r.reason) for r in records if isinstance(r, Invalid)] == [
        ("line 1", "header lacks column(s): student_id"),
        ("line 2", "header lacks column(s): student_id"),
    ]
    unclosed = list(read_attendance(["student_id,session_id,session_start,status\n", '"1,S,2026\n', "x\n"]))
    assert [type(r) for r in unclosed] == [Invalid]


def test_lde_jsonl_drops_private_fields_and_reports_bad_lines() -> None:
    good = {"event_id": "e1", "student_id": "1", "source": "vle", "occurred_at": "2026-10-01T10:00:00Z"}
    lines = [
        json.dumps({**good, "title": "A Private Title", "url": "https://x/doc"}) + "\n",
        "\n",
        "{broken\n",
    ]
    records = list(read_lde_jsonl(lines))
    assert [r.position for r in records] == ["line 1", "line 3"]
    assert isinstance(records[0], Parsed) and "Private" not in repr(records[0].event)
    assert isinstance(records[1], Invalid) and records[1].raw == "{broken"


@pytest.mark.parametrize(
    "name", ["ezproxy", "papercut", "pc-logons", "remote-sessions", "library-loans", "attendance"]
)
def test_line_formats_stream(name: str) -> None:
    """An endless input still yields results one by one: nothing reads the whole input first."""
    header, *body = upstream.feed(name).splitlines(keepends=True)
    endless = itertools.chain([] if name == "ezproxy" else [header], itertools.cycle(body))
    assert len(list(itertools.islice(ADAPTERS[name](endless), 25))) == 25


def test_lde_jsonl_streams() -> None:
    line = '{"event_id":"e","student_id":"1","source":"vle","occurred_at":"2026-10-01T10:00:00Z"}\n'
    assert len(list(itertools.islice(read_lde_jsonl(itertools.repeat(line)), 10))) == 10


# -- no input makes an adapter raise -------------------------------------------------------------------
# Each example runs every adapter, so each of them sees ~200 inputs per property while the whole file
# stays fast.

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
JSONL_SAMPLE = (
    '{"event_id":"e1","student_id":"900412771","source":"print","occurred_at":"2026-10-25T00:30:00+01:00",'
    '"attributes":{"pages":3},"title":"Private"}\n'
    '{"event_id":"e2","student_id":"900398004","source":"attendance","occurred_at":"2026-10-27T09:00:00Z",'
    '"attributes":{"status":"late"}}\n'
)
ALL_FORMATS = sorted(ADAPTERS)
LINE_FORMATS = [name for name in ALL_FORMATS if name not in ("caliper", "xapi")]

random_input = st.one_of(
    st.lists(st.text(max_size=120), max_size=8),
    st.binary(max_size=400)
    .map(lambda b: b.decode("utf-8", "surrogateescape"))
    .map(lambda t: list(lines_of(t))),
    st.text(max_size=400).map(lambda t: list(lines_of(t))),
)


@PROPERTY
@given(lines=random_input)
def test_random_input_never_raises(lines: list[str]) -> None:
    for name in ALL_FORMATS:
        run(name, lines)


#: One edit: (kind, where as a fraction of the text, how many characters, what to insert).
Edit = tuple[str, float, int, str]
edits = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "truncate", "repeat"]),
        st.floats(min_value=0, max_value=1),
        st.integers(min_value=1, max_value=80),
        st.one_of(st.sampled_from(list(',"-:[]{} \n\r\t\\xZ0\ufeff')), st.text(min_size=1, max_size=6)),
    ),
    min_size=1,
    max_size=4,
)


def mutate(text: str, plan: list[Edit]) -> str:
    """The text with characters deleted, inserted, replaced or repeated, or cut short."""
    for kind, where, size, fragment in plan:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + min(size, 8) :]
        elif kind == "insert":
            text = text[:at] + fragment + text[at:]
        elif kind == "replace":
            text = text[:at] + fragment[0] + text[at + 1 :]
        elif kind == "truncate":
            text = text[:at]
        else:
            text = text[:at] + text[at : at + size] + text[at:]
    return text


def _sample_or_default(name: str) -> str:
    if name == "lde-jsonl":
        return JSONL_SAMPLE
    if name in canvas_samples.CANVAS_FILES:
        return canvas_samples.text(canvas_samples.CANVAS_FILES[name])
    return upstream.feed(name)


@PROPERTY
@given(plan=edits)
def test_mutated_samples_never_raise(plan: list[Edit]) -> None:
    for name in ALL_FORMATS:
        lines = list(lines_of(mutate(_sample_or_default(name), plan)))
        for record in run(name, lines):
            if isinstance(record, Skipped | Invalid):
                assert "example.org" not in record.reason and "coursework" not in record.reason
            if name in LINE_FORMATS:
                assert re.fullmatch(r"line [0-9]+", record.position)
                assert 1 <= int(record.position.split()[1]) <= len(lines)


# -- the EZproxy fast paths read exactly what the plain ones did ---------------------------------------

_CLF_BEFORE = re.compile(
    r'(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]*)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r"(?P<status>[0-9]{3}) (?P<size>\S+)(?: .*)?"
)


def _clf_time_before(text: str) -> datetime | str:
    """The strptime version of models.adapters._clf_time, as the reference (an error as its reason)."""
    match = re.fullmatch(
        r"(?P<day>[0-9]{2})/(?P<month>[A-Za-z]{3})/(?P<year>[0-9]{4}):"
        r"(?P<clock>[0-9]{2}:[0-9]{2}:[0-9]{2}) (?P<offset>[+-][0-9]{4})",
        text,
    )
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    if match is None or match["month"].lower() not in months:
        return "time: not a [dd/Mon/yyyy:hh:mm:ss +zzzz] timestamp"
    month = months.index(match["month"].lower()) + 1
    stamp = f"{match['year']}-{month:02d}-{match['day']} {match['clock']} {match['offset']}"
    try:
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z").astimezone(UTC)
    except (ValueError, OverflowError):
        return "time: not a valid date-time"


def _two_digits() -> st.SearchStrategy[str]:
    return st.integers(0, 99).map(lambda n: f"{n:02d}")


clf_times = st.one_of(
    st.builds(
        lambda d, mon, y, h, mi, s, sign, oh, om: f"{d}/{mon}/{y}:{h}:{mi}:{s} {sign}{oh}{om}",
        _two_digits(),
        st.sampled_from(["Oct", "oct", "FEB", "Xyz", "Mar"]),
        st.sampled_from(["0000", "0001", "2026", "9999", "2024"]),
        _two_digits(),
        _two_digits(),
        _two_digits(),
        st.sampled_from("+-"),
        _two_digits(),
        _two_digits(),
    ),
    st.text(alphabet="0123456789/:+- OctFeb", max_size=30),
)


@PROPERTY
@given(text=clf_times)
def test_clf_time_accepts_what_strptime_accepted(text: str) -> None:
    from models.adapters.base import BadRecord
    from models.adapters.ezproxy import _clf_time

    try:
        got: datetime | str = _clf_time(text)
    except BadRecord as bad:
        got = bad.reason
    expected = _clf_time_before(text)
    assert got == expected
    if isinstance(got, datetime):  # the same instant, and the same text in the derived event id
        assert isinstance(expected, datetime) and got.isoformat() == expected.isoformat()


@PROPERTY
@given(
    request=st.text(alphabet='"\\ aG/x?.', max_size=20),
    rest=st.sampled_from([" 200 512", ' 200 512 "ref" "agent"', " 200", '" 200 1', " 20x 1"]),
)
def test_clf_line_pattern_is_unchanged(request: str, rest: str) -> None:
    from models.adapters.ezproxy import _CLF

    line = f'10.0.0.1 - 900 [27/Oct/2026:21:17:44 +0000] "{request}"{rest}'
    before, after = _CLF_BEFORE.fullmatch(line), _CLF.fullmatch(line)
    assert (before is None) == (after is None)
    if before is not None and after is not None:
        assert before.groupdict() == after.groupdict()
