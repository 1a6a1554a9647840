"""The xAPI statements resource's rules: versions, reading a request, digests, voids and the plan
against the ledger (409, no-ops, retractions, voids before their statement), fuzzed."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.events import AttendanceStatus, Source
from models.xapi_statements import (
    ALREADY_VOIDED,
    NOT_COUNTED,
    VOIDED,
    VOIDS_A_VOID,
    Arrival,
    Entry,
    Kind,
    StatementsRefused,
    arrival,
    check_version,
    digest,
    is_uuid,
    plan_statements,
    read_statements,
    resolve_races,
    response_version,
    void_target,
)

STORED = "2026-10-21T09:00:00+00:00"
S1 = "9f1c2b4e-7a35-4c1e-9d2f-0a1b2c3d4e01"
S2 = "9f1c2b4e-7a35-4c1e-9d2f-0a1b2c3d4e02"
S3 = "9f1c2b4e-7a35-4c1e-9d2f-0a1b2c3d4e03"
V1 = "0e1c2b4e-7a35-4c1e-9d2f-0a1b2c3d4e0a"
V2 = "0e1c2b4e-7a35-4c1e-9d2f-0a1b2c3d4e0b"


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def statement(
    statement_id: str | None = S1,
    student: str = "900412771",
    verb: str = "http://id.tincanapi.com/verb/viewed",
    when: str | None = "2026-10-20T10:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://vle.example.ac.uk", "name": student},
        },
        "verb": {"id": verb, "display": {"en-GB": "viewed"}},
        "object": {
            "id": "https://vle.example.ac.uk/course/42",
            "definition": {
                "type": "http://adlnet.gov/expapi/activities/course",
                "name": {"en": "Secret Title"},
            },
        },
    }
    if statement_id is not None:
        out["id"] = statement_id
    if when is not None:
        out["timestamp"] = when
    return {**out, **extra}


def void(void_id: str, target: str, actor: str = "admin") -> dict[str, Any]:
    return {
        "id": void_id,
        "actor": {"mbox": f"mailto:{actor}@example.ac.uk"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": target},
    }


def read(*items: dict[str, Any], put: str | None = None) -> list[dict[str, Any]]:
    body = json.dumps(items[0] if put is not None or len(items) == 1 else list(items))
    return read_statements(body, ids(), put)


def plan(items: list[dict[str, Any]], known: dict[str, Entry] | None = None) -> Any:
    return plan_statements(read_statements(json.dumps(items), ids()), known or {}, STORED)


def counted(statement_id: str = S1, **fields: Any) -> Entry:
    """The ledger's entry for statement(statement_id) once accepted."""
    item = read_statements(json.dumps(statement(statement_id, **fields)), ids())[0]
    return plan_statements([item], {}, STORED).new[statement_id]


# -- the version header ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["1.0.3", "1.0.0", "1.0", " 1.0.1 ", "2.0.0", "2.0"])
def test_versions_spoken(header: str) -> None:
    assert check_version(header) is None


@pytest.mark.parametrize(
    "header", [None, "", "  ", "0.95", "1.1.0", "3.0.0", "1.0.x", "1", "1.0.3.1", "v1.0.3"]
)
def test_versions_refused_with_a_reason(header: str | None) -> None:
    reason = check_version(header)
    assert reason is not None and "X-Experience-API-Version" in reason


def test_the_answers_version() -> None:
    assert response_version(None) == response_version("1.0.1") == "1.0.3"
    assert response_version("2.0.0") == "2.0.0"


# -- reading a request ----------------------------------------------------------------------------------


def test_a_statement_without_an_id_gets_a_uuid_and_ids_are_kept_lowercase() -> None:
    one, two = read(statement(None), statement(S2.upper()))
    assert is_uuid(one["id"]) and one["id"] == "00000000-0000-4000-8000-000000000001"
    assert two["id"] == S2


def test_put_takes_the_id_from_the_parameter() -> None:
    assert read(statement(None), put=S3)[0]["id"] == S3
    assert read(statement(S3.upper()), put=S3)[0]["id"] == S3


@pytest.mark.parametrize(
    ("body", "put", "reason"),
    [
        ("{not json", None, "not JSON"),
        ("[]", None, "empty array"),
        ("[1]", None, "statement 1: not a JSON object"),
        ("42", None, "statement 1: not a JSON object"),
        (json.dumps(statement("not-a-uuid")), None, "id is not a UUID"),
        (json.dumps(statement(12)), None, "id is not a UUID"),  # type: ignore[arg-type]
        (json.dumps([statement(S1), statement(S1)]), None, "statement 2: id repeated"),
        (json.dumps({k: v for k, v in statement().items() if k != "actor"}), None, "actor missing"),
        (json.dumps({k: v for k, v in statement().items() if k != "object"}), None, "object missing"),
        (json.dumps({**statement(), "verb": {}}), None, "verb.id missing"),
        (json.dumps([statement()]), S1, "PUT takes one statement"),
        (json.dumps(statement(None)), "nope", "statementId: not a UUID"),
        (json.dumps(statement(S2)), S1, "id differs from the statementId"),
    ],
)
def test_bad_requests_are_refused_whole_with_a_clear_reason(body: str, put: str | None, reason: str) -> None:
    with pytest.raises(StatementsRefused) as refused:
        read_statements(body, ids(), put)
    assert refused.value.status == 400 and reason in refused.value.reason
    assert "Secret Title" not in refused.value.reason


