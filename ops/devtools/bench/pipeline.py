"""The stream pipeline's figures: a real `lde up` worker on pre-published input (envelopes and
single-event messages) against the naive and no-op Faust reference apps, in steady state.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from models.partitioning import partition_for
from ops.devtools.bench.markdown import Results
from ops.devtools.bench.workloads import SESSION_MEAN, session_events, synthetic_events
from ops.devtools.replay import free_port
from ops.runtime.client import ServiceClient
from ops.settings import Settings
from sinks.kafka import ensure_topics


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
    """Run a reference Faust app (ops.devtools.bench.reference_apps) on the same input; same steady-state
    window."""
    with (work / f"{kind}.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ops.devtools.bench.reference_apps",
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
        f"(ops.devtools.bench.workloads.session_events: VLE runs of about {SESSION_MEAN['vle']:.0f} clicks "
        f"30-180 s apart, e-resource runs of about {SESSION_MEAN['eresource']:.0f}, other sources one "
        "event), in time order, published per partition in envelopes of 100 "
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
