"""Jobs and privacy on demand: `lde job daily` and `lde privacy check`."""

from __future__ import annotations

import argparse

from ops.cli.common import direct_store, running_service
from ops.settings import Settings


def cmd_job_daily(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    as_of = date.fromisoformat(args.as_of) if args.as_of else None
    client = running_service(settings)
    if client is not None:
        query = f"?dry_run={'1' if args.dry_run else '0'}" + (f"&as_of={as_of}" if as_of else "")
        run = client.post("/v1/jobs/daily" + query)
        where = f"in the running service at {settings.service_url}"
    else:
        from datetime import UTC, datetime

        from models.timebuckets import local_today, zone
        from ops.jobs.daily import daily_job
        from sinks import redis_store

        store, where = direct_store(settings)
        as_of = as_of or local_today(datetime.now(UTC), zone(settings.timezone))
        ledger = redis_store.AlertLedger(redis_store.connect(settings))
        # Without the service the embedded broker is not running (and kept nothing): no tombstones to send.
        job = daily_job(settings, store, ledger, broker=settings.mode == "production")
        run = job.run(as_of, args.dry_run).as_dict()
    print(f"daily job {run['status']} ({'dry run, ' if run['dry_run'] else ''}as of {run['as_of']}, {where})")
    for step, figures in run["steps"].items():
        print(f"  {step}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    return 0 if run["status"] == "success" else 1


def cmd_privacy_check(settings: Settings, args: argparse.Namespace) -> int:
    from ops.jobs.privacy import report, search_clickhouse, search_redis

    client = running_service(settings)
    if client is not None:
        places = client.get(f"/v1/privacy/{args.student_id}")
    else:
        from sinks import redis_store

        store, _ = direct_store(settings)
        places = search_clickhouse(store, args.student_id)
        places.update(search_redis(redis_store.connect(settings), args.student_id))
    print(report(places, args.student_id))
    return 1 if places else 0
