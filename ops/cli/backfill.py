"""`lde backfill`: judge the history in files (a term so far, from the exports) as the service would
have judged it live, straight into ClickHouse (ops.runtime.backfill)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from models.adapters import ADAPTERS
from models.roster import Absence, CsvRowError, RosterRecord, load_absences, load_roster
from ops.cli.common import direct_store, fail, running_service
from ops.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "backfill",
        help="judge a term of history from files day by day, as live, into ClickHouse (resumable)",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="[FORMAT:]FILE",
        help="event files (gzip is read as such); FORMAT: before a file overrides --format for it",
    )
    p.add_argument("--format", default="lde-jsonl", help="the files' format, as for lde ingest")
    p.add_argument("--user-map", metavar="FILE", help="canvas-web-logs: as for lde ingest")
    p.add_argument("--roster", help="roster CSV (default: the roster already loaded)")
    p.add_argument("--absences", help="absences CSV (default: the absences already loaded)")
    p.add_argument("--from", dest="first", help="first local day to judge (default: the first event's)")
    p.add_argument("--through", help="last local day to judge (default: the last event's)")
    p.add_argument("--work", help="folder for the day spool and the checkpoint (default: DATA_DIR/backfill)")
    p.add_argument(
        "--restart", action="store_true", help="forget an earlier run's spool and checkpoint, start again"
    )
    p.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=30.0,
        help="write the checkpoint after a day once this long has passed since the last (default 30; "
        "a crash judges at most that much again)",
    )
    p.add_argument(
        "--read-processes",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes reading the files (a large canonical file is read in as many pieces; default: "
        "up to 2)",
    )
    p.add_argument(
        "--apply-processes",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes applying the days' events, each a share of the partitions (default: up to 2)",
    )
    p.set_defaults(func=cmd_backfill)


def _inputs(args: argparse.Namespace, options: dict[str, dict[str, Any]]) -> list[Any] | str:
    from ops.runtime.backfill.spool import InputFile

    out = []
    for spec in args.files:
        name, _, rest = spec.partition(":")
        fmt, path = (name, Path(rest)) if rest and name in ADAPTERS else (args.format, Path(spec))
        if fmt not in ADAPTERS:
            return f"unknown format {fmt!r}; known: {', '.join(sorted(ADAPTERS))}"
        if not path.is_file():
            return f"{path}: no such file"
        out.append(InputFile(path, fmt, options.get(fmt)))
    return out


def _csv(path: str | None, loader: Any, kind: str) -> list[Any] | str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        return f"{path}: no such file"
    good = []
    for item in loader(Path(path)):
        if isinstance(item, CsvRowError):
            print(f"  invalid {kind} row {path}:{item.line}: {item.reason}", file=sys.stderr)
        else:
            good.append(item)
    return good


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from ops.cli.data import user_map_for
    from ops.edge.ingest import UpstreamBroken
    from ops.runtime.backfill.appliers import ApplierFailed
    from ops.runtime.backfill.checkpoint import CheckpointMismatch
    from ops.runtime.backfill.progress import ProgressBar
    from ops.runtime.backfill.run import NothingToJudge, backfill

    if running_service(settings) is not None:
        return fail(
            f"the service is running at {settings.service_url}: stop it for the backfill (it writes the "
            "same tables and judges the same days), then start it again to go on from the last day judged"
        )
    formats = {spec.partition(":")[0] for spec in args.files} | {args.format}
    users = user_map_for("canvas-web-logs" if "canvas-web-logs" in formats else args.format, args.user_map)
    if isinstance(users, str):
        return fail(users)
    options: dict[str, dict[str, Any]] = {"canvas-web-logs": {"users": users}} if users else {}
    if "caliper" in formats:  # the collector's Person id mapping, so a file counts like a POST
        from ops.edge.caliper_people import PersonMapUnusable, person_map

        try:
            options["caliper"] = {"people": person_map(settings)}
        except PersonMapUnusable as error:
            return fail(str(error))
    inputs = _inputs(args, options)
    if isinstance(inputs, str):
        return fail(inputs)
    roster_file = _csv(args.roster, load_roster, "roster")
    absences_file = _csv(args.absences, load_absences, "absences")
    if isinstance(roster_file, str):
        return fail(roster_file)
    if isinstance(absences_file, str):
        return fail(absences_file)
    try:
        first = date.fromisoformat(args.first) if args.first else None
        through = date.fromisoformat(args.through) if args.through else None
    except ValueError as error:
        return fail(f"--from/--through: {error}")
    store, where = direct_store(settings)
    try:
        roster: list[RosterRecord] = store.students() if roster_file is None else list(roster_file)
        absences: list[Absence] = store.all_absences() if absences_file is None else list(absences_file)
        if not roster:
            return fail("no roster: give --roster FILE, or load it first (lde roster load)")
        work = Path(args.work) if args.work else settings.data_dir / "backfill"
        bar = ProgressBar(sys.stderr, sys.stderr.isatty())
        print(f"backfill: {len(inputs)} files, {len(roster):,} students, writing {where}", file=sys.stderr)
        try:
            report = backfill(
                settings,
                store,
                inputs,
                roster,
                absences,
                work,
                bar,
                first,
                through,
                args.restart,
                args.checkpoint_seconds,
                args.read_processes,
                args.apply_processes,
            )
        except (CheckpointMismatch, NothingToJudge) as error:
            return fail(str(error))
        except ApplierFailed as error:
            return fail(f"{error}; its work folder may be damaged: run again with --restart")
        except UpstreamBroken as error:
            return fail(f"{error} (the backfill stopped; run it again once the file is fixed)", 3)
    finally:
        store.close()
    print("\n".join(report.lines()))
    return 0
