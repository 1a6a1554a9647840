"""`lde ingest`: read a file (or stdin) in a named format, publish canonical events in envelopes.

Streaming: a file larger than memory works. A bad record costs only itself (it is dead-lettered with
the reason and its line); a guard stops the ingest when the invalid share says the upstream is broken.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import itertools
import json
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Protocol, cast

from models.adapters import ADAPTERS, Adapter, Invalid, Skipped
from models.envelopes import EnvelopeBuilder, Message
from models.events import EventRecord, event_record
from models.jsonl import JsonlChunk, read_jsonl_block, split_complete_lines
from sinks.kafka import Publisher


class UpstreamBroken(RuntimeError):
    """Too many invalid records in a row: most likely a broken upstream export, not one bad record.

    `summary` (set by `ingest`) counts what was published and dead-lettered before the stop."""

    summary: IngestSummary | None = None


@dataclass
class IngestSummary:
    accepted: int = 0
    duplicates: int = 0
    invalid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def lines(self) -> list[str]:
        out = [
            f"accepted:   {self.accepted}",
            f"duplicates: {self.duplicates}",
            f"skipped:    {sum(self.skipped.values())}",
        ]
        out += [f"  {reason}: {n}" for reason, n in sorted(self.skipped.items())]
        out.append(f"invalid:    {self.invalid} (sent to the dead-letter topic)")
        return out


@dataclass
class InvalidShareGuard:
    """Stops when more than `limit` of the last `window` records were invalid (once `minimum` seen)."""

    limit: float = 0.05
    window: int = 1000
    minimum: int = 200
    _recent: deque[bool] = field(default_factory=deque)
    _bad: int = 0

    def observe(self, valid: bool) -> None:
        self._recent.append(valid)
        if not valid:
            self._bad += 1
        if len(self._recent) > self.window and not self._recent.popleft():
            self._bad -= 1
        if len(self._recent) >= self.minimum:
            self._check()

    def observe_valid(self, count: int) -> None:
        """observe(True) `count` times, in time bounded by the window rather than by `count` (a block of
        thousands of valid lines is the everyday case).

        Valid records only ever lower the share once the sample is big enough, so the one moment that
        can stop the ingest is the sample reaching `minimum`, with the invalid records seen so far.
        """
        if count <= 0:
            return
        before = len(self._recent)
        if before < self.minimum <= min(before + count, self.window):
            self._check(self._bad, self.minimum)
        if count >= self.window:
            self._recent.clear()
            self._bad = 0
            self._recent.extend(itertools.repeat(True, self.window))
            return
        for _ in range(max(before + count - self.window, 0)):
            if not self._recent.popleft():
                self._bad -= 1
        self._recent.extend(itertools.repeat(True, count))

    def _check(self, bad: int | None = None, seen: int | None = None) -> None:
        bad = self._bad if bad is None else bad
        seen = len(self._recent) if seen is None else seen
        if bad / seen > self.limit:
            raise UpstreamBroken(
                f"{bad} of the last {seen} records were invalid "
                f"(limit {self.limit:.0%}): the upstream export looks broken; fix it and ingest again "
                "(records already accepted are de-duplicated when re-sent)"
            )


class RecentIds:
    """The event ids of the last one to two million accepted events, to publish a repeated event once.

    Bounded, so a file larger than memory still streams: two generations of at most `capacity` ids
    each (Python's 64-bit hash of the id, which is enough within one run). A repeat further back than
    that is published again and counted as accepted; the stream's own de-duplication (exact, per
    student and day) then drops it, so it is still counted once.
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._current: set[int] = set()
        self._previous: set[int] = set()

    def add(self, event_id: str) -> bool:
        """Remember an id; False when it was already there (a duplicate)."""
        mark = hash(event_id)
        if mark in self._current or mark in self._previous:
            return False
        self._current.add(mark)
        if len(self._current) >= self.capacity:
            self._previous, self._current = self._current, set()
        return True


