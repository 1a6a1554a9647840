"""Synthetic input for the benchmarks, deterministic for a seed: canonical events (uniform, or in
per-student sessions as clickstreams arrive) and an EZproxy access log.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models.events import SOURCES

SOURCE_WEIGHTS = [60, 1, 12, 3, 10, 5, 9]  # vle, library, eresource, print, pc_logon, remote, attendance
START = date(2026, 10, 5)


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
