"""The HTTP collector over real HTTP against a running service: the upstream fixtures go in with the counts
`lde ingest` gives and are applied; a 202 means the events are already in Kafka; refused requests
(401, 413, 400) publish nothing; partial success dead-letters the invalid records; nothing private is
echoed; the OpenAPI document describes the endpoints."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from models.partitioning import partition_for
from models.timebuckets import local_day, zone
from ops.devtools.replay import EventTimeRun
from ops.edge.collector import THREAD_THRESHOLD_BYTES, check_bearer, collector_tokens
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.fixtures import upstream
from tests.integration.conftest import TERM_START

pytestmark = pytest.mark.integration

TOKENS = {"caliper": "caliper-secret-1", "xapi": "xapi-secret-2", "events": "events-secret-3"}
MAX_BYTES = 1_000_000  # above THREAD_THRESHOLD_BYTES, so a large body takes the worker-thread path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventTimeRun]:
    """One service for the module (starting takes ~10 s), with a token per source and a 1 MB cap."""
    service = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("collector") / "lde",
        evaluate_from=TERM_START,
        partitions=4,
        extra_env={"LDE_COLLECTOR_TOKENS": json.dumps(TOKENS), "LDE_COLLECTOR_MAX_BYTES": str(MAX_BYTES)},
    )
    service.start()
    try:
        yield service
    finally:
        assert service.stop() == 0


# -- helpers -------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    text: str
    headers: dict[str, str]

    @property
    def body(self) -> Any:
        return json.loads(self.text)


def call(
    run: EventTimeRun,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    authorization: str | None = None,
    method: str = "POST",
) -> Reply:
    """One HTTP request with urllib; an iterable body goes chunked (no Content-Length)."""
    request = urllib.request.Request(run.settings.service_url + path, data=body, method=method)
    request.add_header("Content-Type", "application/json")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


def post(run: EventTimeRun, path: str, body: bytes | Iterable[bytes], source: str | None) -> Reply:
    """POST with the bearer token of `source` (None: no Authorization header)."""
    return call(run, path, body, None if source is None else f"Bearer {TOKENS[source]}")


def end_offsets(run: EventTimeRun) -> dict[TopicPartition, int]:
    """The next offset of every partition of the activity and dead-letter topics."""
    consumer = KafkaConsumer(bootstrap_servers=run.settings.kafka_bootstrap)
    try:
        tps = [
            TopicPartition(run.settings.topic(name), p)
            for name in ("activity", "dead-letter")
            for p in range(run.settings.partitions)
        ]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def advanced(run: EventTimeRun, before: dict[TopicPartition, int], name: str) -> set[int]:
    """The partitions of topic `name` written to since `before`, read right after a response.

    Only whether an end offset moved is reliable: the embedded broker (Tansu) reports an end offset
    short of the real one after a multi-record batch, so messages are counted by reading them.
    """
    after = end_offsets(run)
    topic = run.settings.topic(name)
    return {tp.partition for tp in after if tp.topic == topic and after[tp] != before[tp]}


def read_since(
    run: EventTimeRun,
    before: dict[TopicPartition, int],
    name: str,
    enough: Callable[[list[ConsumerRecord]], bool],
) -> list[ConsumerRecord]:
    """The messages of topic `name` after `before` once `enough` holds (partitions assigned, no group),
    and whatever else arrives within another half second."""
    topic = run.settings.topic(name)
    consumer = KafkaConsumer(bootstrap_servers=run.settings.kafka_bootstrap)
    out: list[ConsumerRecord] = []

    def poll(timeout_ms: int) -> bool:
        for records in consumer.poll(timeout_ms=timeout_ms).values():
            out.extend(records)
        return enough(out)

    try:
        tps = [tp for tp in before if tp.topic == topic]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, before[tp])
        assert wait_until(lambda: poll(200), 30, 0), f"only {len(out)} messages"
        poll(500)
    finally:
        consumer.close()
    return out


def wait_activity(run: EventTimeRun, student_id: str, expected: dict[tuple[str, str], int]) -> None:
    """Wait until the student's counts (as /v1/activity reports them) include `expected`."""
    seen: dict[tuple[str, str], int] = {}

    def applied() -> bool:
        seen.update(run.activity(student_id))
        return all(seen.get(key) == count for key, count in expected.items())

    assert wait_until(applied, 60, 0.2), (student_id, seen)


def event(event_id: str, student_id: str, when: datetime, source: str = "vle") -> dict[str, Any]:
    return {"event_id": event_id, "student_id": student_id, "source": source, "occurred_at": when.isoformat()}


def jsonl(*items: dict[str, Any] | str) -> bytes:
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items).encode()


