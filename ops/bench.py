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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from ops.embedded import EmbeddedBroker
from ops.http.client import ServiceClient
from ops.replay import free_port
from ops.settings import Settings
from sinks.kafka import ensure_topics
from streams.evaluator import Evaluator, StudentView

SOURCE_WEIGHTS = [60, 1, 12, 3, 10, 5, 9]  # vle, library, eresource, print, pc_logon, remote, attendance
START = date(2026, 10, 5)


@dataclass(frozen=True)
class Row:
    """One line of the BENCHMARKS.md table; `section` is the `--only` name that measures it."""

    section: str
    measure: str
    value: str
    note: str = ""
    floor: str = "-"
    met: bool | None = None

    def markdown(self) -> str:
        met = "-" if self.met is None else "yes" if self.met else "**no**"
        result = f"{self.value} ({self.note})" if self.note else self.value
        command = f"`python -m ops.bench --only {self.section}`"
        return f"| {self.measure} | {result} | {self.floor} | {met} | {command} |"


@dataclass
class Results:
    section: str = ""  # set by main() before each section runs
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # per section

    def add(
        self, measure: str, value: str, note: str = "", floor: str = "-", met: bool | None = None
    ) -> None:
        print(f"  {measure}: {value} {note} {floor}{'' if met is None else ' met' if met else ' NOT met'}")
        self.rows.append(Row(self.section, measure, value, note, floor, met))

    def note(self, text: str) -> None:
        self.notes[self.section].append(text)


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


#: Mean events per session by source (geometric lengths): a VLE visit is a run of clicks, an
#: e-resource visit a few articles; a loan, print job, logon, remote login or register mark is one event.
SESSION_MEAN = {"vle": 12.0, "eresource": 4.0}


