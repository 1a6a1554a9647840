"""`make bench` (`python -m ops.devtools.bench`): runs the sections asked for on one embedded broker and
merges their rows into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ops.devtools.bench.backfill import bench_backfill
from ops.devtools.bench.evaluator import bench_evaluator
from ops.devtools.bench.jobs import bench_clickhouse_sink, bench_daily_job, bench_ingest, bench_reports
from ops.devtools.bench.markdown import Results, write_markdown
from ops.devtools.bench.pipeline import bench_pipeline
from ops.devtools.bench.staff_load import bench_staff_load
from ops.devtools.bench.web import bench_caseload
from ops.devtools.bench.xapi import bench_xapi
from ops.devtools.replay import free_port
from ops.runtime.embedded import EmbeddedBroker
from ops.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.devtools.bench", description="LDE benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for checking the harness")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="pipeline evaluator sink ingest job reports xapi web staff backfill (default: all)",
    )
    parser.add_argument("--out", default="BENCHMARKS.md")
    args = parser.parse_args(argv)
    quick = args.quick
    everything = [
        "pipeline",
        "evaluator",
        "sink",
        "ingest",
        "job",
        "reports",
        "xapi",
        "web",
        "staff",
        "backfill",
    ]
    only = set(args.only or everything)
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
        ("xapi", lambda: bench_xapi(results, settings, work, 20_000 if quick else 200_000)),
        ("web", lambda: bench_caseload(results, work, 3_000 if quick else 30_000)),
        (
            "staff",
            lambda: bench_staff_load(
                results,
                work,
                # (students, weeks): a 12-week term of 3,000 (the million events, 2.5 million
                # in today's simulator), and the caseload of 30,000 over two weeks of theirs (4.3
                # million events: a whole term of them would take most of an hour a run)
                terms=((600, 2), (3_000, 2)) if quick else ((3_000, 12), (30_000, 2)),
                client_counts=(0, 10, 50, 200),
                rounds=1 if quick else 3,
            ),
        ),
        (
            "backfill",
            lambda: bench_backfill(
                results,
                settings,
                work,
                # (students, weeks): the design's size, then the institution's term (issue 28)
                terms=((600, 4), (3_000, 12)) if quick else _backfill_terms(),
                reference_messages=40_000 if quick else 200_000,
            ),
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
    command = "python -m ops.devtools.bench" + (f" --only {' '.join(sorted(only))}" if args.only else "")
    if not quick or args.out != "BENCHMARKS.md":
        write_markdown(results, Path(args.out), command + (" --quick" if quick else ""), seconds)
    return 0


def _backfill_terms() -> tuple[tuple[int, int], ...]:
    """The backfill section's terms: 3,000 and 30,000 students x 12 weeks, or those LDE_BENCH_BACKFILL
    names ("3000x12,30000x12"; the larger term takes most of the run on a shared machine)."""
    spec = os.environ.get("LDE_BENCH_BACKFILL", "3000x12,30000x12")
    return tuple((int(a), int(b)) for a, b in (item.split("x") for item in spec.split(",")))


if __name__ == "__main__":
    sys.exit(main())
