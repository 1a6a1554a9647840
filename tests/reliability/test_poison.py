"""Poison messages on every topic LDE consumes: all dead-lettered with reasons, no agent crash, and
the stream goes on counting exactly (part of `make test`: no kills, about a minute)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from models.faultload import generate
from ops.devtools.faultrun.cluster import Cluster
from ops.devtools.faultrun.verdict import verdict
from ops.settings import Settings

pytestmark = [pytest.mark.integration]

#: The topics whose agents decode what they read (dead-letter: the agent only counts CLI headers).
DECODED = ("activity", "roster", "absences", "alerts")


def poison_payloads(rng: random.Random) -> dict[str, bytes | None]:
    return {
        "random bytes": bytes(rng.randrange(256) for _ in range(300)),
        "not json": b'{"events": [{"event_id": "x", ',
        "wrong json": b'{"student_id": 5, "events": "none", "absences": 7}',
        "json list": b"[1, 2, 3]",
        "wrong event": b'{"events": [{"event_id": 1, "student_id": null, "source": "moon"}]}',
        "huge": b'{"events": [' + b"9" * 1_500_000 + b"]}",
        "null": None,
        # issue 22: valid JSON of the right shape whose values once crashed the batch (OverflowError)
        "year 2999": b'{"events": [{"event_id": "y", "student_id": "NOSUCH01", "source": "vle", '
        b'"occurred_at": "2999-01-01T00:00:00Z"}]}',
        "negative count": b'{"restore": [{"student_id": "NOSUCH01", "days": {"740000": [-1]}}]}',
        "wide row": b'{"restore": [{"student_id": "NOSUCH01", "days": {"740000": [1,1,1,1,1,1,1,1,1,1]}}]}',
        "watermark 9999": b'{"watermark": "9999-12-31T00:00:00Z"}',
    }


def send_poison(settings: Settings, seed: int) -> dict[tuple[str, int, int], str]:
    """Every payload to every decoded topic, on a random partition; returns where each landed."""
    rng = random.Random(seed)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=8_388_608)
    sent: dict[tuple[str, int, int], str] = {}
    try:
        for name in DECODED:
            for kind, payload in poison_payloads(rng).items():
                partition = rng.randrange(settings.partitions)
                key = b"NOSUCH01"  # a null value needs a key; on roster/absences that is a tombstone
                meta = producer.send(settings.topic(name), key=key, value=payload, partition=partition).get(
                    30
                )
                if payload is None and name in ("roster", "absences"):
                    continue  # a tombstone for an unknown student: nothing to erase, nothing to report
                sent[(settings.topic(name), partition, meta.offset)] = kind
        # the dead-letter topic's own agent reads headers only: odd headers must not crash it either
        producer.send(settings.topic("dead-letter"), value=b"\x00\xff", headers=[("origin", b"\xff")]).get(30)
        producer.send(settings.topic("dead-letter"), key=b"k", value=None, headers=[("source", b"")]).get(30)
    finally:
        producer.close()
    return sent


def dead_letters(settings: Settings) -> list[dict[str, str]]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    topic = settings.topic("dead-letter")
    found: list[dict[str, str]] = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        quiet = 0
        while quiet < 5:
            batch = consumer.poll(timeout_ms=300)
            quiet = quiet + 1 if not batch else 0
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode(errors="replace") for k, v in record.headers or []}
                    if "source_topic" in headers:  # the service's own (not the two sent above)
                        found.append(headers)
    finally:
        consumer.close()
    return found


def test_poison_on_every_topic_is_dead_lettered_and_the_stream_goes_on(tmp_path: Path) -> None:
    load = generate(seed=77, students=60, days=3)
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        cluster.publish_roster(load)
        worker = cluster.add_worker(load.days[0])
        sent = send_poison(cluster.settings, seed=77)
        cluster.publish_days(load)
        assert cluster.wait_settled(load.days[-1], 150), cluster.describe()
        letters = dead_letters(cluster.settings)
        log = worker.tail(10_000_000)
        report = verdict(cluster, load, 0.0, None)
    finally:
        cluster.stop()

    where = {(d["source_topic"], int(d["partition"]), int(d["offset"])): d["error"] for d in letters}
    undead = {place: kind for place, kind in sent.items() if place not in where}
    assert not undead, f"poison not dead-lettered: {undead}"
    assert all(where[place] for place in sent), "a dead letter without a reason"
    assert "crashed" not in log.lower() and "Traceback" not in log, log[-3000:]
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.line()
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.line()
