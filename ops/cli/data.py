"""Loading data: `lde roster load`, `lde absences load`, `lde staff load`, `lde ingest` and
`lde db migrate`.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from models.clock import WallClock
from models.event_time import accepting
from models.roster import CsvRowError, load_absences, load_roster
from ops.cli.common import direct_store, fail, running_service
from ops.settings import Settings


def _load_csv(settings: Settings, path: Path, kind: str) -> int:
    from ops.edge.ingest import redacted_record
    from sinks.kafka import Publisher

    if not path.is_file():
        return fail(f"{path}: no such file")
    loader = load_roster if kind == "roster" else load_absences
    good: list[Any] = []
    errors: list[CsvRowError] = []
    for item in loader(path):
        if isinstance(item, CsvRowError):
            errors.append(item)
        else:
            good.append(item)
    publisher = Publisher(settings)
    try:
        sent = publisher.send_roster(good) if kind == "roster" else publisher.send_absences(good)
        for error in errors:
            publisher.send_dead_letter(
                redacted_record(str(error)), error.reason, f"{kind}-csv", f"{path}:{error.line}"
            )
    finally:
        publisher.close()
    print(f"{kind}: {len(good)} records published ({sent} messages), {len(errors)} invalid")
    for error in errors:
        print(f"  invalid {path}:{error.line}: {error.reason}", file=sys.stderr)
    return 0 if good or not errors else 1


def cmd_roster_load(settings: Settings, args: argparse.Namespace) -> int:
    return _load_csv(settings, Path(args.file), "roster")


def cmd_absences_load(settings: Settings, args: argparse.Namespace) -> int:
    return _load_csv(settings, Path(args.file), "absences")


def _user_map(args: argparse.Namespace) -> dict[str, str] | str:
    """The Canvas user map for canvas-web-logs (or why it cannot be had), its problems on stderr."""
    return user_map_for(args.format, args.user_map)


def user_map_for(format_name: str, user_map: str | None) -> dict[str, str] | str:
    """The Canvas user map `--user-map` names for a format (or why it cannot be had; {} when the
    format needs none), its problems on stderr. Shared with `lde backfill`."""
    from models.adapters.canvas_data import read_user_map
    from ops.edge.ingest import decompressed

    if format_name != "canvas-web-logs":
        return "--user-map applies to --format canvas-web-logs only" if user_map else {}
    if not user_map:
        return (
            "canvas-web-logs needs --user-map FILE (the DAP pseudonyms table as JSONL or CSV, or a CSV "
            "canvas_user_id,sis_user_id): web_logs names users by Canvas id, LDE by SIS id"
        )
    path = Path(user_map)
    if not path.is_file():
        return f"{path}: no such file"
    with path.open("rb") as raw, io.TextIOWrapper(decompressed(raw), encoding="utf-8", newline="") as text:
        users = read_user_map(text)
    for problem in users.problems[:20]:
        print(f"  user map {path}:{problem}", file=sys.stderr)
    print(f"user map: {len(users.ids)} Canvas users with a SIS id ({users.rows} rows)", file=sys.stderr)
    if not users.ids:
        return f"{path}: no Canvas user with a SIS id: is it the pseudonyms table?"
    return users.ids


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from ops.edge.ingest import UnknownFormat, UpstreamBroken, decompressed, ingest
    from sinks.kafka import Publisher

    if args.file != "-" and not Path(args.file).is_file():
        return fail(f"{args.file}: no such file")
    users = _user_map(args)
    if isinstance(users, str):
        return fail(users)
    options: dict[str, Any] | None = {"users": users} if users else None
    if args.format == "caliper":  # the collector's Person id mapping, so a file counts like a POST
        from ops.edge.caliper_people import PersonMapUnusable, person_map

        try:
            options = {"people": person_map(settings)}
        except PersonMapUnusable as error:
            return fail(str(error))
    publisher = Publisher(settings)
    # Event times outside the window are refused as invalid (issue 22): the floor always, and on the
    # wall clock anything beyond the allowed skew; on the event clock this process has no reading.
    window = settings.event_time_window(WallClock().now() if settings.clock == "wall" else None)
    try:
        with accepting(window):
            # Binary: ingest decodes (UTF-8, bad bytes replaced) and reads canonical JSONL in blocks.
            if args.file == "-":
                summary = ingest(
                    sys.stdin.buffer, args.format, publisher, "stdin", settings.timezone, options=options
                )
            else:
                with Path(args.file).open("rb") as handle:
                    summary = ingest(
                        decompressed(handle),
                        args.format,
                        publisher,
                        args.file,
                        settings.timezone,
                        options=options,
                    )
    except UpstreamBroken as error:
        if error.summary is not None:  # what was published and dead-lettered before the stop
            print("\n".join(error.summary.lines()), file=sys.stderr)
        return fail(str(error), 3)
    except UnknownFormat as error:
        return fail(str(error))
    finally:
        publisher.close()
    print("\n".join(summary.lines()))
    return 0


def cmd_staff_load(settings: Settings, args: argparse.Namespace) -> int:
    from models.access import read_staff_csv

    path = Path(args.file)
    if not path.is_file():
        return fail(f"{path}: no such file")
    rows, errors = read_staff_csv(path)
    if errors:
        for error in errors:
            print(f"  invalid {path}:{error.line}: {error.reason}", file=sys.stderr)
        return fail(f"{path}: {len(errors)} invalid rows; nothing loaded (the directory is unchanged)", 1)
    client = running_service(settings)
    if client is not None:
        answer = client.post("/v1/staff", path.read_bytes(), headers={"Content-Type": "text/csv"})
        if "error" in answer:
            return fail(f"{path}: {answer['error']}; nothing loaded", 1)
        count, where = answer["staff"], f"in the running service at {settings.service_url}"
    else:
        from ops.jobs.reports.personal import load_staff_rows

        store, where = direct_store(settings)
        try:
            count = len(load_staff_rows(store, rows))
        except ValueError as error:
            return fail(f"{path}: {error}; nothing loaded", 1)
    print(
        f"staff: {count} members with {len(rows)} roles loaded ({where}); earlier loads are kept as history"
    )
    return 0


def cmd_db_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if running_service(settings) is not None:
        print("the running service applied the migrations at start-up; nothing to do")
        return 0
    from sinks import clickhouse

    store, where = direct_store(settings)
    print(f"schema at version {clickhouse.migrate(store.client)} ({where})")
    return 0