def assert_nothing_private(reply: Reply) -> None:
    leaked = [s for s in upstream.private_strings() if s in reply.text]
    assert not leaked, leaked


def sample(fmt: str) -> bytes:
    return upstream.path(upstream.FEEDS[fmt]).read_bytes()


OCT_20 = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)


# -- accepted --------------------------------------------------------------------------------------------


def test_caliper_sample_is_in_kafka_when_answered_and_then_applied(run: EventTimeRun) -> None:
    before = end_offsets(run)
    reply = post(run, "/v1/caliper", sample("caliper"), "caliper")
    assert reply.status == 200, reply.text  # what IMS's Caliper sensors count as success
    body = reply.body
    assert body["request_id"]
    assert {k: v for k, v in body.items() if k != "request_id"} == {
        "accepted": 3,
        "duplicates": 1,
        "too_late": 0,
        "refused": 0,
        "skipped": [
            {"position": "data[4]", "reason": "logoff"},
            {"position": "data[5]", "reason": "no user"},
        ],
        "invalid": [],
        "late": [],
    }
    assert_nothing_private(reply)
    # Already in Kafka when answered: one envelope per partition of the two students, no dead letter.
    partitions = {partition_for(s, run.settings.partitions) for s in ("900201777", "900555123")}
    assert advanced(run, before, "activity") == partitions
    assert advanced(run, before, "dead-letter") == set()
    # Canvas events at 23:41Z (BST) and 01:20Z (GMT): both on local 25 October; the duplicate counts once.
    wait_activity(run, "900201777", {("2026-10-25", "vle"): 2})
    wait_activity(run, "900555123", {("2026-10-25", "vle"): 1})


def test_xapi_sample_accepts_seven_and_dead_letters_the_invalid_one(run: EventTimeRun) -> None:
    before = end_offsets(run)
    reply = post(run, "/v1/xapi/statements", sample("xapi"), "xapi")
    assert reply.status == 202, reply.text
    body = reply.body
    skipped = [{"position": "statement 8", "reason": "unmapped verb"}]
    assert (body["accepted"], body["duplicates"], body["skipped"]) == (7, 0, skipped)
    assert body["invalid"] == [{"position": "statement 9", "reason": "timestamp: not an ISO 8601 date-time"}]
    assert_nothing_private(reply)
    assert advanced(run, before, "dead-letter")  # in Kafka when answered
    letters = read_since(run, before, "dead-letter", lambda out: len(out) >= 1)
    assert len(letters) == 1
    headers = {k: v.decode() for k, v in letters[0].headers}
    assert headers == {
        "error": "timestamp: not an ISO 8601 date-time",
        "source": "http:xapi",
        "position": "statement 9",
        "request_id": body["request_id"],
    }
    kept = json.loads(letters[0].value)
    assert kept["redacted"] is True and "sha256" in kept  # a digest, never the record's text
    wait_activity(run, "900398004", {("2026-11-02", "library"): 1, ("2026-11-04", "pc_logon"): 1})
    wait_activity(run, "900555123", {("2026-11-03", "eresource"): 1, ("2026-11-03", "remote"): 1})
    wait_activity(run, "900412771", {("2026-11-04", "vle"): 1, ("2026-11-05", "attendance"): 1})


def test_canonical_events_as_jsonl_array_and_object(run: EventTimeRun) -> None:
    lines = jsonl(
        event("http-jsonl-1", "http-a", OCT_20),
        event("http-jsonl-2", "http-a", OCT_20.replace(tzinfo=None)),  # no offset: invalid
        event("http-jsonl-3", "http-a", OCT_20 + timedelta(hours=1), "library"),
    )
    before = end_offsets(run)
    reply = post(run, "/v1/events", lines, "events")
    assert reply.status == 202, reply.text
    assert reply.body["accepted"] == 2
    assert [i["position"] for i in reply.body["invalid"]] == ["line 2"]
    assert "occurred_at" in reply.body["invalid"][0]["reason"]
    assert len(advanced(run, before, "dead-letter")) == 1

    array = json.dumps([event("http-array-1", "http-a", OCT_20 + timedelta(days=1)), {"event_id": "x"}])
    reply = post(run, "/v1/events", array.encode(), "events")
    assert reply.status == 202, reply.text
    assert reply.body["accepted"] == 1
    assert [i["position"] for i in reply.body["invalid"]] == ["item 2"]

    single = json.dumps(event("http-object-1", "http-a", OCT_20 + timedelta(days=2)), indent=2)
    reply = post(run, "/v1/events", single.encode(), "events")
    assert reply.status == 202, reply.text
    assert (reply.body["accepted"], reply.body["invalid"]) == (1, [])

    wait_activity(
        run,
        "http-a",
        {
            ("2026-10-20", "vle"): 1,
            ("2026-10-20", "library"): 1,
            ("2026-10-21", "vle"): 1,
            ("2026-10-22", "vle"): 1,
        },
    )


