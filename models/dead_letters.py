"""The dead-letter topic's header schema, written and read in one place.

Every dead letter carries `error` (why it was refused), `source` (where it came from: a topic name, a
file format or `http:SOURCE`) and `position` (where in it: "partition 3 offset 120", "ezproxy.log
line 7", "statement 6"). A message that was read from Kafka also carries its place as numbers
(`source_topic`, `partition`, `offset`, and `event_index` for one event of an envelope) so a tool can
fetch the original; a command-line tool adds `origin: lde-cli` so the service counts it in /metrics;
the collector adds `request_id`.

Dead letters written before this schema came from the service's agents with only `error`,
`source_topic`, `partition`, `offset` (and `event_index`): `read_dead_letter` reads both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from models.adapters import ADAPTERS

#: A dead letter's `origin` header says it was written by a command-line tool (`lde ingest`, `lde roster
#: load`, `lde absences load`: separate processes), for the service to count it in /metrics; the
#: service counts its own and the collector's as it sends them.
ORIGIN_HEADER = "origin"
CLI_ORIGIN = b"lde-cli"
#: The `source` values such a dead letter may carry; others are counted as "cli:other", so odd headers
#: on the topic cannot multiply the metric's series.
CLI_SOURCES = frozenset(ADAPTERS) | {"roster-csv", "absences-csv"}
#: How much of the reason a header keeps (the payload itself is capped by the writer).
MAX_REASON_BYTES = 1000

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class KafkaPlace:
    """Where a refused message was read: its topic, partition and offset, and for one event of an
    envelope its index."""

    topic: str
    partition: int
    offset: int
    event_index: int | None = None

    def describe(self) -> str:
        place = f"partition {self.partition} offset {self.offset}"
        return place if self.event_index is None else f"{place} event {self.event_index}"


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    """A dead letter's headers, read back."""

    error: str
    source: str
    position: str
    origin: str | None = None
    place: KafkaPlace | None = None
    request_id: str | None = None


def dead_letter_headers(
    reason: str,
    source: str,
    position: str,
    *,
    origin: bytes | None = None,
    request_id: str | None = None,
) -> Headers:
    """The headers of a dead letter from outside Kafka (a file line, an HTTP request's record)."""
    headers = [
        ("error", reason.encode()[:MAX_REASON_BYTES]),
        ("source", source.encode()),
        ("position", position.encode()),
    ]
    if request_id is not None:
        headers.append(("request_id", request_id.encode()))
    if origin is not None:
        headers.append((ORIGIN_HEADER, origin))
    return headers


def kafka_dead_letter_headers(reason: str, place: KafkaPlace) -> Headers:
    """The headers of a dead letter for a message read from Kafka: the common three, and its place."""
    headers = dead_letter_headers(reason, place.topic, place.describe())
    headers += [
        ("source_topic", place.topic.encode()),
        ("partition", str(place.partition).encode()),
        ("offset", str(place.offset).encode()),
    ]
    if place.event_index is not None:
        headers.append(("event_index", str(place.event_index).encode()))
    return headers


def read_dead_letter(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> DeadLetterInfo:
    """A dead letter's headers in either schema (missing or undecodable values read as empty)."""
    found = dict(headers.items() if isinstance(headers, Mapping) else headers)

    def text(name: str) -> str | None:
        value = found.get(name)
        return None if value is None else bytes(value).decode("utf-8", "replace")

    place = None
    topic, partition, offset = text("source_topic"), text("partition"), text("offset")
    if topic is not None and partition is not None and offset is not None:
        try:
            index = text("event_index")
            place = KafkaPlace(topic, int(partition), int(offset), None if index is None else int(index))
        except ValueError:
            place = None
    source = text("source") or (topic or "")
    position = text("position") or (place.describe() if place is not None else "")
    return DeadLetterInfo(
        error=text("error") or "",
        source=source,
        position=position,
        origin=text(ORIGIN_HEADER),
        place=place,
        request_id=text("request_id"),
    )


def cli_dead_letter_label(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> str | None:
    """The lde_dead_letters_total `topic` label of a dead letter a command-line tool wrote
    ("cli:FORMAT", like the collector's "http:SOURCE"), or None for any other dead letter."""
    letter = read_dead_letter(headers)
    if letter.origin is None or letter.origin.encode("utf-8", "replace") != CLI_ORIGIN:
        return None
    return f"cli:{letter.source if letter.source in CLI_SOURCES else 'other'}"
