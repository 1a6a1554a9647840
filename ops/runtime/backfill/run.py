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
import resource
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from models.roster import Absence, RosterRecord
from models.timebuckets import days_between
from ops.runtime.backfill.checkpoint import Checkpoint, CheckpointMismatch
from ops.runtime.backfill.judge import DayJudge
from ops.runtime.backfill.progress import Figures, ProgressBar
from ops.runtime.backfill.spool import InputFile, SpooledFile, spool_file, spooled
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
    peak_rss_bytes: int = 0

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
            f"judging {self.judge_seconds:.1f} s); peak memory {self.peak_rss_bytes / 2**20:,.0f} MiB"
        )
        return out


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


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
) -> BackfillReport:
    """Backfill `inputs` into `store` (see the module). `roster` and `absences` are every student to
    judge and their approved absences; both are written to ClickHouse too, as `lde roster load`
    would have them stored. The checkpoint is written after the first day run at least
    `checkpoint_seconds` after the last one, and after the last day. Raises CheckpointMismatch
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
    identity = _identity(settings, inputs, roster, first)
    known = work / "identity.json"
    if known.exists() and json.loads(known.read_text()) != identity:
        raise CheckpointMismatch(
            f"{work} holds a backfill of other inputs or settings: give another --work folder, or "
            "--restart to judge these inputs from the beginning"
        )
    known.write_text(json.dumps(identity, sort_keys=True))
    report = BackfillReport()
    started = time.monotonic()
    folders = [work / "spool" / f"{n:04d}" for n in range(len(inputs))]
    report.inputs = _read_inputs(settings, inputs, folders, bar)
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
    judge = DayJudge(settings, store, roster, absences, checkpoint, judge_from, work)
    start = min(first_day, judge_from)
    days = [
        d
        for d in days_between(start, last)
        if (checkpoint.through is None or d > checkpoint.through)
        and (d >= judge_from or events_by_day.get(d.toordinal()))
    ]
    judging_started = time.monotonic()
    total_events = sum(events_by_day[d.toordinal()] for d in days)
    to_judge = sum(1 for d in days if d >= judge_from)
    done_events = done_days = 0
    saved = time.monotonic()
    for day in days:
        due = day == days[-1] or time.monotonic() - saved >= checkpoint_seconds
        done = judge.run_day(day, folders, first_day, save=due)
        if due:
            saved = time.monotonic()
        done_events += events_by_day.get(day.toordinal(), 0)
        done_days += 1 if done.judged else 0
        elapsed = time.monotonic() - judging_started
        # Work done: events applied, and each day judged worth a day's share of the events.
        per_day = total_events / to_judge if to_judge else 0.0
        bar.show(
            Figures(
                "judge",
                done_events + done_days * per_day,
                total_events + to_judge * per_day,
                done_events,
                done_days,
                to_judge,
                elapsed,
                elapsed,
            ),
            final=day == days[-1],
        )
    report.judge_seconds = time.monotonic() - judging_started
    counts = checkpoint.counts
    report.events_applied = counts.get("events_applied", 0)
    report.days_judged = counts.get("days_judged", 0)
    report.alerts = Counter(
        {k.removeprefix("alerts_"): v for k, v in counts.items() if k.startswith("alerts_")}
    )
    report.dead_letters, report.dead_letters_path = _gather_dead_letters(work, folders)
    report.peak_rss_bytes = peak_rss_bytes()
    return report


def _read_inputs(
    settings: Settings, inputs: Sequence[InputFile], folders: Sequence[Path], bar: ProgressBar
) -> list[SpooledFile]:
    """Spool every input not spooled yet (a folder cut short by a crash is read again)."""
    sizes = [item.path.stat().st_size for item in inputs]
    total = sum(sizes)
    window = settings.event_time_window(None)
    out: list[SpooledFile] = []
    before = 0  # bytes of the inputs done
    events_before = 0
    started = time.monotonic()
    for item, folder, size in zip(inputs, folders, sizes, strict=True):
        done = spooled(folder)
        if done is None:
            base_bytes, base_events = before, events_before

            def show(position: int, accepted: int, base: int = base_bytes, events: int = base_events) -> None:
                elapsed = time.monotonic() - started
                bar.show(Figures("read", base + position, total, events + accepted, 0, 0, elapsed))

            done = spool_file(
                item,
                folder,
                partitions=settings.partitions,
                max_events=settings.envelope_max_events,
                timezone=settings.timezone,
                window=window,
                on_progress=show,
            )
        out.append(done)
        before += size
        events_before += done.accepted
    bar.show(Figures("read", total, total, events_before, 0, 0, time.monotonic() - started), final=True)
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