class EventSink(Protocol):
    """Where `read_records` puts the accepted events (in file order) and counts what it skipped:
    the ingest's envelopes to Kafka, or `lde backfill`'s day spool."""

    summary: IngestSummary

    def add(self, records: Iterable[EventRecord]) -> None: ...


class _Envelopes:
    """Accepted events, de-duplicated, through the one envelope builder (models.envelopes) to the
    publisher: a partition's envelope goes as soon as it is full."""

    def __init__(self, publisher: Publisher, summary: IngestSummary, ids: RecentIds) -> None:
        self.publisher = publisher
        self.summary = summary
        self.ids = ids
        self.builder = EnvelopeBuilder(publisher.partitions, publisher.settings.envelope_max_events)

    def add(self, records: Iterable[EventRecord]) -> None:
        """De-duplicate and queue events, sending the envelopes that filled."""
        remember = self.ids.add
        fresh: list[EventRecord] = []
        duplicates = 0
        for record in records:
            if remember(record["event_id"]):
                fresh.append(record)
            else:
                duplicates += 1
        self.summary.duplicates += duplicates
        self.summary.accepted += len(fresh)
        self._send(self.builder.add(fresh))

    def flush(self) -> None:
        self._send(self.builder.finish())

    def _send(self, messages: list[Message]) -> None:
        for partition, value in messages:
            self.publisher.send_envelope(partition, value)
        self.summary.messages += len(messages)


def adapter_for(adapter_name: str, options: Mapping[str, Any] | None = None) -> Adapter:
    """The named format's adapter, with the format's own keywords bound; UnknownFormat if none."""
    adapter = ADAPTERS.get(adapter_name)
    if adapter is None:
        raise UnknownFormat(adapter_name)
    if options:
        adapter = cast(Adapter, functools.partial(adapter, **options))
    return adapter


#: How much of a file `lde ingest --format lde-jsonl` reads and validates at a time.
BLOCK_BYTES = 1 << 20


def ingest(
    source: IO[bytes] | Iterable[str],
    adapter_name: str,
    publisher: Publisher,
    name: str,
    timezone: str,
    guard: InvalidShareGuard | None = None,
    *,
    block_bytes: int = BLOCK_BYTES,
    ids: RecentIds | None = None,
    options: Mapping[str, Any] | None = None,
) -> IngestSummary:
    """Adapt a stream in a named format and publish the events in envelopes.

    `source` is a binary file (read as UTF-8, invalid bytes replaced, lines split like newline="") or
    text lines. Skipped records (a logoff, an asset request, a non-student) are counted with their
    reason; invalid ones go to the dead-letter topic with the error, the format and the position.
    Canonical JSONL from a binary file takes the bulk path (models.jsonl): same outcome, in blocks.
    `options` are the format's own keywords (canvas-web-logs: `users`, the user map).
    """
    adapter = adapter_for(adapter_name, options)
    summary = IngestSummary()
    guard = guard or InvalidShareGuard()
    out = _Envelopes(publisher, summary, ids or RecentIds())

    def dead_letter(record: Invalid) -> None:
        summary.invalid += 1
        publisher.send_dead_letter(
            redacted_record(record.raw), record.reason, adapter_name, f"{name}:{record.position}"
        )
        guard.observe(False)

    try:
        read_records(source, adapter, adapter_name, timezone, guard, out, dead_letter, block_bytes)
    except UpstreamBroken as error:
        out.flush()  # what was accepted before the stop is published, as its summary says
        publisher.flush()
        error.summary = summary
        raise
    out.flush()
    publisher.flush()
    return summary


