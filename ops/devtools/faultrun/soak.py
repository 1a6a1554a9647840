"""`make soak`: one worker with the evaluator and sinks on under a steady load, its memory sampled."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from models.timebuckets import day_end, zone
from ops.devtools.faultrun.cluster import Cluster
from sinks.kafka import Publisher


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
    from datetime import UTC, timedelta

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
