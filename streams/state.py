"""The activity table's state: its changelog codec, its value type, and the batched changelog writer.

Each student's recent activity is one table value (models.activity.StudentActivity), written once per
batch that touches the student; the record format is in docs/DATA_MODEL.md.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import faust
from faust.serializers import codecs

from models.activity import StudentActivity
from models.partitioning import partition_for
from streams import faust_compat
from streams.batch import BatchOutcome

STATE_CODEC = "lde-student-state"


class StudentStateCodec(codecs.Codec):
    """Changelog encoding of per-student state: compact binary, not JSON (written once per student
    per batch, so its size and speed are on the hot path)."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.to_bytes()  # type: ignore[no-any-return]

    def _loads(self, s: bytes) -> Any:
        return StudentActivity.from_bytes(s)


def register_codec() -> None:
    """Make the codec known to Faust by name (idempotent; called when the app is built)."""
    codecs.register(STATE_CODEC, StudentStateCodec())


class StudentStateValue:
    """The activity table's value type, for Faust's sake: Faust takes a table's codec from its value
    type's `_options.serializer`, for the changelog writes and for recovery alike."""

    class _options:
        serializer = STATE_CODEC

    @classmethod
    def from_data(cls, data: Any, preferred_type: Any = None) -> Any:
        """Faust hands a decoded value to its type: the codec already built the StudentActivity."""
        return data


def changelog_key(student_id: str) -> bytes:
    """A student's activity-table changelog key: the bytes Faust's "json" key codec writes for it
    (faust.utils.json.dumps is the standard library's json.dumps when orjson is absent), so Faust's
    recovery reads it back as the same str key."""
    return json.dumps(student_id).encode()


class ChangelogWriter:
    """Stores a batch's student states in the activity table and writes their changelog records."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table

    def state(self, student_id: str) -> StudentActivity | None:
        """A student's state (the store's dict: Table.get runs Faust's sensors per key, once per
        student per batch)."""
        value: StudentActivity | None = faust_compat.table_dict(self.table).get(student_id)
        return value

    def applied_offsets(self, partitions: int) -> dict[int, int]:
        """The last message offset each partition's students' states applied (the highest of its
        students'): where a new owner of the partition must continue from at the latest."""
        applied: dict[int, int] = {}
        for student_id, state in list(faust_compat.table_dict(self.table).items()):
            partition = partition_for(student_id, partitions)
            if state.offset > applied.get(partition, -1):
                applied[partition] = state.offset
        return applied

    async def write(self, outcome: BatchOutcome) -> None:
        """The same records Faust's table writes (key serialised by the table's JSON codec, value by
        StudentStateCodec, on the partition of the student's events), but one producer batch per
        partition instead of one send_soon per student: Faust's per-record send path cost several
        times the record itself. Erasures go first, as tombstones in the same batches, so a student
        erased and active again within one batch keeps the new state after recovery. Delivery is
        awaited, so state is durable before the agent takes the next batch (and its offsets commit).
        """
        plain = faust_compat.table_dict(self.table)
        records: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for student_id, partition in outcome.forget.items():
            plain.pop(student_id, None)
            records[partition].append((changelog_key(student_id), None))
        partition_of = outcome.partition_of
        for student_id, state in outcome.states.items():
            plain[student_id] = state
            records[partition_of[student_id]].append((changelog_key(student_id), state.to_bytes()))
        if not records:
            return
        # Faust's producer is aiokafka's underneath; its batches take the configured batch size
        # (LDE_KAFKA_PRODUCER_MAX_BATCH_BYTES=1 still means one record per batch).
        producer = faust_compat.raw_producer(self.app)
        topic = self.table.changelog_topic.get_topic_name()
        deliveries = []
        for partition, items in records.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise RuntimeError("an empty producer batch refused a changelog record")
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*deliveries)