def session_events(count: int, students: int, seed: int = 1) -> list[dict[str, Any]]:
    """Canonical events as clickstreams arrive: per-student sessions (a source, a start between 08:00 and
    22:00 on one of 14 days, events 30-180 s apart) in time order, the source shares of
    SOURCE_WEIGHTS. A student's events cluster in time, so an envelope of a partition's events in
    time order holds runs of one student; synthetic_events, every event of a random student and
    time, is the no-clustering worst case."""
    rng = random.Random(seed)
    sources = [s.value for s in SOURCES]
    means = [SESSION_MEAN.get(source, 1.0) for source in sources]
    session_weights = [w / m for w, m in zip(SOURCE_WEIGHTS, means, strict=True)]
    start = datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp()
    timed: list[tuple[float, int, dict[str, Any]]] = []
    while len(timed) < count:
        k = rng.choices(range(len(sources)), session_weights)[0]
        source, mean = sources[k], means[k]
        length = 1 if mean <= 1 else 1 + int(rng.expovariate(1 / (mean - 1)))
        student = f"B{rng.randrange(students):07d}"
        moment = start + rng.randrange(14) * 86_400 + rng.uniform(8 * 3600, 22 * 3600)
        for _ in range(min(length, count - len(timed))):
            event: dict[str, Any] = {"student_id": student, "source": source}
            if source == "attendance":
                event["attributes"] = {"status": "present" if rng.random() < 0.8 else "absent"}
            timed.append((moment, len(timed), event))
            moment += rng.uniform(30, 180)
    timed.sort(key=lambda item: item[0])
    events = []
    for moment, i, event in timed:
        event["event_id"] = f"bench-{seed}-{i}"
        event["occurred_at"] = datetime.fromtimestamp(int(moment), UTC).isoformat()
        events.append(event)
    return events


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
        return f"first-to-last {self.overall:,.0f}/s{start}"


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
    """The LDE worker on envelopes (clustered sessions, then the uniform worst case) and on single-event
    messages, then the naive and no-op Faust references on the same single-event topic."""
    s = Settings()
    batch = (
        f"batches of up to {s.batch_max_messages:,} messages within {s.batch_max_seconds} s "
        "(LDE_BATCH_MAX_MESSAGES / LDE_BATCH_MAX_SECONDS)"
    )
    students = 20_000
    events = session_events(events_envelope, students)
    env_settings = settings.model_copy(update={"topic_prefix": "benchenv."})
    ensure_topics(env_settings)
    seconds = publish_raw(env_settings, events, 100, env_settings.topic("activity"))
    results.note(
        f"Workload: {len(events):,} events of {students:,} students over 14 days in per-student sessions "
        f"(ops.bench.session_events: VLE runs of about {SESSION_MEAN['vle']:.0f} clicks 30-180 s "
        f"apart, e-resource runs of about {SESSION_MEAN['eresource']:.0f}, other sources one event), "
        "in time order, published per partition in envelopes of 100 "
        f"({seconds:.1f} s, kafka-python); the worker ran with {batch}, {settings.partitions} partitions"
    )
    results.note(
        f"Rates are the steady state, between {STEADY_FROM:.0%} and {STEADY_TO:.0%} of each run's events "
        "(start-up and the ragged tail excluded); each worker is a fresh `lde up` process (LDE_CLOCK=event)"
    )
    envelope = run_worker(settings, work, "benchenv.", len(events))

    uniform = list(synthetic_events(events_envelope, students=students))
    uni_settings = settings.model_copy(update={"topic_prefix": "benchuni."})
    ensure_topics(uni_settings)
    publish_raw(uni_settings, uniform, 100, uni_settings.topic("activity"))
    worst = run_worker(settings, work, "benchuni.", len(uniform))
    del uniform

    single = events[:events_single]
    one_settings = settings.model_copy(update={"topic_prefix": "benchone."})
    ensure_topics(one_settings)
    publish_raw(one_settings, single, 1, one_settings.topic("activity"))
    one = run_worker(settings, work, "benchone.", len(single))
    naive = run_reference("naive", settings, one_settings.topic("activity"), len(single), work)
    noop = run_reference("noop", settings, one_settings.topic("activity"), len(single), work)

    ratio = envelope.steady / naive.steady
    results.add(
        f"pipeline, envelopes of 100 events, one worker ({len(events):,} events in sessions)",
        f"{envelope.steady:,.0f} events/s",
        f"{ratio:.1f}x naive; {envelope.note()}",
        ">= 50,000 events/s and >= 10x naive",
        envelope.steady >= 50_000 and ratio >= 10,
    )
    results.add(
        f"pipeline, envelopes of 100 events, one worker ({events_envelope:,} events, no clustering: "
        "each event a random student and time)",
        f"{worst.steady:,.0f} events/s",
        f"worst case, for comparison; {worst.steady / naive.steady:.1f}x naive; {worst.note()}",
    )
    share = one.steady / noop.steady
    results.add(
        f"pipeline, one event per message, one worker ({len(single):,} messages)",
        f"{one.steady:,.0f} events/s",
        f"{share:.0%} of the no-op agent; {one.note()}",
        ">= 70% of a no-op agent",
        share >= 0.7,
    )
    results.add(
        f"naive Faust: one event per message, tumbling daily table ({len(single):,} messages)",
        f"{naive.steady:,.0f} events/s",
        f"reference; {naive.note()}",
    )
    results.add(
        f"no-op Faust agent ({len(single):,} messages)",
        f"{noop.steady:,.0f} messages/s",
        f"reference; {noop.note()}",
    )


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


#: Rounds of the evaluator's two days: this machine's speed varies by half within minutes (other
#: tenants), so the table gives the fastest round, the least disturbed, with the median beside it.
EVALUATOR_ROUNDS = 5


def machine_probe() -> float:
    """Seconds of a fixed pure-Python loop: how fast the machine runs at the moment, beside a figure
    (the same code measures up to half slower within minutes here; ~0.8 s in a quiet minute)."""
    started = time.perf_counter()
    sum(i * i for i in range(10_000_000))
    return time.perf_counter() - started


