"""Which partition a student's data lives on: Kafka's default partitioner (murmur2 of the key), so
upstream systems that publish keyed by student id with any standard Kafka client agree with LDE."""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2


@lru_cache(maxsize=1_000_000)
def partition_for(student_id: str, partitions: int) -> int:
    """The partition of a student id among `partitions` (same as Kafka's default for key=student_id)."""
    return (murmur2(student_id.encode()) & 0x7FFFFFFF) % partitions