def read_records(
    source: IO[bytes] | Iterable[str],
    adapter: Adapter,
    adapter_name: str,
    timezone: str,
    guard: InvalidShareGuard,
    out: EventSink,
    dead_letter: Callable[[Invalid], None],
    block_bytes: int = BLOCK_BYTES,
    first_line: int = 1,
) -> None:
    """Read the source, counting and dead-lettering as it goes, and queue the accepted events in `out`
    (the one reading loop of `lde ingest` and `lde backfill`). Raises UpstreamBroken from the guard.
    `first_line` numbers the source's first line (canonical JSONL read from part-way into a file)."""
    summary = out.summary
    binary = _binary(source)
    if binary is not None and adapter_name == "lde-jsonl":
        for chunk in _jsonl_chunks(binary, block_bytes, first_line):
            done = 0
            for valid_before, bad in chunk.invalid:
                guard.observe_valid(valid_before - done)
                done = valid_before
                dead_letter(bad)
            guard.observe_valid(len(chunk.events) - done)
            out.add(chunk.events)
    else:
        text = _text(binary) if binary is not None else cast(Iterable[str], source)
        # Valid records are handed to the guard and the envelopes in runs: the same order of
        # observations as one at a time, for less per-record work.
        valid = 0
        parsed: list[EventRecord] = []
        try:
            for record in adapter(text, timezone=timezone):
                if isinstance(record, Invalid):
                    guard.observe_valid(valid)
                    valid = 0
                    dead_letter(record)
                    continue
                valid += 1
                if isinstance(record, Skipped):
                    summary.skipped[record.reason] += 1
                else:
                    parsed.append(event_record(record.event))
                if valid >= 1000:
                    guard.observe_valid(valid)
                    valid = 0
                    out.add(parsed)
                    parsed = []
            guard.observe_valid(valid)
            out.add(parsed)
        finally:
            if isinstance(text, io.TextIOWrapper):
                text.detach()  # the caller owns (and closes) the binary file


def _binary(source: IO[bytes] | Iterable[str]) -> IO[bytes] | None:
    """The source as a binary file, or None when it is text (a text file, a list of lines)."""
    if isinstance(source, io.TextIOBase) or not hasattr(source, "read"):
        return None
    return cast(IO[bytes], source)


def _text(binary: IO[bytes]) -> io.TextIOWrapper:
    """Text lines of a binary file, as `lde ingest` has always opened files."""
    return io.TextIOWrapper(cast(BinaryIO, binary), encoding="utf-8", errors="replace", newline="")


def _jsonl_chunks(binary: IO[bytes], block_bytes: int, first_line: int = 1) -> Iterator[JsonlChunk]:
    """Validated blocks of whole lines, read `block_bytes` at a time (memory stays bounded by it and
    the longest line). read1 returns what a pipe has, so stdin is not held back until a block fills."""
    read = getattr(binary, "read1", binary.read)
    rest = b""
    while True:
        data = read(block_bytes)
        final = not data
        block, rest = split_complete_lines(rest + data if rest else data, final)
        if block:
            chunk = read_jsonl_block(block, first_line)
            first_line += chunk.lines
            yield chunk
        if final:
            return


def decompressed(binary: IO[bytes]) -> IO[bytes]:
    """The file itself, or its content when it is gzip (the DAP client downloads `.json.gz` / `.csv.gz`
    parts): told by the magic bytes, so a name need not say it. Needs a seekable file (stdin is not
    checked: pipe it through `gunzip`)."""
    if not binary.seekable():
        return binary
    start = binary.tell()
    magic = binary.read(2)
    binary.seek(start)
    return cast(IO[bytes], gzip.GzipFile(fileobj=binary, mode="rb")) if magic == b"\x1f\x8b" else binary


def redacted_record(raw: str) -> bytes:
    """What a dead letter keeps of an upstream record: its size and digest, never its text.

    An invalid upstream record may still hold a title or URL, and nothing private may pass the edge;
    the file and line (in the headers) identify it for the operator, who fixes and re-sends the file
    (re-sent records are de-duplicated).
    """
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return json.dumps({"redacted": True, "bytes": len(raw.encode()), "sha256": digest}).encode()


class UnknownFormat(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown format {name!r}; known: {', '.join(sorted(ADAPTERS))}")
