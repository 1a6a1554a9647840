"""`lde backfill`: a term (or any span) of history from files, judged day by day on the event-time
clock with the service's own cores, into the service's ClickHouse tables, resumable after a crash.

Two steps (see ops.runtime.backfill.spool and .judge): every input read once into envelopes by
local day, then each day applied and judged in order, a checkpoint after each. A second run with
the same inputs continues where the first stopped: files already spooled are not read again, days
already judged are not judged again.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import resource
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from models.roster import Absence, RosterRecord
from models.timebuckets import days_between
from ops.runtime.backfill.checkpoint import Checkpoint, CheckpointMismatch
from ops.runtime.backfill.judge import DayJudge
from ops.runtime.backfill.progress import Figures, ProgressBar
from ops.runtime.backfill.spool import (
    InputFile,
    SpooledFile,
    init_reader,
    pieces,
    spool_file,
    spool_task,
    spooled,
)
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore


class NothingToJudge(ValueError):
    """The inputs hold no event on or before the last day to judge, or the days given are reversed."""


@dataclass
class BackfillReport:
    """What a backfill did (this run and the runs it continued)."""

    inputs: list[SpooledFile] = field(default_factory=list)
    first: date | None = None
    through: date | None = None
    events_applied: int = 0
    events_after_through: int = 0
    days_judged: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    dead_letters_path: Path | None = None
    resumed_after: date | None = None  # the last day judged before this run, when it continued
    read_seconds: float = 0.0
    judge_seconds: float = 0.0
    peak_rss_bytes: int = 0  # this process's
    helper_peak_rss_bytes: int = 0  # the largest of its reading and applying processes'

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.inputs)

    def lines(self) -> list[str]:
        invalid = sum(f.invalid for f in self.inputs)
        skipped: Counter[str] = Counter()
        for spooled_file in self.inputs:
            skipped.update(spooled_file.skipped)
        out = [
            f"read:        {self.accepted:,} events accepted, "
            f"{sum(f.duplicates for f in self.inputs):,} duplicates, "
            f"{sum(skipped.values()):,} skipped, {invalid:,} invalid",
        ]
        out += [f"  skipped {reason}: {n:,}" for reason, n in sorted(skipped.items())]
        if self.resumed_after is not None:
            out.append(f"continued:   after {self.resumed_after} (judged by an earlier run)")
        out.append(
            f"judged:      {self.first} to {self.through}: {self.days_judged} days, "
            f"{self.events_applied:,} events applied"
        )
        if self.events_after_through:
            out.append(f"  not applied: {self.events_after_through:,} events after {self.through}")
        rules = ", ".join(f"{rule} {n:,}" for rule, n in sorted(self.alerts.items())) or "none"
        out.append(f"alerts:      {sum(self.alerts.values()):,} ({rules}); stored, not sent")
        where = f" in {self.dead_letters_path}" if self.dead_letters_path else ""
        out.append(f"dead letters: {self.dead_letters:,}{where}")
        total = self.read_seconds + self.judge_seconds
        out.append(
            f"time:        {total:.1f} s (reading {self.read_seconds:.1f} s, "
            f"judging {self.judge_seconds:.1f} s); peak memory {self.peak_rss_bytes / 2**20:,.0f} MiB "
            f"(this process; its largest helper process {self.helper_peak_rss_bytes / 2**20:,.0f} MiB)"
        )
        return out


def peak_rss_bytes(who: int = resource.RUSAGE_SELF) -> int:
    """This process's peak resident memory, or (RUSAGE_CHILDREN) the largest of its ended child
    processes' (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss * 1024


def _identity(
    settings: Settings, inputs: Sequence[InputFile], roster: Sequence[RosterRecord], first: date | None
) -> dict[str, Any]:
    """What a checkpoint is valid for: the inputs, the roster, the first day and the settings that
    shape the envelopes and days (a later --through may extend a finished backfill)."""
    digest = hashlib.sha256()
    for record in roster:
        digest.update(record.model_dump_json().encode())
    return {
        "inputs": [item.identity() for item in inputs],
        "roster_sha256": digest.hexdigest(),
        "first": first.isoformat() if first else None,
        "partitions": settings.partitions,
        "timezone": settings.timezone,
        "envelope_max_events": settings.envelope_max_events,
    }


