"""The bulk canonical-JSONL path of `lde ingest` gives exactly what the per-line reader gives (the same
events and bytes, the same invalid lines with the same positions, reasons and raw text), the guard
and the de-duplication keep their meaning in bulk, and `ingest` publishes the same envelopes and dead
letters whichever path it takes."""

from __future__ import annotations

import io
import json
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.adapters import ADAPTERS, Invalid, Parsed, read_lde_jsonl
from models.events import (
    ActivityEvent,
    decode_message,
    encode_envelope,
    encode_records_envelope,
    event_record,
)
from models.jsonl import read_jsonl_block, split_complete_lines
from models.partitioning import partition_for
from ops.edge.ingest import (
    InvalidShareGuard,
    RecentIds,
    UpstreamBroken,
    _jsonl_chunks,
    ingest,
    redacted_record,
)
from ops.settings import Settings
from tests.fixtures import canvas as canvas_samples
from tests.fixtures import upstream

PROPERTY = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def event_line(i: int, **extra: Any) -> str:
    return json.dumps(
        {
            "event_id": f"e{i}",
            "student_id": f"S{i % 7}",
            "source": "vle",
            "occurred_at": "2026-10-27T09:00:00+01:00",
            **extra,
        }
    )


def per_line(data: bytes) -> tuple[list[bytes], list[tuple[str, str, str]]]:
    """The reference: the per-line reader over the file as `lde ingest` opened it before the bulk path."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="")
    events: list[bytes] = []
    invalid: list[tuple[str, str, str]] = []
    for record in read_lde_jsonl(text):
        if isinstance(record, Parsed):
            events.append(encode_envelope([record.event]))
        else:
            assert isinstance(record, Invalid)
            invalid.append((record.position, record.reason, record.raw))
    return events, invalid


def bulk(data: bytes, block_bytes: int) -> tuple[list[bytes], list[tuple[str, str, str]]]:
    events: list[bytes] = []
    invalid: list[tuple[str, str, str]] = []
    for chunk in _jsonl_chunks(io.BytesIO(data), block_bytes):
        events += [encode_records_envelope([record]) for record in chunk.events]
        invalid += [(r.position, r.reason, r.raw) for _, r in chunk.invalid]
    return events, invalid


# -- one block -----------------------------------------------------------------------------------------


def test_a_bad_line_in_the_middle_of_a_block_is_reported_at_its_own_line() -> None:
    lines = [event_line(i) for i in range(5)]
    lines[2] = '{"event_id":"e2","student_id":"S2","source":"vle","occurred_at":"yesterday"}'
    block = ("\n".join(lines) + "\n").encode()
    chunk = read_jsonl_block(block, first_line=101)
    assert chunk.lines == 5
    assert [r["event_id"] for r in chunk.events] == ["e0", "e1", "e3", "e4"]
    assert len(chunk.invalid) == 1
    valid_before, bad = chunk.invalid[0]
    assert valid_before == 2  # two valid events came before it: the guard replays the order
    assert bad.position == "line 103"
    assert bad.raw == lines[2]
    reference = next(iter(read_lde_jsonl([lines[2]])))
    assert isinstance(reference, Invalid) and bad.reason == reference.reason
    assert bad.reason.startswith("occurred_at")


def test_block_output_is_byte_for_byte_the_per_line_envelope() -> None:
    lines = [
        event_line(1),
        event_line(2, title="A Private Title", url="https://example.org/doc"),  # dropped, re-serialised
        event_line(3, source="attendance", attributes={"status": "late", "room": "B12"}),
        event_line(4, source="print", attributes={"pages": "3", "status": None}),
        '  {"event_id":" e5 ","student_id":" S5 ","source":"vle","occurred_at":"2026-10-27T08:00:00Z"}  ',
        '{"event_id":"e6","student_id":"S6","source":"vle","occurred_at":"2026-10-27T08:00:00.123456-05:00"}',
    ]
    block = "\r\n".join(lines).encode()
    chunk = read_jsonl_block(block, 1)
    events = [e.event for e in read_lde_jsonl(lines) if isinstance(e, Parsed)]
    assert encode_records_envelope(chunk.events) == encode_envelope(events)
    assert b"Private" not in encode_records_envelope(chunk.events)
    assert b"B12" not in encode_records_envelope(chunk.events)
    assert decode_message(encode_records_envelope(chunk.events)).events == events


def test_a_repeated_key_is_never_passed_through() -> None:
    """Events are re-serialised from what was validated, so an overridden value cannot reach Kafka."""
    line = (
        '{"event_id":"Secret Title","attributes":{"title":"Secret"},"student_id":"S1","source":"vle",'
        '"occurred_at":"2026-10-27T09:00:00Z","event_id":"e1","attributes":null}'
    )
    chunk = read_jsonl_block(line.encode(), 1)
    assert b"Secret" not in encode_records_envelope(chunk.events)


def test_split_complete_lines_never_cuts_a_crlf_or_a_line() -> None:
    assert split_complete_lines(b"a\nb\nc", final=False) == (b"a\nb\n", b"c")
    assert split_complete_lines(b"a\r", final=False) == (b"", b"a\r")  # its \n may come next
    assert split_complete_lines(b"a\rb", final=False) == (b"a\r", b"b")
    assert split_complete_lines(b"abc", final=False) == (b"", b"abc")
    assert split_complete_lines(b"abc", final=True) == (b"abc", b"")


# -- the bulk path equals the per-line path ------------------------------------------------------------

BASE = {"event_id": "e", "student_id": "S", "source": "vle", "occurred_at": "2026-10-27T09:00:00Z"}
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2_000_000_000),
    st.floats(allow_nan=False),
    st.sampled_from(["", " ", " S1 ", "vle", "print", "late", "3", "1e2", "x" * 201]),
    st.sampled_from(["2026-10-27T09:00:00Z", "2026-10-27T09:00:00", "2026-10-27", "2026-10-27T09:00+01:00"]),
    st.text(max_size=8),
    st.just({"status": "present", "pages": 2}),
    st.just([]),
)
#: Events whose fields may hold anything: the bulk validation must accept exactly what the model does.
odd_events = st.dictionaries(
    st.sampled_from(["event_id", "student_id", "source", "occurred_at", "attributes", "title"]),
    odd_values,
).map(lambda d: json.dumps({**BASE, **d}))

line_kinds = st.one_of(
    odd_events,
    st.integers(0, 50).map(event_line),
    st.integers(0, 50).map(lambda i: event_line(i, title="Private", attributes={"pages": i})),
    st.just(""),
    st.just("   "),
    st.just("{broken"),
    st.just('{"event_id":"x","student_id":"S","source":"nowhere","occurred_at":"2026-10-27T09:00:00Z"}'),
    st.just('{"event_id":"x","student_id":"S","source":"vle","occurred_at":"2026-10-27T09:00:00"}'),
    st.just('[{"event_id":"x"}]'),
    st.text(max_size=30),
)
line_breaks = st.sampled_from(["\n", "\r\n", "\r"])


@PROPERTY
@given(
    lines=st.lists(st.tuples(line_kinds, line_breaks), max_size=30),
    tail=st.booleans(),
    junk=st.binary(max_size=6),
    block_bytes=st.sampled_from([1, 7, 64, 1 << 20]),
)
def test_bulk_path_equals_the_per_line_path(
    lines: list[tuple[str, str]], tail: bool, junk: bytes, block_bytes: int
) -> None:
    """Any mix of good, bad and blank lines, any line ends, invalid UTF-8, any block size."""
    data = "".join(text + end for text, end in lines).encode("utf-8", "surrogatepass")
    data = data + junk if tail else junk + data
    assert bulk(data, block_bytes) == per_line(data)


# -- the guard in bulk ---------------------------------------------------------------------------------


class PerRecordGuard:
    """The guard as it was: one observation at a time (the reference for observe_valid)."""

    def __init__(self, limit: float, window: int, minimum: int) -> None:
        self.limit, self.window, self.minimum = limit, window, minimum
        self.recent: deque[bool] = deque()
        self.bad = 0

    def observe(self, valid: bool) -> None:
        self.recent.append(valid)
        self.bad += not valid
        if len(self.recent) > self.window and not self.recent.popleft():
            self.bad -= 1
        if len(self.recent) >= self.minimum and self.bad / len(self.recent) > self.limit:
            raise UpstreamBroken(f"{self.bad} of the last {len(self.recent)}")


def stop_point(observe: Any, runs: list[tuple[int, int]]) -> tuple[int, str] | None:
    """Feed (valid run, invalid run) pairs; where and with what message the guard stopped, if it did."""
    seen = 0
    try:
        for valid, invalid in runs:
            observe(valid, invalid)
            seen += valid + invalid
    except UpstreamBroken as error:
        return seen, str(error).split(" records")[0]
    return None


@PROPERTY
@given(
    runs=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 12)), max_size=25),
    window=st.integers(1, 60),
    minimum=st.integers(1, 80),
    limit=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
)
def test_observe_valid_is_observe_true_repeated(
    runs: list[tuple[int, int]], window: int, minimum: int, limit: float
) -> None:
    reference = PerRecordGuard(limit, window, minimum)
    guard = InvalidShareGuard(limit=limit, window=window, minimum=minimum)

    def one_by_one(valid: int, invalid: int) -> None:
        for _ in range(valid):
            reference.observe(True)
        for _ in range(invalid):
            reference.observe(False)

    def in_bulk(valid: int, invalid: int) -> None:
        guard.observe_valid(valid)
        for _ in range(invalid):
            guard.observe(False)

    stopped = stop_point(one_by_one, runs)
    assert stop_point(in_bulk, runs) == stopped
    if stopped is None:
        assert (guard._bad, len(guard._recent)) == (reference.bad, len(reference.recent))


def test_recent_ids_forget_only_beyond_two_generations() -> None:
    ids = RecentIds(capacity=3)
    assert [ids.add(x) for x in ["a", "b", "a", "c"]] == [True, True, False, True]
    assert [ids.add(x) for x in ["d", "e", "a"]] == [True, True, False]  # a: previous generation
    assert [ids.add(x) for x in ["f", "g"]] == [True, True]
    assert ids.add("a")  # two generations later: forgotten (the stream's own de-duplication is exact)


# -- ingest end to end, with a recording publisher -----------------------------------------------------


class RecordingPublisher:
    """What `ingest` asks of a Publisher, recorded instead of sent."""

    def __init__(self, partitions: int = 4, envelope: int = 3) -> None:
        self.settings = Settings(partitions=partitions, envelope_max_events=envelope)
        self.partitions = partitions
        self.envelopes: list[tuple[int, bytes]] = []
        self.dead_letters: list[tuple[bytes, str, str, str]] = []

    def send_envelope(self, partition: int, value: bytes) -> None:
        self.envelopes.append((partition, value))

    def send_dead_letter(self, payload: bytes, reason: str, source: str, position: str) -> None:
        self.dead_letters.append((payload, reason, source, position))

    def flush(self) -> None:
        pass

    def events(self) -> list[ActivityEvent]:
        return [e for _, value in self.envelopes for e in decode_message(value).events]


def run_ingest(source: Any, fmt: str = "lde-jsonl", **kwargs: Any) -> tuple[Any, RecordingPublisher]:
    publisher = RecordingPublisher()
    summary = ingest(source, fmt, publisher, "f.jsonl", "Europe/London", **kwargs)  # type: ignore[arg-type]
    return summary, publisher


def test_ingest_bulk_and_per_line_publish_the_same() -> None:
    lines = [event_line(i % 40) for i in range(100)]  # 60 repeats of 40 ids
    lines[17] = "{broken"
    lines[55] = ""
    lines[80] = event_line(999, title="Private")
    data = ("\n".join(lines) + "\n").encode()
    fast, fast_out = run_ingest(io.BytesIO(data), block_bytes=256)
    slow, slow_out = run_ingest(data.decode().splitlines(keepends=True))
    assert (fast.accepted, fast.duplicates, fast.invalid) == (41, 57, 1)
    assert (slow.accepted, slow.duplicates, slow.invalid) == (41, 57, 1)
    assert sorted(e.event_id for e in fast_out.events()) == sorted(e.event_id for e in slow_out.events())
    assert fast_out.dead_letters == slow_out.dead_letters
    payload, reason, source, position = fast_out.dead_letters[0]
    assert (source, position) == ("lde-jsonl", "f.jsonl:line 18") and "JSON" in reason
    assert payload == redacted_record("{broken")
    for partition, value in fast_out.envelopes:  # envelopes of up to 3, each of one partition's students
        events = decode_message(value).events
        assert 1 <= len(events) <= 3
        assert {partition_for(e.student_id, 4) for e in events} == {partition}
    assert not any(b"Private" in value for _, value in fast_out.envelopes)


def test_ingest_bulk_stops_a_broken_upstream() -> None:
    lines = [event_line(i) if i % 5 else "{broken" for i in range(2000)]
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(UpstreamBroken, match="upstream export looks broken"):
        run_ingest(io.BytesIO(data))


@pytest.mark.parametrize("fmt", sorted(set(ADAPTERS) - {"lde-jsonl"}))
def test_other_formats_publish_what_the_adapter_reads(fmt: str) -> None:
    """A binary file is decoded as `lde ingest` always opened files; envelopes are the old bytes."""
    options: dict[str, Any] = {}
    if fmt in upstream.FEEDS:
        path = upstream.path(upstream.FEEDS[fmt])
    else:  # the Canvas formats' fixtures; web_logs needs its user map
        path = canvas_samples.HERE / canvas_samples.CANVAS_FILES[fmt]
        options = {"users": canvas_samples.USERS} if fmt == "canvas-web-logs" else {}
    data = path.read_bytes()
    summary, publisher = run_ingest(io.BytesIO(data), fmt, options=options or None)
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        expected = [r.event for r in ADAPTERS[fmt](handle, **options) if isinstance(r, Parsed)]
    assert expected, fmt  # a fixture with no event would prove nothing
    unique = list({e.event_id: e for e in reversed(expected)}.values())
    assert summary.accepted == len(unique) and summary.accepted + summary.duplicates == len(expected)
    assert sorted(publisher.events(), key=lambda e: e.event_id) == sorted(unique, key=lambda e: e.event_id)
    for _, value in publisher.envelopes:
        events = decode_message(value).events
        assert value == encode_envelope(events)
        assert encode_records_envelope([event_record(e) for e in events]) == value


def test_a_stopped_ingest_publishes_and_reports_what_it_accepted_before_the_stop() -> None:
    lines = [event_line(i) for i in range(3000)] + ["{broken"] * 300
    data = ("\n".join(lines) + "\n").encode()
    publisher = RecordingPublisher()
    with pytest.raises(UpstreamBroken) as stopped:
        ingest(io.BytesIO(data), "lde-jsonl", publisher, "f.jsonl", "Europe/London", block_bytes=4096)
    summary = stopped.value.summary
    assert summary is not None and summary.invalid == len(publisher.dead_letters) > 0
    # Everything accepted before the block in which it stopped is published, and the summary says so.
    assert summary.accepted == len(publisher.events())
    assert 3000 - 4096 // len(lines[0]) <= summary.accepted <= 3000


def test_cli_dead_letters_are_labelled_for_the_service_and_others_are_not() -> None:
    from models.dead_letters import CLI_ORIGIN, ORIGIN_HEADER, cli_dead_letter_label, dead_letter_headers

    cli = [*dead_letter_headers("bad", "ezproxy", "f:line 3"), (ORIGIN_HEADER, CLI_ORIGIN)]
    assert cli_dead_letter_label(cli) == "cli:ezproxy"
    assert cli_dead_letter_label(dict(cli)) == "cli:ezproxy"
    odd = [*dead_letter_headers("bad", "made-up\u2603", "x"), (ORIGIN_HEADER, CLI_ORIGIN)]
    assert cli_dead_letter_label(odd) == "cli:other"  # a header value never becomes a new series
    assert cli_dead_letter_label(dead_letter_headers("bad", "http:events", "statement 1")) is None
    assert cli_dead_letter_label({"source_topic": b"lde.activity", "error": b"x"}) is None


def test_kafka_python_batches_use_the_compiled_crc32c_with_the_same_result() -> None:
    import os

    import kafka.record.default_records as builder
    from kafka.record._crc32c import crc as pure_python_crc32c

    from sinks.kafka import FAST_CRC32C

    assert FAST_CRC32C, "aiokafka's compiled CRC-32C is not in place: ingest falls back to ~7 MB/s"
    data = os.urandom(5000)
    assert builder.calc_crc32c(memoryview(data)) == pure_python_crc32c(data)
