"""Outages against a ground-truth ledger, one worker (production mode, standalone broker, shared
redis-server): ClickHouse unreachable for 30 s, Redis stopped and killed, and a kill -9 during a
ClickHouse write (part of `make test`: each about a minute)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from models.faultload import generate
from ops.devtools.faultrun.cluster import Cluster
from ops.devtools.faultrun.processes import Worker
from ops.devtools.faultrun.scenarios import kill_in_clickhouse_write
from ops.devtools.faultrun.verdict import Report, clean_replay_alerts, verdict
from ops.runtime.embedded import wait_until
from sinks.faults import inject

pytestmark = [pytest.mark.integration]


def interrupted_run(
    tmp_path: Path, seed: int, days: int, pause: float, interrupt: Callable[[Cluster, Worker], None]
) -> Report:
    """One worker fed a seeded workload; once it has applied 300 events `interrupt` stops it
    somehow, then it is started again and the run is compared with the ledger when settled."""
    load = generate(seed=seed, students=120, days=days)
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        cluster.publish_roster(load)
        worker = cluster.add_worker(load.days[0])
        feeder = cluster.feed_in_background(load, pause=pause)
        assert wait_until(lambda: (worker.status() or {}).get("events_applied", 0) > 300, 60, 0.1)
        interrupt(cluster, worker)
        worker.start()
        feeder.join()
        assert cluster.wait_settled(load.days[-1], 150), cluster.describe()
        return verdict(cluster, load, 0.0, None)
    finally:
        cluster.stop()


def test_clickhouse_unreachable_for_30_seconds_loses_nothing(tmp_path: Path) -> None:
    load = generate(seed=30, students=120, days=6)
    cluster = Cluster(tmp_path)
    cluster.start()
    try:
        cluster.publish_roster(load)
        worker = cluster.add_worker(load.days[0])
        inject(worker.fault_file, "fail", 30)
        outage = time.monotonic()
        cluster.publish_days(load)
        saw_failing = wait_until(
            lambda: "activity_daily" in ((worker.status() or {}).get("sinks_failing") or []), 25, 0.2
        )
        ready = worker.client.get("/health/ready")  # the roster sink may fail first: wait for activity
        lagging = wait_until(lambda: ((worker.status() or {}).get("activity_lag") or 0) > 0, 25, 0.3)
        assert cluster.wait_settled(load.days[-1], 150), cluster.describe()
        recovered_after = time.monotonic() - outage
        report = verdict(cluster, load, 0.0, None)
        log = worker.tail(10_000_000)
    finally:
        cluster.stop()
    assert saw_failing and ready["ready"] is False and "activity_daily" in ready["sinks_failing"]
    assert lagging  # events waited while ClickHouse was down
    assert recovered_after >= 30
    assert "sink_write_failed sink=activity_daily" in log and "sink_recovered sink=activity_daily" in log
    assert worker.alive() is False  # stopped by the verdict, not crashed before it
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.line()
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.line()


def test_kill_9_during_a_clickhouse_write_then_restart(tmp_path: Path) -> None:
    """The riskiest moment: the counts are in ClickHouse, the state (and offset) is not."""

    def kill_mid_write(cluster: Cluster, worker: Worker) -> None:
        kill_in_clickhouse_write(worker)
        cluster.kills += 1

    report = interrupted_run(tmp_path, seed=31, days=6, pause=0.5, interrupt=kill_mid_write)
    assert report.kills == 1
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.line()
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.line()


def test_clean_stop_during_a_clickhouse_write_then_restart(tmp_path: Path) -> None:
    """SIGTERM while a batch is in flight (its ClickHouse write landed and stalls): Faust's batch
    iterator acks the unapplied batch when the agent is cancelled and the consumer commits on stop,
    so without streams.faust_compat.hold_back the restarted worker would start after it (state missing)."""

    def stop_mid_write(cluster: Cluster, worker: Worker) -> None:
        inject(worker.fault_file, "stall", 6)
        time.sleep(2.0)  # the next batch's write lands and stalls
        worker.stop()  # a clean stop with that batch in flight

    report = interrupted_run(tmp_path, seed=34, days=8, pause=1.0, interrupt=stop_mid_write)
    assert (report.clickhouse.missing, report.clickhouse.duplicated) == (0, 0), report.line()
    assert (report.state.missing, report.state.duplicated) == (0, 0), report.line()


@pytest.mark.reliability
def test_redis_stopped_and_killed_alerts_announced_exactly_once(tmp_path: Path) -> None:
    """SIGSTOP redis-server while alerts are judged, then SIGKILL and restart it (append-only file);
    every no_engagement alert of the clean replay is stored and announced exactly once."""
    load = generate(seed=32, students=150, days=12)
    expected = clean_replay_alerts(load, tmp_path / "replay")
    cluster = Cluster(tmp_path / "cluster")
    cluster.start()
    try:
        cluster.publish_roster(load)
        worker = cluster.add_worker(load.days[0])
        cluster.redis.pause()
        cluster.publish_days(load)
        time.sleep(15)
        cluster.redis.resume()
        time.sleep(3)
        cluster.redis.kill()
        time.sleep(5)
        cluster.redis.start()
        assert cluster.wait_settled(load.days[-1], 150), cluster.describe()
        assert worker.alive()
        report = verdict(cluster, load, 0.0, expected)
        announced = cluster.announcements()
        stored = cluster.redis_alert_ids()
    finally:
        cluster.stop()
    assert report.alerts_expected > 0
    assert (report.alerts_missing, report.alerts_extra) == ([], []), report.line()
    assert report.announced_twice == [], report.announced_twice
    assert set(announced) == stored
