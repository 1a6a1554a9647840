"""`make bench` (`python -m ops.bench`): speed and memory figures, measured in one run on one broker,
written to BENCHMARKS.md. Timing never lives in tests; it lives here.

Every figure is measured on this machine in the same run: the full LDE pipeline (a real `lde up` worker
process: decode, validate, de-duplicate, bucket, state update, changelog, ClickHouse aggregates), the
two Faust reference points (a naive one-event-per-message design with a tumbling windowed table, and a
no-op agent), the evaluator sweep, state memory, the ClickHouse sink, ingest and the daily job.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaProducer
from numpy.typing import NDArray

from models.activity import ROW_WIDTH, StudentActivity
from models.alerts import Alert
from models.engagement import EngagementSettings
from models.events import SOURCES, ActivityEvent
from models.partitioning import partition_for
from models.roster import RosterRecord, StudentStatus, StudyMode
from models.rules import RuleSettings
from models.timebuckets import zone
from ops.api import ServiceClient
from ops.embedded import EmbeddedBroker
from ops.publish import ensure_topics
from ops.replay import free_port
from ops.settings import Settings
from streams.evaluator import Evaluator, StudentView

SOURCE_WEIGHTS = [60, 1, 12, 3, 10, 5, 9]  # vle, library, eresource, print, pc_logon, remote, attendance
START = date(2026, 10, 5)


@dataclass
class Results:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (measure, value, note)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, value: str, note: str = "") -> None:
        print(f"  {measure}: {value} {note}", flush=True)
        self.rows.append((measure, value, note))


def synthetic_events(count: int, students: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Canonical events as dicts (fast to make in bulk), spread over two weeks of local days."""
    rng = random.Random(seed)
    sources = [s.value for s in SOURCES]
    for i in range(count):
        day = START + timedelta(days=rng.randrange(14))
        moment = datetime(day.year, day.month, day.day, 8 + rng.randrange(14), rng.randrange(60), tzinfo=UTC)
        source = rng.choices(sources, SOURCE_WEIGHTS)[0]
        event: dict[str, Any] = {
            "event_id": f"bench-{seed}-{i}",
            "student_id": f"B{rng.randrange(students):07d}",
            "source": source,
            "occurred_at": moment.isoformat(),
        }
        if source == "attendance":
            event["attributes"] = {"status": "present" if rng.random() < 0.8 else "absent"}
        yield event


def publish_raw(settings: Settings, events: list[dict[str, Any]], envelope: int, topic: str) -> float:
    """Publish events (envelopes of `envelope` events, or single events when 1); returns seconds."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=20,
        batch_size=1_048_576,
        acks=1,
        max_request_size=8_388_608,
    )
    started = time.perf_counter()
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        groups[partition_for(event["student_id"], settings.partitions)].append(event)
    for partition, group in groups.items():
        if envelope == 1:
            for event in group:
                producer.send(topic, json.dumps(event).encode(), partition=partition)
        else:
            for i in range(0, len(group), envelope):
                producer.send(
                    topic, json.dumps({"events": group[i : i + envelope]}).encode(), partition=partition
                )
    producer.flush()
    producer.close()
    return time.perf_counter() - started


#: The steady-state window: events/s between these fractions of the run, so that start-up (consumer
#: group join, first fetches, the first ClickHouse insert) and the ragged tail (partial batches) do not
#: count. Both ends fall on batch boundaries, so the window holds whole batches.
STEADY_FROM, STEADY_TO = 0.2, 0.9


@dataclass(frozen=True)
class Rate:
    """A consumer's throughput: steady state (headline) and first-to-last event (for comparison)."""

    steady: float
    overall: float
    startup: float = 0.0  # seconds from process start to the first applied event

    def note(self) -> str:
        start = f"; first event after {self.startup:.0f} s" if self.startup else ""
        return (
            f"steady state ({STEADY_FROM:.0%}-{STEADY_TO:.0%} of the run); "
            f"first-to-last {self.overall:,.0f}/s{start}"
        )