def test_digest_ignores_what_the_lrs_sets_and_key_order_but_not_content() -> None:
    base = statement()
    reordered = dict(reversed(list(base.items())))
    assert digest(base) == digest(reordered)
    assert digest(base) == digest(
        {**base, "stored": STORED, "authority": {"mbox": "mailto:x@y"}, "version": "1.0.3"}
    )
    assert digest(base) != digest(statement(when="2026-10-20T10:00:01Z"))
    assert digest(base) != digest(statement(S2))


def test_void_targets() -> None:
    assert void_target(statement(), 1) is None
    assert void_target(void(V1, S1.upper()), 1) == S1
    for bad in ({"objectType": "Activity", "id": S1}, {"objectType": "StatementRef", "id": "x"}, "s"):
        with pytest.raises(StatementsRefused, match="statement 3"):
            void_target({**void(V1, S1), "object": bad}, 3)


# -- arrivals against the ledger --------------------------------------------------------------------------


def test_arrival() -> None:
    entry = Entry(Kind.COUNTED, "d1", "s")
    assert arrival(None, "d1") is Arrival.NEW
    assert arrival(entry, "d1") is Arrival.SAME
    assert arrival(entry, "d2") is Arrival.CONFLICT
    assert arrival(Entry(Kind.PENDING, voided_by=V1), "d1") is Arrival.VOIDED_EARLIER


@given(
    kind=st.sampled_from(list(Kind)),
    texts=st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=6, max_size=6),
)
def test_an_entry_survives_its_json(kind: Kind, texts: list[str | None]) -> None:
    entry = Entry(kind, texts[0] or "", *texts[1:])
    again = Entry.from_json(entry.to_json())
    blank = {k: (v or None) for k, v in vars_of(entry).items()}
    assert {k: (v or None) for k, v in vars_of(again).items()} == blank


def vars_of(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in Entry.__slots__}


# -- the plan ---------------------------------------------------------------------------------------------


def test_new_statements_are_published_and_recorded() -> None:
    out = plan([statement(S1), statement(None, student="900398004")])
    assert out.ids == [S1, "00000000-0000-4000-8000-000000000001"]
    assert [(e.event_id, e.student_id, e.source) for e in out.events] == [
        (S1, "900412771", Source.VLE),
        (out.ids[1], "900398004", Source.VLE),
    ]
    entry = out.new[S1]
    assert (entry.kind, entry.student_id, entry.source, entry.occurred_at) == (
        Kind.COUNTED,
        "900412771",
        "vle",
        "2026-10-20T10:00:00+00:00",
    )
    assert b"Secret Title" not in entry.to_json() and b"vle.example" not in entry.to_json()
    assert out.retract == [] and out.replace == {} and out.same == 0


def test_a_statement_without_timestamp_happened_when_stored() -> None:
    out = plan([statement(when=None)])
    assert out.events[0].occurred_at.isoformat() == STORED


def test_the_same_statement_again_is_a_no_op_and_a_different_one_is_409() -> None:
    known = {S1: counted(S1)}
    again = plan([statement(S1), statement(S2)], known)
    assert again.same == 1 and [e.event_id for e in again.events] == [S2] and S1 not in again.new
    assert again.ids == [S1, S2]
    with pytest.raises(StatementsRefused) as refused:
        plan([statement(S2), statement(S1, when="2026-10-20T11:00:00Z")], known)
    assert refused.value.status == 409 and "statement 2" in refused.value.reason


def test_not_engagement_is_accepted_and_skipped_with_the_reason() -> None:
    out = plan([statement(S1, verb="http://adlnet.gov/expapi/verbs/experienced"), statement(S2, student="-")])
    assert out.events == [] and out.skipped == ["unmapped verb", "no user"]
    assert out.new[S1] == Entry(Kind.SKIPPED, out.new[S1].digest, "900412771")
    assert out.new[S2].student_id is None


def test_an_unreadable_statement_refuses_the_request() -> None:
    with pytest.raises(StatementsRefused, match="statement 2: timestamp: not an ISO 8601"):
        plan([statement(S1), statement(S2, when="yesterday")])


