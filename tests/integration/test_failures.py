"""Failure paths: a clear message instead of a traceback, and poison input dead-lettered with its
reason while the stream carries on."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from models.partitioning import partition_for
from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from streams.stopping import BATCH_FAILED_EXIT
from tests.integration.conftest import TERM_START, activity, make_run, roster_record
from tests.integration.test_restart_and_privacy import lde

pytestmark = pytest.mark.integration


def test_port_in_use_gives_a_clear_message(tmp_path: Path) -> None:
    harness = make_run(tmp_path / "lde")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", harness.settings.kafka_port))
        squatter.listen(1)
        result = lde(harness, "up")
    assert result.returncode == 2
    assert f"port {harness.settings.kafka_port} is in use" in result.stderr
    assert "LDE_KAFKA_BOOTSTRAP" in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_without_a_service_say_what_to_do(tmp_path: Path) -> None:
    harness = make_run(tmp_path / "lde")
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "student_id,programme_code,year_of_study,mode,status,start_date\n1,X,1,FT,active,2026-09-21\n"
    )
    result = lde(harness, "roster", "load", str(roster))
    assert result.returncode == 2
    assert "start the service with `lde up`" in result.stderr
    assert "Traceback" not in result.stderr
    listed = lde(harness, "alerts")
    assert listed.returncode == 0, listed.stderr
    assert "0 alerts, read directly from chDB (no service running)" in listed.stdout


def read_dead_letters(harness: EventTimeRun, expected: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = KafkaConsumer(bootstrap_servers=harness.settings.kafka_bootstrap)
    topic = harness.settings.topic("dead-letter")
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    out: list[tuple[bytes, dict[str, bytes]]] = []

    def collect() -> bool:
        for records in consumer.poll(timeout_ms=200).values():
            out.extend((r.value, dict(r.headers)) for r in records)
        return len(out) >= expected

    try:
        assert wait_until(collect, 30, 0), f"only {len(out)} dead letters"
    finally:
        consumer.close()
    return out


def test_poison_messages_are_dead_lettered_and_the_stream_continues(harness: EventTimeRun) -> None:
    settings = harness.settings
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    poison = [b"\x00\xff random bytes", b'{"events": "nope"}', b"null", b"x" * 200_000]
    for partition in range(settings.partitions):
        for value in poison:
            producer.send(settings.topic("activity"), value=value, partition=partition)
    producer.send(settings.topic("roster"), value=b'{"student_id": "z"}', partition=0)
    producer.send(settings.topic("alerts"), value=b"[]", partition=0)
    producer.flush()
    producer.close()
    # Valid input after the poison is still applied.
    harness.publish(
        roster=[roster_record("after")],
        events=[activity("ok-1", "after", "2026-10-01T10:00:00Z")],
    )
    assert harness.wait_events_applied(1)
    assert harness.activity("after") == {("2026-10-01", "vle"): 1}
    letters = read_dead_letters(harness, len(poison) * settings.partitions + 2)
    sources = sorted({h["source_topic"].decode() for _, h in letters})
    assert sources == sorted(settings.topic(t) for t in ("activity", "alerts", "roster"))
    for value, headers in letters:
        assert headers["error"], headers
        assert {"partition", "offset"} <= set(headers)
        assert len(value) <= settings.dead_letter_max_bytes
    huge = [h for v, h in letters if v.startswith(b"xxxx")]
    assert len(huge) == settings.partitions
    metrics = harness.client.text("/metrics")
    assert (
        f'lde_dead_letters_total{{topic="{settings.topic("activity")}"}} {4.0 * settings.partitions}'
        in metrics
    )


def test_an_event_in_the_year_2999_is_a_dead_letter_and_the_worker_goes_on(harness: EventTimeRun) -> None:
    """Issue 22: published straight to Kafka (past every entrance's checks), the event used to stop the
    worker with OverflowError on every start; now it is refused where the message is decoded."""
    settings = harness.settings
    partition = partition_for("y2999", settings.partitions)
    envelope = {
        "events": [
            {
                "event_id": "y-1",
                "student_id": "y2999",
                "source": "vle",
                "occurred_at": "2026-10-01T10:00:00Z",
            },
            {
                "event_id": "y-2",
                "student_id": "y2999",
                "source": "vle",
                "occurred_at": "2999-01-01T00:00:00Z",
            },
        ]
    }
    harness.publish(roster=[roster_record("y2999")])
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    producer.send(settings.topic("activity"), value=json.dumps(envelope).encode(), partition=partition)
    producer.flush()
    producer.close()
    harness.publish(events=[activity("y-3", "y2999", "2026-10-02T10:00:00Z")])
    assert harness.wait_events_applied(2)
    assert harness.activity("y2999") == {("2026-10-01", "vle"): 1, ("2026-10-02", "vle"): 1}
    [(_, headers)] = read_dead_letters(harness, 1)
    assert headers["event_index"] == b"1" and b"2149-01-01" in headers["error"]
    assert not harness.process.exited()


def test_lde_up_exits_non_zero_when_its_worker_stops_itself(tmp_path: Path) -> None:
    """Issue 22: a worker that stopped itself (here: a dead letter larger than the producer may send,
    so the batch cannot be stored) made `lde up` exit 0; now it exits with the worker's code, 4."""
    run = EventTimeRun(
        Settings(),
        tmp_path / "lde",
        evaluate_from=TERM_START,
        extra_env={"LDE_DEAD_LETTER_MAX_BYTES": "3000000"},
    )
    run.start()
    try:
        producer = KafkaProducer(bootstrap_servers=run.settings.kafka_bootstrap, max_request_size=8_388_608)
        producer.send(run.settings.topic("activity"), value=b"x" * 1_500_000, partition=0).get(30)
        producer.close()
        assert wait_until(run.process.exited, 90, 0.5), "the worker did not stop"
    finally:
        code = run.stop()
    assert code == BATCH_FAILED_EXIT
    assert "activity_batch_failed" in (tmp_path / "lde" / "service.log").read_text()