def bench_evaluator(results: Results, students: int, rounds: int = EVALUATOR_ROUNDS) -> None:
    day = date(2026, 11, 20)
    started = time.perf_counter()
    views = synthetic_institution(students, day)
    results.note(f"built {students:,} synthetic students in {time.perf_counter() - started:.0f} s")
    monitoring_start = day - timedelta(days=60)
    firsts: list[float] = []
    nexts: list[float] = []
    probes: list[float] = []
    for _ in range(rounds):
        probes.append(machine_probe())
        evaluator = Evaluator(RuleSettings(), EngagementSettings())  # a fresh worker: a first day again
        for judged, times in ((day - timedelta(days=1), firsts), (day, nexts)):
            started = time.perf_counter()
            result = evaluator.judge_day(judged, views, monitoring_start)
            times.append(time.perf_counter() - started)
            if judged == day:
                steady_result = result
            else:
                first_result = result
        del evaluator
    first, steady = min(firsts), min(nexts)

    def spread(times: list[float]) -> str:
        return (
            f"fastest of {len(times)} rounds, median {statistics.median(times):.2f} s "
            f"(machine probe {min(probes):.2f}-{max(probes):.2f} s); "
        )

    results.add(
        f"evaluator sweep, {students:,} rostered students, first day",
        f"{first:.2f} s",
        spread(firsts) + f"{len(first_result.alerts):,} alerts ({rule_counts(first_result.alerts)}); "
        f"{first_result.judged_in_full:,} students judged one by one (a first silence or "
        f"the full judgement), the rest in columns or by the shortcut",
        "<= 10 s",
        first <= 10,
    )
    results.add(
        f"evaluator sweep, {students:,} rostered students, next day",
        f"{steady:.2f} s",
        spread(nexts) + f"{len(steady_result.alerts):,} alerts ({rule_counts(steady_result.alerts)}); "
        f"{steady_result.judged_in_full:,} judged one by one",
        "<= 10 s",
        steady <= 10,
    )
    del views, first_result, steady_result
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
        "28 days kept, active on 60% of them, 1-11 events a day",
        "<= 2 KiB",
        per_student <= 2048,
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
    from sinks.kafka import Publisher

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
        f"{seconds:.1f} s, {summary.accepted:,} events in {summary.messages:,} envelopes",
        ">= 100,000 events/s",
        summary.accepted / seconds >= 100_000,
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
            f"erased {run.steps['retention']['students']:,} leavers; load {load:.0f} s",
            "< 300 s",
            seconds < 300,
        )
    finally:
        store.close()


def bench_reports(results: Results, work: Path, students: int, staff: int) -> None:
    """Weekly reports for every member of staff: load, cut, render (HTML, text, PDF) and write."""
    from models.access import Role, StaffRow
    from ops.reports.weekly import FolderDelivery, ReportJob
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
            f"load {run.seconds['load']:.1f} s, render {run.seconds['render']:.1f} s, "
            f"write {run.seconds['deliver']:.1f} s; {size:,.0f} MB of HTML, text and PDF; "
            f"data set-up {load:.0f} s",
            "< 120 s",
            run.seconds["total"] < 120,
        )
    finally:
        store.close()


def versions() -> str:
    names = ["faust-streaming", "aiokafka", "kafka-python", "clickhouse-connect", "chdb", "pydantic", "redis"]
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


TABLE_HEADER = ["| measure | result | floor | met | command |", "| --- | --- | --- | --- | --- |"]
RUNS_HEADING = "## Runs"
_SECTION = re.compile(r"--only ([a-z_]+)`")
_RUN = re.compile(r"^- \*\*([a-z_]+)\*\*")
DEFAULT_PREAMBLE = (
    "# Benchmarks\n\n"
    "Speed and memory goals live here, not in tests. `make bench` (`python -m ops.bench`) measures them "
    "on one embedded Tansu broker; `--only SECTION` measures one section and replaces only its rows "
    "and its entry under Runs."
)


