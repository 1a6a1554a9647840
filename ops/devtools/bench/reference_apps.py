"""Reference Faust apps for `make bench`: the naive design and a no-op agent, on the same broker.

Run as `python -m ops.devtools.bench.reference_apps naive|noop BOOTSTRAP TOPIC EXPECTED [DATADIR]`; each
prints `DONE <messages> <seconds> <steady seconds>` when it has consumed EXPECTED messages: seconds from
the first to the last message, and the seconds between 20% and 90% of them (the steady state the harness
compares with the LDE worker's, warm-up excluded).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

import faust


def build(kind: str, bootstrap: str, topic_name: str, expected: int, datadir: str = "") -> faust.App:
    app_id = f"bench-{kind}-{int(time.time())}"
    app = faust.App(
        app_id,
        # Faust's default data folder is the working directory; keep it with the bench's other files.
        datadir=datadir or f"{app_id}-data",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        processing_guarantee="at_least_once",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_rebalance_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    topic = app.topic(topic_name, value_serializer="raw")
    progress = {"n": 0, "first": 0.0, "from": 0.0}
    steady_from, steady_to = int(expected * 0.2), int(expected * 0.9)

    def tick() -> None:
        if progress["n"] == 0:
            progress["first"] = time.perf_counter()
        progress["n"] += 1
        if progress["n"] == steady_from:
            progress["from"] = time.perf_counter()
        elif progress["n"] == steady_to:
            progress["to"] = time.perf_counter()
        if progress["n"] == expected:
            now = time.perf_counter()
            # Faust redirects sys.stdout into its log; the harness reads the real stdout.
            assert sys.__stdout__ is not None
            sys.__stdout__.write(
                f"DONE {expected} {now - progress['first']:.3f} {progress['to'] - progress['from']:.3f}\n"
            )
            sys.__stdout__.flush()

    if kind == "noop":

        @app.agent(topic)
        async def noop(stream: faust.StreamT) -> None:
            async for _ in stream:
                tick()

    else:
        # The naive design: one event per message, a tumbling one-day window per student, updated
        # per event (one changelog record per window per update).
        counts = app.Table("naive-counts", default=int).tumbling(
            timedelta(days=1), expires=timedelta(days=30)
        )

        @app.agent(topic)
        async def naive(stream: faust.StreamT) -> None:
            async for value in stream:
                event = json.loads(value)
                counts[f"{event['student_id']}:{event['source']}"] += 1  # window of the message time
                tick()

    return app


def main() -> None:
    kind, bootstrap, topic, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    app = build(kind, bootstrap, topic, expected, sys.argv[5] if len(sys.argv) > 5 else "")
    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