def steady_rate(samples: list[tuple[float, int]], expected: int) -> Rate:
    """Rates from (time, events so far) samples: the steady state between STEADY_FROM and STEADY_TO of
    `expected` (crossing times interpolated between samples), and first to last event."""

    def crossing(target: float) -> float:
        for (t1, n1), (t2, n2) in itertools.pairwise(samples):
            if n1 < target <= n2:
                return t1 + (t2 - t1) * (target - n1) / (n2 - n1)
        return samples[0][0] if samples[0][1] >= target else samples[-1][0]

    first = next((t, n) for t, n in samples if n > 0)
    last = samples[-1]
    overall = (last[1] - first[1]) / max(last[0] - first[0], 1e-6)
    start, end = crossing(STEADY_FROM * expected), crossing(STEADY_TO * expected)
    steady = (STEADY_TO - STEADY_FROM) * expected / max(end - start, 1e-6)
    return Rate(steady, overall)


def run_worker(settings: Settings, work: Path, prefix: str, expected: int) -> Rate:
    """Start a real `lde up` worker on pre-published input and sample its applied-event count."""
    port = free_port()
    env = {
        **os.environ,
        "LDE_MODE": "production",
        "LDE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LDE_TOPIC_PREFIX": prefix,
        "LDE_APP_ID": prefix.strip("."),
        "LDE_DATA_DIR": str(work / prefix.strip(".")),
        "LDE_WEB_PORT": str(port),
        "LDE_CLOCK": "event",
        "LDE_PARTITIONS": str(settings.partitions),
    }
    log = (work / f"{prefix.strip('.')}.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=env, stdout=log, stderr=log)
    # A status request waits behind a batch being processed: a generous timeout, and a failed poll
    # keeps the last count (it is not a zero).
    client = ServiceClient(settings.model_copy(update={"web_port": port}), timeout=10)
    samples: list[tuple[float, int]] = []
    applied = 0
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                applied = int(client.get("/v1/status")["events_applied"])
            samples.append((time.perf_counter(), applied))
            if applied >= expected:
                rate = steady_rate(samples, expected)
                first = next(t for t, n in samples if n > 0)
                return Rate(rate.steady, rate.overall, first - started)
            if process.poll() is not None:
                raise RuntimeError(f"bench worker exited; see {log.name}")
            time.sleep(0.1)
        raise RuntimeError("bench worker did not finish in 15 minutes")
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def run_reference(kind: str, settings: Settings, topic: str, expected: int, work: Path) -> Rate:
    """Run a reference Faust app (ops.bench_apps) on the same input; same steady-state window."""
    with (work / f"{kind}.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.bench_apps",
                kind,
                settings.kafka_bootstrap,
                topic,
                str(expected),
                str(work / f"ref-{kind}"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if line.startswith("DONE"):
                    _, n, seconds, steady_seconds = line.split()
                    span = (STEADY_TO - STEADY_FROM) * int(n)
                    return Rate(span / float(steady_seconds), int(n) / float(seconds))
            raise RuntimeError(f"{kind} reference app ended early; see {log.name}")
        finally:
            process.terminate()
            process.wait(30)


def bench_pipeline(
    results: Results, settings: Settings, work: Path, events_envelope: int, events_single: int
) -> None:
    batch = (
        f"batches of up to {os.environ.get('LDE_BATCH_MAX_MESSAGES', '500')} messages "
        f"within {os.environ.get('LDE_BATCH_MAX_SECONDS', '0.25')} s"
    )
    events = list(synthetic_events(events_envelope, students=20_000))
    env_settings = settings.model_copy(update={"topic_prefix": "benchenv."})
    ensure_topics(env_settings)
    seconds = publish_raw(env_settings, events, 100, env_settings.topic("activity"))
    results.notes.append(
        f"published {len(events):,} events for 20,000 students in envelopes of 100 in {seconds:.1f} s "
        f"(kafka-python); the worker ran with {batch}"
    )
    envelope = run_worker(settings, work, "benchenv.", len(events))
    results.add(
        f"pipeline, envelopes of 100 events ({len(events):,} events)",
        f"{envelope.steady:,.0f} events/s",
        f"one worker process; {envelope.note()}",
    )

    single = events[:events_single]
    one_settings = settings.model_copy(update={"topic_prefix": "benchone."})
    ensure_topics(one_settings)
    publish_raw(one_settings, single, 1, one_settings.topic("activity"))
    one = run_worker(settings, work, "benchone.", len(single))
    results.add(
        f"pipeline, one event per message ({len(single):,} messages)",
        f"{one.steady:,.0f} events/s",
        f"one worker process; {one.note()}",
    )

    naive = run_reference("naive", settings, one_settings.topic("activity"), len(single), work)
    results.add(
        "naive Faust (one event/message, tumbling table)",
        f"{naive.steady:,.0f} events/s",
        f"reference; {naive.note()}",
    )
    noop = run_reference("noop", settings, one_settings.topic("activity"), len(single), work)
    results.add("no-op Faust agent", f"{noop.steady:,.0f} messages/s", f"reference; {noop.note()}")
    results.add("envelopes vs naive", f"{envelope.steady / naive.steady:.1f}x", "floor 10x")
    results.add("single-event messages vs no-op agent", f"{one.steady / noop.steady:.0%}", "floor 70%")


def synthetic_institution(students: int, day: date, seed: int = 2) -> list[StudentView]:
    """A realistic institution on `day`: 400 programmes in 20 schools, three years, 15% part-time,
    2% not active; 28 days of state per student. 93% engage on some days (VLE most, attendance at two
    sessions a weekday, some library, e-resources, logons, printing), 4% stopped 10-20 days ago and
    3% never engaged, so a realistic share of students concerns a rule."""
    rng = np.random.default_rng(seed)
    horizon = 28
    first = day.toordinal() - horizon + 1
    kind = rng.choice(3, size=students, p=[0.93, 0.04, 0.03])  # engaged, stopped, never
    on_day = rng.random((students, horizon)) < rng.uniform(0.3, 0.95, students)[:, None]
    stop = np.arange(horizon)[None, :] >= horizon - rng.integers(10, 20, students)[:, None]
    on_day &= ~((kind == 1)[:, None] & stop)
    on_day[kind == 2] = False
    rows = np.zeros((students, horizon, ROW_WIDTH), np.uint32)
    for column, rate in enumerate([8.0, 0.1, 1.0, 0.3, 1.0, 0.5]):
        rows[:, :, column] = rng.poisson(rate, (students, horizon)) * on_day
    weekday = np.array([date.fromordinal(first + d).weekday() < 5 for d in range(horizon)])
    expected = np.where(weekday, 2, 0)[None, :].repeat(students, 0)
    # Attendance does not follow VLE days: a rate per student, none after stopping or ever.
    attends = rng.beta(8.0, 1.5, students)[:, None] * np.ones(horizon)  # mean 84%, a few under 50%
    attends[(kind == 1)[:, None] & stop] = 0.0
    attends[kind == 2] = 0.0
    rows[:, :, 6] = expected
    rows[:, :, 7] = rng.binomial(expected, attends)
    engaged: NDArray[np.bool_] = np.asarray((rows[:, :, [0, 1, 2, 3, 4, 5, 7]] > 0).any(axis=2))
    last = np.where(engaged.any(axis=1), first + horizon - 1 - np.argmax(engaged[:, ::-1], axis=1), -1)
    day_bytes = np.arange(first, first + horizon, dtype=np.int32).tobytes()

    programmes = rng.integers(0, 400, students)
    years = rng.integers(1, 4, students)
    part_time = rng.random(students) < 0.15
    inactive = rng.random(students) < 0.02
    statuses = [StudentStatus.ACTIVE, StudentStatus.INTERRUPTED]
    views = []
    for i in range(students):
        state = StudentActivity(last_active=None if last[i] < 0 else int(last[i]))
        state.day_list.frombytes(day_bytes)
        state.rows.frombytes(rows[i].tobytes())
        year = int(years[i])
        record = RosterRecord.model_construct(
            student_id=f"S{i:07d}",
            programme_code=f"P{programmes[i]:03d}",
            school=f"School {programmes[i] % 20}",
            year_of_study=year,
            mode=StudyMode.PART_TIME if part_time[i] else StudyMode.FULL_TIME,
            status=statuses[int(inactive[i])],
            start_date=date(2027 - year, 9, 21),
            leave_date=None,
            personal_tutor_id=f"T{i % 3000}",
        )
        views.append(StudentView(record, (), state))
    return views


def rule_counts(alerts: list[Alert]) -> str:
    counts = Counter(a.rule.value for a in alerts)
    return ", ".join(f"{rule} {n:,}" for rule, n in sorted(counts.items()))


def bench_evaluator(results: Results, students: int) -> None:
    day = date(2026, 11, 20)
    started = time.perf_counter()
    views = synthetic_institution(students, day)
    results.notes.append(f"built {students:,} synthetic students in {time.perf_counter() - started:.0f} s")
    evaluator = Evaluator(RuleSettings(), EngagementSettings())
    monitoring_start = day - timedelta(days=60)
    timings = []
    for judged in (day - timedelta(days=1), day):
        started = time.perf_counter()
        result = evaluator.judge_day(judged, views, monitoring_start)
        timings.append((time.perf_counter() - started, result))
    (first, first_result), (steady, steady_result) = timings
    results.add(
        f"evaluator sweep, {students:,} rostered students, first day",
        f"{first:.2f} s",
        f"floor 10 s; {len(first_result.alerts):,} alerts ({rule_counts(first_result.alerts)}); "
        f"{first_result.judged_in_full:,} students "
        f"a rule could concern judged one by one, the rest in columns",
    )
    results.add(
        f"evaluator sweep, {students:,} rostered students, next day",
        f"{steady:.2f} s",
        f"floor 10 s; {len(steady_result.alerts):,} alerts ({rule_counts(steady_result.alerts)}); "
        f"{steady_result.judged_in_full:,} judged one by one",
    )
    del views, evaluator, timings, first_result, steady_result
    bench_state_memory(results)


def bench_state_memory(results: Results, students: int = 20_000) -> None:
    """Student state built by the stream's own code from realistic events: bytes per student."""
    tz = zone("Europe/London")
    rng = random.Random(2)
    states = []
    for i in range(students):
        state = StudentActivity()
        for d in range(28):
            if rng.random() < 0.6:
                events = [
                    ActivityEvent.model_construct(
                        event_id=f"e{i}-{d}-{k}",
                        student_id=f"S{i}",
                        source=rng.choices(SOURCES, SOURCE_WEIGHTS)[0],
                        occurred_at=datetime(2026, 10, 1 + d, 9 + k % 12, k, tzinfo=UTC),
                        attributes=None,
                    )
                    for k in range(rng.randrange(1, 12))
                ]
                state.apply(events, d, tz)
        # What the stream keeps: 28 days of counts, event ids of the last 4 days (the lateness).
        state.trim(date(2026, 10, 1).toordinal(), date(2026, 10, 25).toordinal())
        states.append(state.to_bytes())
    tracemalloc.start()
    sample = [StudentActivity.from_bytes(s) for s in states]
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_student = current / len(sample)
    encoded = sum(len(s) for s in states) / len(states)
    results.add(
        "state memory per student (in process)",
        f"{per_student:,.0f} bytes",
        "floor 2 KiB; 28 days kept, active on 60% of them, 1-11 events a day",
    )
    results.add("state per student (changelog record)", f"{encoded:,.0f} bytes")


def bench_clickhouse_sink(results: Results, work: Path, rows: int) -> None:
    from sinks import clickhouse

    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=work / "sink")))
    try:
        clickhouse.migrate(store.client)
        batch = [(f"S{i % 50_000}", 740_000 + i // 50_000, [3, 0, 1, 0, 1, 0, 1, 1], 1) for i in range(rows)]
        started = time.perf_counter()
        written = 0
        for i in range(0, len(batch), 20_000):
            written += store.write_activity(batch[i : i + 20_000])
        seconds = time.perf_counter() - started
        results.add(
            "ClickHouse sink (chDB), activity rows", f"{written / seconds:,.0f} rows/s", f"{written:,} rows"
        )
    finally:
        store.close()


def ezproxy_log(count: int, students: int, seed: int = 4) -> Iterator[str]:
    """An EZproxy access log in time order (about 80% articles read by students, the rest page assets,
    requests with no user and failed requests: what `lde ingest` skips), deterministic for a seed."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 5, 8, tzinfo=UTC)
    hosts = ["www.journals.example.org", "ebooks.example.com", "search.example.net", "db.example.org"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    for i in range(count):
        moment = start + timedelta(seconds=i * 1_209_600 // count)  # two weeks, in order
        stamp = f"{moment:%d}/{months[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"
        roll = rng.random()
        user = "-" if roll < 0.04 else f"B{rng.randrange(students):07d}"
        status = 200 if roll < 0.9 else rng.choice((302, 304, 403, 404, 500))
        suffix = rng.choice((".css", ".js", ".png")) if 0.8 < roll < 0.9 else ""
        path = f"/doi/full/10.{rng.randrange(1000, 9999)}/{rng.randrange(10**8):08d}{suffix}"
        yield (
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - {user} [{stamp}] "
            f'"GET https://{rng.choice(hosts)}:443{path} HTTP/1.1" {status} {rng.randrange(100, 10**6)}\n'
        )


def _timed_ingest(settings: Settings, path: Path, fmt: str, prefix: str) -> tuple[Any, float]:
    """Ingest one file into Kafka as `lde ingest` does (binary file, one Publisher); (summary, seconds)."""
    from ops.ingest import ingest
    from ops.publish import Publisher

    ingest_settings = settings.model_copy(update={"topic_prefix": prefix})
    ensure_topics(ingest_settings)
    publisher = Publisher(ingest_settings)
    started = time.perf_counter()
    with path.open("rb") as handle:
        summary = ingest(handle, fmt, publisher, str(path), "Europe/London")
    publisher.close()  # flushed: every accepted event is in Kafka
    return summary, time.perf_counter() - started


def bench_ingest(results: Results, settings: Settings, work: Path, lines: int) -> None:
    """`lde ingest` into Kafka: a canonical JSONL file and an EZproxy log, events/s until confirmed."""
    path = work / "ingest.jsonl"
    with path.open("w") as handle:
        for event in synthetic_events(lines, students=50_000, seed=3):
            handle.write(json.dumps(event) + "\n")
    summary, seconds = _timed_ingest(settings, path, "lde-jsonl", "benchingest.")
    results.add(
        f"ingest, canonical JSONL ({lines:,} lines) into Kafka",
        f"{summary.accepted / seconds:,.0f} events/s",
        f"floor 100,000; {seconds:.1f} s, {summary.accepted:,} events in {summary.messages:,} envelopes",
    )
    path.unlink()

    log = work / "ezproxy.log"
    with log.open("w") as handle:
        handle.writelines(ezproxy_log(lines, students=50_000))
    summary, seconds = _timed_ingest(settings, log, "ezproxy", "benchezproxy.")
    skipped = sum(summary.skipped.values())
    results.add(
        f"ingest, EZproxy log ({lines:,} lines) into Kafka",
        f"{summary.accepted / seconds:,.0f} events/s",
        f"{lines / seconds:,.0f} lines/s; {summary.accepted:,} events, {skipped:,} skipped "
        f"(assets, no user, failed requests), {seconds:.1f} s",
    )
    log.unlink()


def bench_daily_job(results: Results, work: Path, students: int, days: int) -> None:
    from models.retention import RetentionPolicy
    from ops.jobs import DailyJob
    from sinks import clickhouse
    from sinks.redis_store import AlertLedger

    store = clickhouse.ClickHouseStore(clickhouse.connect(Settings(data_dir=work / "job")))
    try:
        clickhouse.migrate(store.client)
        first = date(2025, 11, 1)
        started = time.perf_counter()
        store.command(
            f"""INSERT INTO students SELECT concat('J', toString(number)), '', '', '',
                ['BSC-CS','BSC-PSY','BA-HIST','BSC-NUR'][number % 4 + 1], '', 'School', number % 3 + 1,
                if(number % 5 = 0, 'PT', 'FT'), if(number % 10 = 0, 'withdrawn', 'active'),
                toDate('2024-09-23'), if(number % 10 = 0, toDate('2026-01-31'), NULL), 'T', now64()
                FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO activity_daily SELECT concat('J', toString(number % {students})),
                toDate('{first}') + intDiv(number, {students} * 3),
                ['vle','eresource','attendance'][intDiv(number, {students}) % 3 + 1],
                1 + number % 7, number % 2, 1
                FROM numbers({students} * {days} * 3)"""
        )
        load = time.perf_counter() - started
        rows = store.query("SELECT count() FROM activity_daily")[0][0]
        job = DailyJob(store, AlertLedger(None), RetentionPolicy(), None)
        started = time.perf_counter()
        run = job.run(first + timedelta(days=days))
        seconds = time.perf_counter() - started
        results.add(
            f"daily job, {students:,} students x {days} days ({rows:,} daily rows)",
            f"{seconds:.1f} s",
            f"floor 300 s; erased {run.steps['retention']['students']:,} leavers; load {load:.0f} s",
        )
    finally:
        store.close()


def bench_reports(results: Results, work: Path, students: int, staff: int) -> None:
    """Weekly reports for every member of staff: load, cut, render (HTML, text, PDF) and write."""
    from models.access import Role, StaffRow
    from ops.reports import FolderDelivery, ReportJob
    from sinks import clickhouse

    settings = Settings(data_dir=work / "reports")
    store = clickhouse.ClickHouseStore(clickhouse.connect(settings))
    week = date(2026, 11, 16)
    try:
        clickhouse.migrate(store.client)
        started = time.perf_counter()
        seos, directors, leaders = 5, 15, 100
        tutors = staff - seos - directors - leaders
        store.command(
            f"""INSERT INTO students SELECT concat('R', toString(number)), 'Given',
                concat('Family', toString(number)), '', concat('P', toString(number % {leaders})),
                'Programme',
                concat('School ', toString(number % {leaders} % {directors})),
                number % 3 + 1, if(number % 5 = 0, 'PT', 'FT'), 'active', toDate('2025-09-22'), NULL,
                concat('T', toString(number % {tutors})), now64() FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO activity_daily SELECT concat('R', toString(number % {students})),
                toDate('2026-09-28') + 3 * intDiv(number, {students} * 3),
                ['vle','eresource','attendance'][intDiv(number, {students}) % 3 + 1],
                1 + number % 7, number % 2, 1 FROM numbers({students} * 3 * 19)"""
        )
        store.command(
            f"""INSERT INTO daily_scores SELECT concat('R', toString(number)), toDate('2026-11-22'),
                number % 100, ['Low','Partial','Good','High','None'][number % 5 + 1], 'cohort', number % 100,
                now64() FROM numbers({students})"""
        )
        store.command(
            f"""INSERT INTO alerts (alert_id, student_id, rule, raised_on, episode_start, days_silent,
                programme_code, year_of_study, mode, school, personal_tutor_id, explanation, created_at)
                SELECT toString(number), concat('R', toString(number * 33)), 'no_engagement',
                toDate('2026-11-18'), toDate('2026-11-11'), 7, '', 1, 'FT', '', '',
                'No recorded activity of any kind for 7 days.', now64() FROM numbers({students // 33})"""
        )
        kinds = [  # (id prefix, title, role, scope of number i, how many)
            ("T", "Tutor", Role.PERSONAL_TUTOR, lambda i: "tutees", tutors),
            ("L", "Leader", Role.PROGRAMME_LEADER, lambda i: f"programme:P{i}", leaders),
            ("D", "Director", Role.DIRECTOR_OF_SCHOOL, lambda i: f"school:School {i}", directors),
            ("E", "Officer", Role.STUDENT_ENGAGEMENT_OFFICER, lambda i: "institution", seos),
        ]
        rows = [
            StaffRow(
                staff_id=f"{prefix}{i}",
                name=f"{title} {i}",
                email=f"{prefix.lower()}{i}@x.ac.uk",
                role=role,
                scope=scope(i),
            )
            for prefix, title, role, scope, count in kinds
            for i in range(count)
        ]
        store.write_staff(rows, datetime.now(UTC))
        load = time.perf_counter() - started
        delivery = FolderDelivery(work / "reports-out")
        run = ReportJob(store, settings).run(week, delivery)
        size = sum(p.stat().st_size for p in delivery.written) / 1e6
        results.add(
            f"weekly reports, {students:,} students and {run.reports:,} staff "
            f"({run.students:,} student entries)",
            f"{run.seconds['total']:.1f} s",
            f"floor 120 s; load {run.seconds['load']:.1f} s, render {run.seconds['render']:.1f} s, "
            f"write {run.seconds['deliver']:.1f} s; {size:,.0f} MB of HTML, text and PDF; "
            f"data set-up {load:.0f} s",
        )
    finally:
        store.close()


def versions() -> str:
    names = ["faust-streaming", "aiokafka", "kafka-python", "clickhouse-connect", "chdb", "pydantic", "redis"]
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def write_markdown(results: Results, path: Path, command: str, seconds: float) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d} in one run ({seconds:.0f} s), "
        "on one machine:",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions()}.",
        "Broker: the embedded Tansu broker (memory storage), shared by every Kafka figure below.",
        "",
        "| measure | result | note |",
        "| --- | --- | --- |",
        *[f"| {m} | {v} | {n} |" for m, v, n in results.rows],
        "",
        *[f"- {note}" for note in results.notes],
        "",
    ]
    existing = path.read_text() if path.exists() else ""
    marker = "\n## Where the time goes"
    tail = existing[existing.index(marker) :] if marker in existing else ""
    path.write_text("\n".join(lines) + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LDE benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the harness")
    parser.add_argument(
        "--only", nargs="*", default=None, help="pipeline evaluator sink ingest job reports (default: all)"
    )
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    quick = args.quick
    only = set(args.only or ["pipeline", "evaluator", "sink", "ingest", "job", "reports"])
    work = Path(tempfile.mkdtemp(prefix="lde-bench-"))
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}", data_dir=work, partitions=8)
    results = Results()
    started = time.perf_counter()
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        if "pipeline" in only:
            bench_pipeline(
                results, settings, work, 200_000 if quick else 1_000_000, 40_000 if quick else 200_000
            )
        if "evaluator" in only:
            bench_evaluator(results, 50_000 if quick else 1_000_000)
        if "sink" in only:
            bench_clickhouse_sink(results, work, 100_000 if quick else 1_000_000)
        if "ingest" in only:
            bench_ingest(results, settings, work, 50_000 if quick else 1_000_000)
        if "job" in only:
            bench_daily_job(results, work, 3_000 if quick else 30_000, 60 if quick else 365)
        if "reports" in only:
            bench_reports(results, work, 3_000 if quick else 30_000, 150 if quick else 1_500)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    command = "make bench" if not quick else "python -m ops.bench --quick"
    if not quick:
        write_markdown(results, Path(args.out), command, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