def test_a_large_body_goes_in_envelopes_per_partition(run: EventTimeRun) -> None:
    students = [f"http-bulk-{n}" for n in range(40)]
    items = [
        event(f"http-bulk-event-{n}", students[n % len(students)], OCT_20 + timedelta(seconds=n))
        for n in range(2600)
    ]
    body = jsonl(*items)
    assert THREAD_THRESHOLD_BYTES < len(body) < MAX_BYTES
    before = end_offsets(run)
    reply = post(run, "/v1/events", body, "events")
    assert reply.status == 202, reply.text
    assert (reply.body["accepted"], reply.body["invalid"]) == (2600, [])
    partitions = run.settings.partitions
    per_partition = Counter(partition_for(i["student_id"], partitions) for i in items)
    assert advanced(run, before, "activity") == set(per_partition)  # in Kafka when answered

    def envelope(record: ConsumerRecord) -> list[dict[str, Any]]:
        return list(json.loads(record.value)["events"])

    messages = read_since(run, before, "activity", lambda out: sum(len(envelope(r)) for r in out) >= 2600)
    size = run.settings.envelope_max_events
    assert Counter(r.partition for r in messages) == {
        p: math.ceil(n / size) for p, n in per_partition.items()
    }
    for record in messages:
        events = envelope(record)
        assert 0 < len(events) <= size
        assert {partition_for(e["student_id"], partitions) for e in events} == {record.partition}
    wait_activity(run, students[0], {("2026-10-20", "vle"): 2600 // len(students)})
    wait_activity(run, students[-1], {("2026-10-20", "vle"): 2600 // len(students)})


# -- refused: nothing published ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Bearer {TOKENS['xapi']}",  # a real token, but another source's
        f"Basic {TOKENS['caliper']}",
        "Bearer ",
    ],
    ids=["no-token", "wrong-token", "other-source-token", "not-bearer", "empty-bearer"],
)
def test_without_the_endpoints_token_401_and_nothing_published(
    run: EventTimeRun, authorization: str | None
) -> None:
    before = end_offsets(run)
    reply = call(run, "/v1/caliper", sample("caliper"), authorization)
    assert reply.status == 401, reply.text
    assert "token" in reply.body["error"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert end_offsets(run) == before


def test_oversize_body_413_and_nothing_published(run: EventTimeRun) -> None:
    # Valid content: only the size refuses it. Declared (Content-Length), then chunked (no length).
    body = jsonl(event("http-big-1", "http-big", OCT_20)) + b"\n" * MAX_BYTES
    before = end_offsets(run)
    declared = post(run, "/v1/events", body, "events")
    assert declared.status == 413, declared.text
    assert declared.body["max_bytes"] == MAX_BYTES
    chunked = post(run, "/v1/events", (body[i : i + 65536] for i in range(0, len(body), 65536)), "events")
    assert chunked.status == 413, chunked.text
    assert end_offsets(run) == before
    assert run.activity("http-big") == {}


def test_unreadable_bodies_400_with_reasons_and_nothing_published(run: EventTimeRun) -> None:
    before = end_offsets(run)
    garbage = post(run, "/v1/caliper", b"this is not JSON {", "caliper")
    assert garbage.status == 400, garbage.text
    assert garbage.body["accepted"] == 0
    [note] = garbage.body["invalid"]
    assert note["position"] == "document" and note["reason"].startswith("not JSON")

    not_envelope = post(run, "/v1/caliper", b'{"events": []}', "caliper")
    assert not_envelope.status == 400
    assert not_envelope.body["invalid"][0]["reason"] == "expected a Caliper envelope with a 'data' list"

    all_invalid = jsonl(
        "not json at all", {"event_id": "x", "student_id": "y"}, event("z", "w", OCT_20, source="telepathy")
    )
    rejected = post(run, "/v1/events", all_invalid, "events")
    assert rejected.status == 400, rejected.text
    assert [n["position"] for n in rejected.body["invalid"]] == ["line 1", "line 2", "line 3"]
    assert all(n["reason"] for n in rejected.body["invalid"])

    for body in (b"", b"\xff\xfe\xfa"):
        assert post(run, "/v1/xapi/statements", body, "xapi").status == 400
    assert end_offsets(run) == before  # no events and no dead letters for a rejected body


# -- description and observability ---------------------------------------------------------------------


def test_openapi_document_describes_the_endpoints(run: EventTimeRun) -> None:
    reply = call(run, "/v1/openapi.json", method="GET")
    assert reply.status == 200
    document = reply.body
    assert document["openapi"].startswith("3.1")
    paths = {"/v1/caliper", "/v1/xapi/statements", "/v1/events"}
    assert paths <= set(document["paths"])
    schemes = document["components"]["securitySchemes"]
    for path in paths:
        operation = document["paths"][path]["post"]
        success = "200" if path == "/v1/caliper" else "202"
        assert {success, "400", "401", "413"} <= set(operation["responses"])
        assert operation["requestBody"]["content"]
        [requirement] = operation["security"]
        [scheme] = requirement
        assert (schemes[scheme]["type"], schemes[scheme]["scheme"]) == ("http", "bearer")

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    summary = document["components"]["schemas"]["Summary"]
    assert {"accepted", "duplicates", "too_late", "refused"} <= set(summary["required"])
    for ref in refs(document):  # every reference resolves
        root, kind, name = ref.removeprefix("#/").split("/")
        assert name in document[root][kind], ref
    assert call(run, "/v1/caliper", method="GET").status == 405


def test_requests_and_records_are_counted_in_metrics(run: EventTimeRun) -> None:
    assert post(run, "/v1/xapi/statements", b"[]", None).status == 401
    body = jsonl(event("http-metrics-1", "http-metrics", OCT_20), "{}")
    assert post(run, "/v1/events", body, "events").status == 202
    metrics = run.client.text("/metrics")
    for expected in (
        'lde_collector_requests_total{endpoint="xapi",status="401"}',
        'lde_collector_requests_total{endpoint="events",status="202"}',
        'lde_collector_records_total{endpoint="events",outcome="accepted"}',
        'lde_collector_records_total{endpoint="events",outcome="invalid"}',
        'lde_dead_letters_total{topic="http:events"}',
        'lde_collector_request_seconds_bucket{endpoint="events"',
    ):
        assert expected in metrics, expected


# -- bounded event times (issue 22) and the answer's counts (issues 23.6, 25.4) ---------------------------


def test_an_event_in_the_year_2999_is_refused_with_its_reason_and_a_dead_letter(run: EventTimeRun) -> None:
    """It used to be answered 202 and then stop the worker on every start (OverflowError)."""
    body = jsonl(
        event("http-2999-1", "http-2999", OCT_20),
        event("http-2999-2", "http-2999", datetime(2999, 1, 1, tzinfo=UTC)),
    )
    before = end_offsets(run)
    reply = post(run, "/v1/events", body, "events")
    assert reply.status == 202, reply.text
    assert (reply.body["accepted"], reply.body["refused"], reply.body["too_late"]) == (1, 1, 0)
    [note] = reply.body["invalid"]
    assert note["position"] == "line 2" and "2149-01-01" in note["reason"]
    assert len(advanced(run, before, "dead-letter")) == 1
    alone = post(
        run,
        "/v1/events",
        jsonl(event("http-2999-3", "http-2999", datetime(2999, 1, 1, tzinfo=UTC))),
        "events",
    )
    assert alone.status == 400 and alone.body["refused"] == 1, alone.text
    wait_activity(run, "http-2999", {("2026-10-20", "vle"): 1})  # the worker lives on


@pytest.fixture(scope="module")
def wall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventTimeRun]:
    """A service on the wall clock: the window has a future bound there, and lateness counts from now."""
    service = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("collector-wall") / "lde",
        evaluate_from=TERM_START,
        partitions=4,
        extra_env={"LDE_COLLECTOR_TOKENS": json.dumps(TOKENS), "LDE_CLOCK": "wall"},
    )
    service.start()
    try:
        yield service
    finally:
        assert service.stop() == 0


def gauge(run: EventTimeRun, name: str) -> float | None:
    """A metric's value as /metrics gives it (None when absent)."""
    for text_line in run.client.text("/metrics").splitlines():
        if text_line.startswith(name + " "):
            return float(text_line.split()[-1])
    return None


def test_the_answer_counts_accepted_duplicate_too_late_and_refused_apart(wall: EventTimeRun) -> None:
    now = datetime.now(UTC)
    body = jsonl(
        event("wall-1", "wall-a", now - timedelta(hours=1)),
        event("wall-1", "wall-a", now - timedelta(hours=1)),
        event("wall-2", "wall-a", now - timedelta(days=10)),  # beyond the 72 h lateness limit
        event("wall-3", "wall-a", datetime(2100, 1, 1, tzinfo=UTC)),  # fits the stores, not the window
        event("wall-4", "wall-a", datetime(1999, 6, 1, tzinfo=UTC)),  # before the floor
    )
    before = end_offsets(wall)
    reply = post(wall, "/v1/events", body, "events")
    assert reply.status == 202, reply.text
    counts = {k: reply.body[k] for k in ("accepted", "duplicates", "too_late", "refused")}
    assert counts == {"accepted": 1, "duplicates": 1, "too_late": 1, "refused": 2}
    assert [n["position"] for n in reply.body["late"]] == ["line 3"]
    assert reply.body["late"][0]["reason"].startswith("too late")
    reasons = {n["position"]: n["reason"] for n in reply.body["invalid"]}
    assert "ahead of the service's clock" in reasons["line 4"] and "LDE_EVENT_TIME_FLOOR" in reasons["line 5"]
    letters = read_since(wall, before, "dead-letter", lambda out: len(out) >= 3)
    positions = sorted(dict(r.headers)["position"].decode() for r in letters)
    assert positions == ["line 3", "line 4", "line 5"]
    today = local_day(now - timedelta(hours=1), zone(wall.settings.timezone)).isoformat()
    wait_activity(wall, "wall-a", {(today, "vle"): 1})
    # set at the end of the batch, which a count read between its slices can precede
    freshness_name = 'lde_last_event_timestamp_seconds{source="vle"}'
    assert wait_until(lambda: gauge(wall, freshness_name) is not None, 30, 0.2)
    freshness = gauge(wall, freshness_name)
    assert freshness is not None and freshness <= now.timestamp()


def test_a_far_future_event_past_the_edge_is_dead_lettered_by_the_stream(wall: EventTimeRun) -> None:
    """Published straight to Kafka (an older release, another producer): the stream applies the same
    window, and the feed's freshness does not move to the year 2100."""
    settings = wall.settings
    future = {
        "event_id": "wall-direct",
        "student_id": "wall-b",
        "source": "print",
        "occurred_at": "2100-01-01T00:00:00Z",
    }
    before = end_offsets(wall)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    partition = partition_for("wall-b", settings.partitions)
    producer.send(
        settings.topic("activity"), value=json.dumps({"events": [future]}).encode(), partition=partition
    )
    producer.flush()
    producer.close()

    def errors(out: list[ConsumerRecord]) -> list[str]:
        """The stream's dead letters' reasons (the broker's end offsets may let earlier letters in)."""
        return [dict(r.headers)["error"].decode() for r in out if b"wall-direct" in (r.value or b"")]

    [error] = errors(read_since(wall, before, "dead-letter", lambda out: bool(errors(out))))
    assert error.startswith("out of window") and "ahead of the service's clock" in error
    assert gauge(wall, 'lde_last_event_timestamp_seconds{source="print"}') in (None, 0.0)
    assert wall.activity("wall-b") == {}


# -- configuration (in-process) ------------------------------------------------------------------------
# One source of truth: the Settings object reads LDE_COLLECTOR_TOKENS and LDE_COLLECTOR_MAX_BYTES.


def test_tokens_are_secure_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDE_COLLECTOR_TOKENS", raising=False)
    assert collector_tokens(Settings()) == {}
    assert "no token is configured" in (check_bearer("Bearer anything", None) or "")
    assert check_bearer("", None) is not None
    monkeypatch.setenv("LDE_COLLECTOR_TOKENS", '{"caliper": "", "events": "  "}')  # blank never matches
    assert collector_tokens(Settings()) == {}
    monkeypatch.setenv("LDE_COLLECTOR_TOKENS", "not json")
    with pytest.raises(ValueError, match="collector_tokens"):  # lde says "invalid settings: ..."
        Settings()
    monkeypatch.setenv("LDE_COLLECTOR_TOKENS", '{"xapi": 5}')
    with pytest.raises(ValidationError, match="collector_tokens"):
        Settings()
    monkeypatch.setenv("LDE_COLLECTOR_TOKENS", json.dumps(TOKENS))
    assert collector_tokens(Settings()) == TOKENS
    assert check_bearer("Bearer s", "s") is None
    assert check_bearer("bearer s", "s") is None


def test_size_limit_defaults_to_5_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LDE_COLLECTOR_MAX_BYTES", raising=False)
    assert Settings().collector_max_bytes == 5 * 1024 * 1024
    monkeypatch.setenv("LDE_COLLECTOR_MAX_BYTES", "2048")
    assert Settings().collector_max_bytes == 2048
    monkeypatch.setenv("LDE_COLLECTOR_MAX_BYTES", "-1")
    with pytest.raises(ValidationError, match="collector_max_bytes"):
        Settings()