def test_a_void_retracts_a_counted_statement_once() -> None:
    known = {S1: counted(S1)}
    out = plan([void(V1, S1)], {**known})
    assert [(e.event_id, e.student_id, e.source) for e in out.retract] == [(S1, "900412771", Source.VLE)]
    assert out.retract[0].occurred_at.isoformat() == "2026-10-20T10:00:00+00:00"
    assert out.replace[S1].voided_by == V1 and out.new[V1].kind is Kind.VOIDING
    assert out.events == [] and out.skipped == ["voiding statement"]
    # The same void again: a no-op; another void of the same statement: nothing to retract.
    recorded = {**known, S1: out.replace[S1], V1: out.new[V1]}
    assert plan([void(V1, S1)], recorded).same == 1
    other = plan([void(V2, S1)], recorded)
    assert other.retract == [] and other.skipped == ["voiding statement", ALREADY_VOIDED]


def test_attendance_retractions_keep_the_status() -> None:
    late = statement(
        S1,
        verb="http://xapi.jisc.ac.uk/attended",
        result={"extensions": {"http://xapi.jisc.ac.uk/attendance_late": True}},
    )
    entry = plan([late]).new[S1]
    out = plan([void(V1, S1)], {S1: entry})
    attributes = out.retract[0].attributes
    assert out.retract[0].source is Source.ATTENDANCE and attributes is not None
    assert attributes.status is AttendanceStatus.LATE


def test_a_void_before_its_statement_means_the_statement_never_counts() -> None:
    out = plan([void(V1, S1)])
    assert out.new[S1] == Entry(Kind.PENDING, voided_by=V1) and out.retract == []
    later = plan([statement(S1)], {S1: out.new[S1], V1: out.new[V1]})
    assert later.events == [] and later.new == {} and later.skipped == [ALREADY_VOIDED]
    assert later.replace[S1].voided_by == V1 and later.replace[S1].student_id == "900412771"


def test_a_statement_and_its_void_in_one_request_publish_nothing() -> None:
    for items in ([statement(S1), void(V1, S1)], [void(V1, S1), statement(S1)]):
        out = plan(items)
        assert out.events == [] and out.retract == []
        assert out.new[S1].voided_by == V1 and out.new[S1].kind is Kind.SKIPPED


def test_voids_that_change_nothing_say_why() -> None:
    known = {V1: Entry(Kind.VOIDING, "d"), S2: Entry(Kind.SKIPPED, "d", "900412771")}
    out = plan([void(V2, V1), void(S3, S2)], known)
    assert out.retract == [] and out.skipped[2:] == [VOIDS_A_VOID, NOT_COUNTED]


def test_two_voids_of_one_unknown_statement() -> None:
    out = plan([void(V1, S1), void(V2, S1)])
    assert out.new[S1].voided_by == V1 and out.skipped[-1] == ALREADY_VOIDED


def test_races_resolve_into_retractions() -> None:
    ours = counted(S1)
    pending = Entry(Kind.PENDING, voided_by=V1)
    first = resolve_races({S1: ours}, {S1: pending})
    assert [e.event_id for e in first.retract] == [S1] and first.replace[S1].voided_by == V1
    second = resolve_races({S1: pending}, {S1: ours})
    assert [e.event_id for e in second.retract] == [S1]
    assert resolve_races({S1: ours}, {S1: ours}).retract == []  # the same statement twice: counted once


# -- fuzzing: any body, any ledger -> a plan or a refusal, nothing else ---------------------------------

PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.sampled_from([S1, S2, V1, VOIDED]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from([S1, S2, V1, "x", None]),
        "actor": st.one_of(json_values, st.just(statement()["actor"])),
        "verb": st.one_of(json_values, st.sampled_from([{"id": VOIDED}, statement()["verb"]])),
        "object": st.one_of(json_values, st.just({"objectType": "StatementRef", "id": S1})),
        "timestamp": st.one_of(json_values, st.just("2026-10-20T10:00:00Z")),
        "result": json_values,
    },
)
ledgers = st.dictionaries(
    st.sampled_from([S1, S2, V1]),
    st.one_of(
        st.just(Entry(Kind.PENDING, voided_by=V2)),
        st.just(Entry(Kind.VOIDING, "d")),
        st.builds(lambda: counted(S1)),
    ),
)


@PROPERTY
@given(items=st.lists(fields, max_size=4), single=st.booleans(), known=ledgers)
def test_any_request_is_planned_or_refused(
    items: list[dict[str, Any]], single: bool, known: dict[str, Entry]
) -> None:
    body = json.dumps(items[0] if single and items else items)
    try:
        statements = read_statements(body, ids())
        out = plan_statements(statements, known, STORED)
    except StatementsRefused as refused:
        assert refused.status in (400, 409) and refused.reason
        return
    assert len(out.ids) == len(statements) == len(set(out.ids))
    assert {e.event_id for e in out.events} <= set(out.ids)
    assert len(out.events) + out.same + len(out.skipped) >= len(statements)


@PROPERTY
@given(text=st.text(max_size=300))
def test_any_text_is_read_or_refused(text: str) -> None:
    try:
        read_statements(text, ids())
    except StatementsRefused as refused:
        assert refused.status == 400