def backfill(
    settings: Settings,
    store: ClickHouseStore,
    inputs: Sequence[InputFile],
    roster: Sequence[RosterRecord],
    absences: Sequence[Absence],
    work: Path,
    bar: ProgressBar,
    first: date | None = None,
    through: date | None = None,
    restart: bool = False,
    checkpoint_seconds: float = 30.0,
    read_processes: int = 1,
    apply_processes: int = 1,
) -> BackfillReport:
    """Backfill `inputs` into `store` (see the module). `roster` and `absences` are every student to
    judge and their approved absences; both are written to ClickHouse too, as `lde roster load`
    would have them stored. The checkpoint is written after the first day run at least
    `checkpoint_seconds` after the last one, and after the last day. The files are read on
    `read_processes` processes (a large canonical file in as many pieces), and the days applied on
    `apply_processes` (each a share of the partitions) while this one judges. Raises CheckpointMismatch
    when `work` holds another backfill (unless `restart`), NothingToJudge when there is nothing to
    judge, UpstreamBroken from a broken export."""
    # The event-time clock, whatever the service runs on: "now" is the end of the day before the one
    # applied (the watermark of a live replay), and event times have no upper bound of their own.
    settings = settings.model_copy(update={"clock": "event"})
    if restart and work.exists():
        for name in ("spool", "judged", "checkpoint.bin", "identity.json", "dead_letters.jsonl"):
            path = work / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    identity = _identity(settings, inputs, roster, first) | {
        "read_processes": read_processes,
        "apply_processes": apply_processes,
    }
    known = work / "identity.json"
    if known.exists() and json.loads(known.read_text()) != identity:
        raise CheckpointMismatch(
            f"{work} holds a backfill of other inputs or settings: give another --work folder, or "
            "--restart to judge these inputs from the beginning"
        )
    known.write_text(json.dumps(identity, sort_keys=True))
    report = BackfillReport()
    started = time.monotonic()
    parts = [piece for item in inputs for piece in pieces(item, read_processes)]
    folders = [work / "spool" / f"{n:04d}" for n in range(len(parts))]
    report.inputs = _read_inputs(settings, parts, folders, bar, read_processes)
    report.read_seconds = time.monotonic() - started

    events_by_day: Counter[int] = Counter()
    for spooled_file in report.inputs:
        events_by_day.update(spooled_file.events_by_day)
    if not events_by_day:
        raise NothingToJudge("the inputs hold no event to backfill")
    first_day = date.fromordinal(min(events_by_day))
    judge_from = first or first_day
    last = through or date.fromordinal(max(events_by_day))
    if judge_from > last:
        raise NothingToJudge(f"the first day to judge ({judge_from}) is after the last ({last})")
    report.first, report.through = judge_from, last
    report.events_after_through = sum(n for d, n in events_by_day.items() if d > last.toordinal())

    checkpoint = Checkpoint.load(work / "checkpoint.bin", identity)
    report.resumed_after = checkpoint.through
    if checkpoint.through is None:
        store.write_students(roster)
        store.write_absences(absences)
    judge = DayJudge(settings, store, roster, absences, checkpoint, judge_from, work, apply_processes)
    start = min(first_day, judge_from)
    days = [
        d
        for d in days_between(start, last)
        if (checkpoint.through is None or d > checkpoint.through)
        and (d >= judge_from or events_by_day.get(d.toordinal()))
    ]
    judging_started = time.monotonic()
    try:
        _judge_days(judge, days, folders, first_day, checkpoint_seconds, bar, events_by_day, judge_from)
    finally:
        judge.close()
    report.judge_seconds = time.monotonic() - judging_started
    counts = checkpoint.counts
    report.events_applied = counts.get("events_applied", 0)
    report.days_judged = counts.get("days_judged", 0)
    report.alerts = Counter(
        {k.removeprefix("alerts_"): v for k, v in counts.items() if k.startswith("alerts_")}
    )
    report.dead_letters, report.dead_letters_path = _gather_dead_letters(work, folders)
    # Every day is judged: the spool (the events, personal data) goes; a later --through reads the
    # files again, the checkpoint keeps the rest.
    shutil.rmtree(work / "spool", ignore_errors=True)
    report.peak_rss_bytes = peak_rss_bytes()
    report.helper_peak_rss_bytes = peak_rss_bytes(resource.RUSAGE_CHILDREN)
    return report


