"""The roster and absences agents: each message is a student's whole record (absolute, so re-sending
is harmless) or a tombstone (the student was erased), kept in a table and written to ClickHouse."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from faust.types import EventT, StreamT
from pydantic import ValidationError

from models.events import describe_validation_error
from models.roster import Absence, RosterRecord
from ops.metrics import Metrics
from ops.settings import Settings
from sinks.retry import ClickHouseSink
from streams import faust_compat
from streams.batch import DeadLetter
from streams.dead_letters import DeadLetterSender
from streams.offsets import ContiguityShell
from streams.progress import Progress

_Item = TypeVar("_Item")

#: A message value -> (table key, table value, what the sink writes). Raises ValueError, KeyError or
#: TypeError (pydantic's ValidationError is a ValueError) on a record it cannot use.
Decoder = Callable[[bytes], tuple[str, Any, _Item]]


def decode_roster(value: bytes) -> tuple[str, Any, RosterRecord]:
    record = RosterRecord.model_validate_json(value)
    return record.student_id, record.model_dump(mode="json"), record


def decode_absences(value: bytes) -> tuple[str, Any, list[Absence]]:
    payload = json.loads(value)
    absences = [Absence.model_validate(a) for a in payload["absences"]]
    return str(payload["student_id"]), [a.model_dump(mode="json") for a in absences], absences


def apply_keyed(
    events: Sequence[EventT],
    topic: str,
    table: Any,
    decode: Decoder[_Item],
    progress: Progress,
) -> tuple[list[_Item], list[DeadLetter]]:
    """Apply a batch of keyed records to `table`; returns what to write and what to dead-letter."""
    items: list[_Item] = []
    letters: list[DeadLetter] = []
    for event in events:
        message = event.message
        progress.record(topic, message.partition, message.offset)
        with faust_compat.table_write_context(event):
            if event.value is None and message.key:
                table.pop(message.key.decode(), None)
                continue
            try:
                key, stored, item = decode(event.value or b"")
            except (ValueError, KeyError, TypeError) as error:
                reason = (
                    describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
                )
                letters.append(
                    DeadLetter(
                        f"invalid {topic} message: {reason}"[:500],
                        message.partition,
                        message.offset,
                        event.value or b"",
                    )
                )
                continue
            table[key] = stored
        items.append(item)
    return items, letters


class KeyedRecordsAgent(Generic[_Item]):
    """One keyed topic (roster or absences) into its table and its ClickHouse table."""

    def __init__(
        self,
        *,
        name: str,
        topic: str,
        settings: Settings,
        table: Any,
        decode: Decoder[_Item],
        write: Callable[[list[Any]], Any],
        flatten: Callable[[list[_Item]], list[Any]],
        sink: ClickHouseSink,
        guard: ContiguityShell,
        dead_letters: DeadLetterSender,
        progress: Progress,
        metrics: Metrics,
    ) -> None:
        self.name = name  # the sink's name: "students" or "absences"
        self.settings = settings
        self.topic = topic
        self.table = table
        self.decode = decode
        self.write = write
        self.flatten = flatten
        self.sink = sink
        self.guard = guard
        self.dead_letters = dead_letters
        self.progress = progress
        self.metrics = metrics

    async def run(self, stream: StreamT) -> None:
        s = self.settings
        async for batch in faust_compat.batches(stream, s.batch_max_messages, s.batch_max_seconds):
            try:
                events = await self.guard.contiguous(batch, time.monotonic())
                items, letters = apply_keyed(events, self.topic, self.table, self.decode, self.progress)
                rows = self.flatten(items)
                if rows:
                    await self.sink.write(self.name, self.write, rows, rows=len(rows))
                await self.dead_letters.send(self.topic, letters)
            finally:
                self.guard.done(time.monotonic())
            self.metrics.messages_processed.labels(topic=self.topic).inc(len(events))
