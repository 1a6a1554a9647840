"""`lde backfill`'s first step: every input file read once, through the one reading loop of `lde
ingest` (its adapters, its invalid-share guard, its de-duplication), into envelopes sorted by local
day on disk (the spool), so that the term can then be judged day by day whatever order the files
came in (one export per source, each in its own order, late library and attendance records).

Each input file spools into a folder of its own: one file of envelopes per local day and, once the
input is read to its end, `done.json` with its counts. A crash leaves a folder without `done.json`,
which the next run clears and reads again (the judging, which takes most of the time, resumes day by
day from its checkpoint instead, see ops.runtime.backfill.judge).

An envelope is stored as a header (its partition, its length) and the bytes `lde ingest` would have
published: the judging step applies the same bytes with the same pure core as the activity agent.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from models.activity import local_days
from models.adapters import Invalid
from models.envelopes import EnvelopeBuilder, Message
from models.event_time import TimeWindow, accepting
from models.events import EventRecord
from models.timebuckets import zone
from ops.edge.ingest import (
    IngestSummary,
    InvalidShareGuard,
    RecentIds,
    adapter_for,
    decompressed,
    read_records,
    redacted_record,
)

#: Before each envelope in a day's spool file: its partition and its length in bytes.
ENVELOPE_HEADER = struct.Struct("<HI")
#: Day files a spool keeps open at once (a file of several years has a day file per day).
OPEN_DAY_FILES = 256
DONE = "done.json"


@dataclass(frozen=True)
class InputFile:
    """One file to backfill and its format (an adapter's name, as for `lde ingest --format`), or a
    piece of one (bytes `start` to `stop`, whole lines, the first numbered `first_line`)."""

    path: Path
    format: str
    options: dict[str, Any] | None = None
    start: int = 0
    stop: int | None = None
    first_line: int = 1

    def identity(self) -> dict[str, Any]:
        """What makes a checkpoint belong to this input: its path, format, size and modification time
        (and the piece)."""
        stat = self.path.stat()
        return {
            "path": str(self.path.resolve()),
            "format": self.format,
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "piece": [self.start, self.stop],
        }

    @property
    def size(self) -> int:
        return (self.path.stat().st_size if self.stop is None else self.stop) - self.start


#: Canonical JSONL files at least this large are read in pieces, one process each.
SPLIT_BYTES = 32 << 20


def pieces(item: InputFile, parts: int) -> list[InputFile]:
    """A canonical JSONL file (not gzip) of SPLIT_BYTES or more cut into `parts` pieces of whole lines,
    each with the number of its first line; any other file whole. Reading the file to count its lines
    runs at the disk's speed, a small part of validating them."""
    size = item.path.stat().st_size
    if parts < 2 or item.format != "lde-jsonl" or size < SPLIT_BYTES:
        return [item]
    with item.path.open("rb") as handle:
        if handle.read(2) == b"\x1f\x8b":
            return [item]
        cuts = [0]
        for k in range(1, parts):
            handle.seek(max(size * k // parts, cuts[-1]))
            handle.readline()  # to the start of the next whole line
            cuts.append(handle.tell())
        cuts.append(size)
        handle.seek(0)
        out, line = [], 1
        for start, stop in itertools.pairwise(cuts):
            if stop > start:
                out.append(InputFile(item.path, item.format, item.options, start, stop, line))
            remaining = stop - start
            while remaining > 0:
                block = handle.read(min(remaining, 8 << 20))
                line += block.count(b"\n")
                remaining -= len(block)
    return out


@dataclass
class SpooledFile:
    """What one input file gave: its counts and its events per local day (ordinal)."""

    accepted: int = 0
    duplicates: int = 0
    invalid: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    events_by_day: Counter[int] = field(default_factory=Counter)

    def to_json(self) -> str:
        return json.dumps(
            {
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "invalid": self.invalid,
                "skipped": dict(self.skipped),
                "events_by_day": {str(day): n for day, n in sorted(self.events_by_day.items())},
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SpooledFile:
        data = json.loads(text)
        return cls(
            data["accepted"],
            data["duplicates"],
            data["invalid"],
            Counter(data["skipped"]),
            Counter({int(day): n for day, n in data["events_by_day"].items()}),
        )


class DaySpool:
    """Accepted events, de-duplicated (as `lde ingest` does), into per-day envelope files.

    Each local day has its own envelope builder (models.envelopes), so a day's envelopes hold what
    `lde ingest` of that day's events alone would publish. Not thread-safe."""

    def __init__(
        self, folder: Path, partitions: int, max_events: int, timezone: str, ids: RecentIds | None = None
    ) -> None:
        self.folder = folder
        self.partitions = partitions
        self.max_events = max_events
        self.summary = IngestSummary()
        self.events_by_day: Counter[int] = Counter()
        self._ids = ids or RecentIds()
        self._day_of = local_days(zone(timezone)).of
        self._builders: dict[int, EnvelopeBuilder] = {}
        self._files: dict[int, BinaryIO] = {}

    def add(self, records: Iterable[EventRecord]) -> None:
        """Queue events (the ingest's EventSink), each to its local day's envelopes."""
        remember = self._ids.add
        day_of = self._day_of
        by_day: dict[int, list[EventRecord]] = {}
        duplicates = 0
        for record in records:
            if not remember(record["event_id"]):
                duplicates += 1
                continue
            day = day_of(record["occurred_at"])
            group = by_day.get(day)
            if group is None:
                by_day[day] = [record]
            else:
                group.append(record)
        self.summary.duplicates += duplicates
        for day, group in by_day.items():
            self.summary.accepted += len(group)
            self.events_by_day[day] += len(group)
            builder = self._builders.get(day)
            if builder is None:
                builder = self._builders[day] = EnvelopeBuilder(self.partitions, self.max_events)
            self._write(day, builder.add(group))

    def finish(self) -> None:
        """Write every day's last envelopes and close the files."""
        for day, builder in sorted(self._builders.items()):
            self._write(day, builder.finish())
        self._builders.clear()
        self._close_files()

    def _write(self, day: int, messages: list[Message]) -> None:
        if not messages:
            return
        handle = self._files.get(day)
        if handle is None:
            if len(self._files) >= OPEN_DAY_FILES:
                self._close_files()
            handle = self._files[day] = day_path(self.folder, day).open("ab")
        pack = ENVELOPE_HEADER.pack
        for partition, value in messages:
            handle.write(pack(partition, len(value)))
            handle.write(value)

    def _close_files(self) -> None:
        for handle in self._files.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        self._files.clear()


def day_path(folder: Path, day: int) -> Path:
    return folder / f"{day}.envelopes"


def read_day(folder: Path, day: int) -> Iterator[Message]:
    """The envelopes one input spooled for a local day, in the order they were written."""
    path = day_path(folder, day)
    if not path.exists():
        return
    data = path.read_bytes()
    position, size, unpack = 0, ENVELOPE_HEADER.size, ENVELOPE_HEADER.unpack_from
    while position < len(data):
        partition, length = unpack(data, position)
        position += size
        yield Message(partition, data[position : position + length])
        position += length


#: Called with each invalid record: the dead-letter line to keep (see `dead_letter_line`).
DeadLetterWriter = Callable[[dict[str, Any]], None]


def dead_letter_line(payload: bytes, reason: str, source: str, position: str) -> dict[str, Any]:
    """A dead letter as `lde backfill` keeps it (a line of its dead_letters.jsonl): the reason, where
    it came from, and what `lde ingest` would have put on the dead-letter topic."""
    return {"reason": reason, "source": source, "position": position, "payload": payload.decode()}


def spool_file(
    item: InputFile,
    folder: Path,
    *,
    partitions: int,
    max_events: int,
    timezone: str,
    window: TimeWindow,
    on_progress: Callable[[int, int], None] | None = None,
    guard: InvalidShareGuard | None = None,
) -> SpooledFile:
    """Read one input file into `folder` (cleared first), then mark it done. Returns its counts.

    Invalid records are dead-lettered with their reason and position (file:line) into the folder's
    dead_letters.jsonl, redacted as `lde ingest` redacts them; UpstreamBroken (from the guard) stops
    the backfill with the ingest's message. `on_progress` is told the bytes read and the events
    accepted so far."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    spool = DaySpool(folder, partitions, max_events, timezone)
    guard = guard or InvalidShareGuard()
    with (folder / "dead_letters.jsonl").open("w") as letters:

        def dead_letter(record: Invalid) -> None:
            spool.summary.invalid += 1
            line = dead_letter_line(
                redacted_record(record.raw), record.reason, item.format, f"{item.path}:{record.position}"
            )
            letters.write(json.dumps(line) + "\n")
            guard.observe(False)

        with item.path.open("rb") as raw, accepting(window):
            raw.seek(item.start)
            tell = None if on_progress is None else lambda at: on_progress(at, spool.summary.accepted)
            counted = io.BufferedReader(_Counting(raw, tell, item.size), buffer_size=1 << 20)
            whole = item.start == 0 and item.stop is None
            read_records(
                decompressed(counted) if whole else counted,
                adapter_for(item.format, item.options),
                item.format,
                timezone,
                guard,
                spool,
                dead_letter,
                first_line=item.first_line,
            )
        spool.finish()
    done = SpooledFile(
        spool.summary.accepted,
        spool.summary.duplicates,
        spool.summary.invalid,
        spool.summary.skipped,
        spool.events_by_day,
    )
    temporary = folder / (DONE + ".tmp")
    temporary.write_text(done.to_json())
    temporary.replace(folder / DONE)
    return done


def spooled(folder: Path) -> SpooledFile | None:
    """The counts of a folder spooled to its end, or None (never spooled, or cut short by a crash)."""
    marker = folder / DONE
    return SpooledFile.from_json(marker.read_text()) if marker.exists() else None


class _Counting(io.RawIOBase):
    """A binary file that tells how far it has been read (for the progress bar)."""

    def __init__(self, inner: IO[bytes], on_progress: Callable[[int], None] | None, limit: int) -> None:
        self.inner = inner
        self.on_progress = on_progress
        self.position = 0
        self.limit = limit  # bytes to read from where `inner` stands

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.inner.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = self.inner.tell() - self.position
        if whence == io.SEEK_SET:
            self.inner.seek(base + offset)
        else:
            self.inner.seek(offset, whence)
        self.position = self.inner.tell() - base
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(max(0, min(len(buffer), self.limit - self.position)))
        count = len(data)
        buffer[:count] = data
        self.position += count
        if self.on_progress is not None:
            self.on_progress(self.position)
        return count


#: The shared progress array of a reading process (set by `init_reader`): per task, the bytes read
#: and the events accepted, for the parent's progress bar. One per process, set once at its start.
_SHARED_PROGRESS: Any = None


def init_reader(progress: Any) -> None:
    """A reading process's initializer: where to report its progress."""
    global _SHARED_PROGRESS
    _SHARED_PROGRESS = progress


def spool_task(
    index: int,
    item: InputFile,
    folder: Path,
    partitions: int,
    max_events: int,
    timezone: str,
    window: TimeWindow,
) -> SpooledFile:
    """`spool_file` in a reading process, its progress in slot `index` of the shared array."""

    def tell(position: int, accepted: int) -> None:
        if _SHARED_PROGRESS is not None:
            _SHARED_PROGRESS[2 * index] = position
            _SHARED_PROGRESS[2 * index + 1] = accepted

    return spool_file(
        item,
        folder,
        partitions=partitions,
        max_events=max_events,
        timezone=timezone,
        window=window,
        on_progress=tell,
    )