def _judge_days(
    judge: DayJudge,
    days: Sequence[date],
    folders: Sequence[Path],
    first_day: date,
    checkpoint_seconds: float,
    bar: ProgressBar,
    events_by_day: Counter[int],
    judge_from: date,
) -> None:
    """Run each day, a checkpoint at most every `checkpoint_seconds` and after the last, the bar
    showing events applied and days judged (each day judged weighs a day's share of the events)."""
    started = saved = time.monotonic()
    total_events = sum(events_by_day[d.toordinal()] for d in days)
    to_judge = sum(1 for d in days if d >= judge_from)
    per_day = total_events / to_judge if to_judge else 0.0
    done_events = done_days = 0
    for n, day in enumerate(days):
        last = n == len(days) - 1
        due = last or time.monotonic() - saved >= checkpoint_seconds
        done = judge.run_day(day, folders, first_day, save=due, next_day=None if last else days[n + 1])
        if due:
            saved = time.monotonic()
        done_events += events_by_day.get(day.toordinal(), 0)
        done_days += 1 if done.judged else 0
        elapsed = time.monotonic() - started
        work = done_events + done_days * per_day
        figures = Figures(
            "judge",
            work,
            total_events + to_judge * per_day,
            done_events,
            done_days,
            to_judge,
            elapsed,
            elapsed,
        )
        bar.show(figures, final=last)


def _read_inputs(
    settings: Settings,
    inputs: Sequence[InputFile],
    folders: Sequence[Path],
    bar: ProgressBar,
    processes: int,
) -> list[SpooledFile]:
    """Spool every input piece not spooled yet (a folder cut short by a crash is read again), on
    `processes` processes (in this one when 1)."""
    sizes = [item.size for item in inputs]
    total = sum(sizes)
    window = settings.event_time_window(None)
    found: list[SpooledFile | None] = [spooled(folder) for folder in folders]
    todo = [n for n, done in enumerate(found) if done is None]
    started = time.monotonic()
    base_bytes = sum(size for size, done in zip(sizes, found, strict=True) if done is not None)
    base_events = 0  # the bar counts (and rates) what this run reads
    args = (settings.partitions, settings.envelope_max_events, settings.timezone, window)
    if processes <= 1 or len(todo) <= 1:
        for n in todo:
            before, events = base_bytes, base_events

            def show(position: int, accepted: int, before: int = before, events: int = events) -> None:
                elapsed = time.monotonic() - started
                bar.show(Figures("read", before + position, total, events + accepted, 0, 0, elapsed))

            found[n] = spool_file(
                inputs[n],
                folders[n],
                partitions=args[0],
                max_events=args[1],
                timezone=args[2],
                window=window,
                on_progress=show,
            )
            base_bytes += sizes[n]
            base_events += found[n].accepted  # type: ignore[union-attr]
    else:
        context = multiprocessing.get_context("spawn")  # the parent holds chDB's threads: no fork
        shared = context.Array("q", 2 * len(inputs), lock=False)
        with ProcessPoolExecutor(processes, context, initializer=init_reader, initargs=(shared,)) as pool:
            futures = {pool.submit(spool_task, n, inputs[n], folders[n], *args): n for n in todo}
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5)
                done_bytes = base_bytes + sum(shared[2 * n] for n in todo)
                events = base_events + sum(shared[2 * n + 1] for n in todo)
                bar.show(Figures("read", done_bytes, total, events, 0, 0, time.monotonic() - started))
            for future, n in futures.items():
                found[n] = future.result()  # a reading process's error (UpstreamBroken) is raised here
    out = [done for done in found if done is not None]
    accepted = sum(out[n].accepted for n in todo)
    bar.show(Figures("read", total, total, accepted, 0, 0, time.monotonic() - started), final=True)
    return out


def _gather_dead_letters(work: Path, folders: Sequence[Path]) -> tuple[int, Path | None]:
    """Every dead letter of the inputs and of the days judged, in one file (None when there are none)."""
    path = work / "dead_letters.jsonl"
    count = 0
    with path.open("w") as out:
        sources = [folder / "dead_letters.jsonl" for folder in folders]
        sources += sorted((work / "judged").glob("*.dead_letters.jsonl"))
        for source in sources:
            if source.exists():
                with source.open() as lines:
                    for line in lines:
                        out.write(line)
                        count += 1
    if not count:
        path.unlink()
        return 0, None
    return count, path
