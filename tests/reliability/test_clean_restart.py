"""A clean stop and restart on a surviving broker: the successor recovers every student's state from
the activity changelog (written by the agent in producer batches) and the counts stay exact.

Unlike test_kill_restart, no member is killed, so Tansu's stall after a kill -9 does not apply; lost
or stale state would show as missing or doubled counts (the second half re-sends first-half events).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from models.faultload import compare
from ops.devtools.replay import free_port
from ops.runtime.embedded import EmbeddedBroker, wait_until
from ops.settings import Settings
from sinks.kafka import ensure_topics
from tests.reliability.test_kill_restart import Worker, activity_counts, ledger_events, publish

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_clean_restart_recovers_state_from_the_changelog(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=tmp_path, partitions=8)
    broker = EmbeddedBroker(settings)
    broker.start()
    worker = Worker(settings, tmp_path / "worker")
    try:
        ensure_topics(settings)
        events, truth = ledger_events(seed=9, count=12_000, students=400)
        publish(settings, events[: len(events) // 2])
        worker.start()
        assert wait_until(worker.caught_up, 180, 0.2), worker.log.read_text()[-2000:]
        worker.stop()
        publish(settings, events[len(events) // 2 :])
        worker.start()
        assert wait_until(worker.caught_up, 180, 0.2), worker.log.read_text()[-2000:]
        time.sleep(0.5)
    finally:
        worker.stop()
        broker.stop()

    counted = activity_counts(tmp_path / "worker")
    result = compare(truth, counted)
    assert (result.missing, result.duplicated) == (0, 0), result.wrong_keys
    assert sum(counted.values()) == sum(truth.values()) == 12_000