def merge_markdown(existing: str, rows: Sequence[Row], runs: Mapping[str, list[str]]) -> str:
    """BENCHMARKS.md with the rows and run entries of the sections in `runs` replaced (in place, or
    appended when new) and everything else kept: other sections' rows and runs, the prose, and the
    profile notes. Pure, so `--only X` can be tested without running anything."""
    lines = (existing or DEFAULT_PREAMBLE).rstrip("\n").split("\n")
    measured = set(runs)
    new_rows = [row.markdown() for row in rows]

    # The table: old rows of a measured section go; the new rows take the first one's place.
    if TABLE_HEADER[0] in lines:
        start = lines.index(TABLE_HEADER[0]) + 2
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        kept: list[str] = []
        insert_at = None
        for line in lines[start:end]:
            found = _SECTION.search(line)
            if found and found.group(1) in measured:
                if insert_at is None:
                    insert_at = len(kept)
                continue
            kept.append(line)
        insert_at = len(kept) if insert_at is None else insert_at
        lines[start:end] = kept[:insert_at] + new_rows + kept[insert_at:]
    else:
        lines += ["", *TABLE_HEADER, *new_rows]

    # Runs: one entry per section ("- **name**: ..." and its indented lines).
    entries = {
        name: [f"- **{name}**: {text[0]}", *[f"  - {t}" for t in text[1:]]] for name, text in runs.items()
    }
    if RUNS_HEADING not in lines:
        marker = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        lines[marker:marker] = [RUNS_HEADING, ""] if marker < len(lines) else ["", RUNS_HEADING]
    start = lines.index(RUNS_HEADING) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks: list[tuple[str | None, list[str]]] = []
    for line in lines[start:end]:
        if not line.strip():
            continue
        found = _RUN.match(line)
        if found or not blocks:
            blocks.append((found.group(1) if found else None, [line]))
        else:
            blocks[-1][1].append(line)
    body = [line for name, block in blocks for line in (entries.pop(name, block) if name else block)]
    body += [line for entry in entries.values() for line in entry]
    lines[start:end] = ["", *body, *([""] if end < len(lines) else [])]
    return "\n".join(lines).rstrip("\n") + "\n"


def run_entry(command: str, seconds: float, notes: list[str]) -> list[str]:
    """A Runs entry: when, how long, on what machine and versions, then the section's notes."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (
        f"{datetime.now(UTC):%Y-%m-%d}, `{command}` ({seconds:.0f} s, load average {load:.1f} at the end): "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions()}; "
        "embedded Tansu broker (memory storage)"
    )
    return [head, *notes]


def write_markdown(results: Results, path: Path, command: str, seconds: dict[str, float]) -> None:
    """Merge this run's sections into BENCHMARKS.md (see merge_markdown)."""
    runs = {name: run_entry(command, secs, results.notes.get(name, [])) for name, secs in seconds.items()}
    existing = path.read_text() if path.exists() else ""
    path.write_text(merge_markdown(existing, results.rows, runs))


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
    seconds: dict[str, float] = {}
    broker = EmbeddedBroker(settings)
    broker.start()
    sections: list[tuple[str, Callable[[], None]]] = [
        (
            "pipeline",
            lambda: bench_pipeline(
                results, settings, work, 200_000 if quick else 1_000_000, 40_000 if quick else 200_000
            ),
        ),
        ("evaluator", lambda: bench_evaluator(results, 50_000 if quick else 1_000_000)),
        ("sink", lambda: bench_clickhouse_sink(results, work, 100_000 if quick else 1_000_000)),
        ("ingest", lambda: bench_ingest(results, settings, work, 50_000 if quick else 1_000_000)),
        ("job", lambda: bench_daily_job(results, work, 3_000 if quick else 30_000, 60 if quick else 365)),
        (
            "reports",
            lambda: bench_reports(results, work, 3_000 if quick else 30_000, 150 if quick else 1_500),
        ),
    ]
    try:
        for name, run in sections:
            if name in only:
                results.section = name
                started = time.perf_counter()
                run()
                seconds[name] = time.perf_counter() - started
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    command = "python -m ops.bench" + (f" --only {' '.join(sorted(only))}" if args.only else "")
    if not quick or args.out != "BENCHMARKS.md":
        write_markdown(results, Path(args.out), command + (" --quick" if quick else ""), seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
