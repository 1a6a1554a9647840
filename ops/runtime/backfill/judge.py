"""`lde backfill`'s second step: the spooled days applied and judged one by one on the event-time
clock, with the pure cores the service's agents run, writing what they write.

For each local day, in order: the day's envelopes go through `streams.batch.process_batch` (the
activity agent's core: validation, de-duplication, day buckets, one state per student) and its
absolute counts to `activity_daily`; the states are trimmed as the agent trims them; then, from the
first day to judge, `streams.evaluator.Evaluator.judge_day` (the evaluator timer's core) judges
every rostered student, and its alerts, scores, rule memory, group statistics and progress go to
ClickHouse as the alerts agent and the evaluation loop write them. The checkpoint follows (see
ops.runtime.backfill.checkpoint). The watermark a live replay sends at the end of each day is what
the lateness limit and the trimming read here: the end of the day before.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from models.activity_columns import DayFigures
from models.evaluation import PartitionProgress
from models.partitioning import partition_for
from models.roster import Absence, RosterRecord
from ops.runtime.backfill.appliers import Applied, Applier, Appliers, StreamSettings, shares
from ops.runtime.backfill.checkpoint import Checkpoint
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from streams.batch import DeadLetter
from streams.evaluator import Evaluator, StudentView, cohort_rows

#: Activity rows per ClickHouse insert (a day of a large institution is a few hundred thousand).
ACTIVITY_INSERT_ROWS = 200_000


@dataclass(frozen=True, slots=True)
class DayDone:
    """What one day did: events applied, alerts raised (by rule), dead letters, whether judged."""

    day: date
    events: int
    alerts: Counter[str]
    dead_letters: int
    judged: bool


class DayJudge:
    """Applies and judges days in order from a checkpoint, keeping it up to date (see the module).

    Not thread-safe. `store` is written directly (no service runs beside a backfill); the states
    live in the partition shares' processes (ops.runtime.backfill.appliers). `close` when done."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        roster: Sequence[RosterRecord],
        absences: Sequence[Absence],
        checkpoint: Checkpoint,
        judge_from: date,
        work: Path,
        processes: int = 1,
    ) -> None:
        self.settings = settings
        self.store = store
        self.checkpoint = checkpoint
        self.judge_from = judge_from
        self.work = work
        self.evaluator = Evaluator(
            settings.rules, settings.engagement, memory=checkpoint.memory, already_raised=checkpoint.raised
        )
        away: dict[str, list[Absence]] = {}
        for absence in absences:
            away.setdefault(absence.student_id, []).append(absence)
        partitions = settings.partitions
        of = {r.student_id: partition_for(r.student_id, partitions) for r in roster}
        ordered = sorted(roster, key=lambda r: of[r.student_id])  # stable: roster order in a partition
        #: Every rostered student, partition by partition (as the evaluation loop lists them). The
        #: judgement reads their activity only through the figures the shares compute.
        self.views = [StudentView(r, tuple(away.get(r.student_id, ())), None) for r in ordered]
        lengths = self.evaluator.window_lengths(self.views)
        stream = StreamSettings(
            settings.timezone,
            partitions,
            settings.lateness_hours,
            settings.state_horizon_days,
            settings.event_time_window(None),
            settings.engagement.attendance_days,
            settings.engagement.offered_days,
        )
        appliers = []
        for share in shares(partitions, processes):
            rows = [n for n, r in enumerate(ordered) if of[r.student_id] in share]
            first, last = (rows[0], rows[-1] + 1) if rows else (0, 0)
            ids = [r.student_id for r in ordered[first:last]]
            appliers.append(Applier(stream, share, ids, lengths[first:last], judge_from))
        self.count = len(appliers)
        (work / "judged").mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="backfill-clickhouse")
        self._pending: list[Future[object]] = []
        self.appliers = Appliers(appliers)
        self._in_flight: date | None = None  # the day the shares are applying ahead of judging
        if checkpoint.parts:
            self.appliers.call("load", *[(work / name,) for name in checkpoint.parts])

    def run_day(
        self,
        day: date,
        inputs: Sequence[Path],
        first_day: date,
        save: bool = True,
        next_day: date | None = None,
    ) -> DayDone:
        """Apply the day's spooled envelopes (from every input, in input order), judge the day when
        it is one to judge, write it all and move the checkpoint past it (written to disk when
        `save`; otherwise a crash judges this day again from an earlier checkpoint, which writes the
        same rows). `first_day` is the first day applied (no watermark came before it).

        Unless it saves, the shares start on `next_day` while this process judges `day`: judging
        reads nothing of their states but the figures they already sent, and the trimming of
        `next_day` is told the progress `day` will make."""
        if self._in_flight != day:
            self._start_apply(day, inputs, first_day, self._progress())
        results: list[Applied] = self.appliers.receive()
        self._in_flight = None
        if next_day is not None and not save:
            self._start_apply(next_day, inputs, first_day, self._progress_after(day))
        judged = day >= self.judge_from
        rows = [row for result in results for row in result.rows]
        for start in range(0, len(rows), ACTIVITY_INSERT_ROWS):
            self._write(self.store.write_activity, rows[start : start + ACTIVITY_INSERT_ROWS])
        letters = self._dead_letters(day, [d for result in results for d in result.dead_letters])
        alerts: Counter[str] = Counter()
        if judged:
            figures = DayFigures.concat([r.figures for r in results if r.figures is not None])
            alerts = self._judge(day, figures)
        checkpoint = self.checkpoint
        checkpoint.through = day
        counts = checkpoint.counts
        applied = sum(result.applied for result in results)
        for name, value in (
            ("events_applied", applied),
            ("duplicates", sum(result.duplicates for result in results)),
            ("dead_letters", letters),
            ("alerts", sum(alerts.values())),
            ("days_judged", 1 if judged else 0),
        ):
            counts[name] = counts.get(name, 0) + value
        for rule, n in alerts.items():
            counts[f"alerts_{rule}"] = counts.get(f"alerts_{rule}", 0) + n
        if save:
            self.save()
        return DayDone(day, applied, alerts, letters, judged)

    def _start_apply(
        self, day: date, inputs: Sequence[Path], first_day: date, progress: PartitionProgress | None
    ) -> None:
        judged = day >= self.judge_from
        self.appliers.send("apply", *[(day, list(inputs), first_day, progress, judged)] * self.count)
        self._in_flight = day

    def _progress_after(self, day: date) -> PartitionProgress | None:
        """How far judging will have gone once `day` is run (see `_progress`)."""
        if day < self.judge_from:
            return self._progress()
        return PartitionProgress(self.checkpoint.started_on or day, day)

    def save(self) -> None:
        """Write the checkpoint as it stands (after the last day run): once every write of the days
        run is in ClickHouse, each share's states to a file of its own, then the checkpoint naming
        them (the commit: the files of the checkpoint before are removed after it)."""
        self.flush()
        through = self.checkpoint.through
        stamp = through.toordinal() if through else 0
        names = [f"states-{k}-{stamp}.bin" for k in range(self.count)]
        self.appliers.call("save", *[(self.work / name,) for name in names])
        self.checkpoint.parts = names
        self.checkpoint.save(self.work / "checkpoint.bin")
        for old in self.work.glob("states-*.bin"):
            if old.name not in names:
                old.unlink()

    def flush(self) -> None:
        """Wait for every ClickHouse write queued; raises the first that failed."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        self.appliers.close()
        self._writer.shutdown(wait=True)

    def _write(self, call: Callable[..., object], *args: object) -> None:
        """A ClickHouse write, on the writer thread (chDB works outside the GIL while this thread
        judges the next day), in the order queued."""
        self._pending.append(self._writer.submit(call, *args))
        if len(self._pending) >= 256:
            for future in [f for f in self._pending if f.done()]:
                future.result()
            self._pending = [f for f in self._pending if not f.done()]

    def _progress(self) -> PartitionProgress | None:
        """How far judging has gone (the trimming keeps what the next day to judge needs)."""
        checkpoint = self.checkpoint
        started, through = checkpoint.started_on, checkpoint.through
        if started is None or through is None or through < self.judge_from:
            return None
        return PartitionProgress(started, through)

    def _dead_letters(self, day: date, letters: list[DeadLetter]) -> int:
        """The day's dead letters from the stream's core, in their own file (rewritten if the day is
        judged again after a crash)."""
        path = self.work / "judged" / f"{day.isoformat()}.dead_letters.jsonl"
        if not letters:
            path.unlink(missing_ok=True)
            return 0
        with path.open("w") as out:
            for letter in letters:
                line = {
                    "reason": letter.reason,
                    "source": "activity",
                    "position": f"partition {letter.partition} message {letter.offset}"
                    + ("" if letter.index is None else f" event {letter.index}"),
                    "payload": letter.payload.decode(errors="replace"),
                }
                out.write(json.dumps(line) + "\n")
        return len(letters)

    # -- the evaluator's half ------------------------------------------------------------------------
    def _judge(self, day: date, figures: DayFigures) -> Counter[str]:
        s, store, checkpoint = self.settings, self.store, self.checkpoint
        if checkpoint.started_on is None:
            checkpoint.started_on = day
        views = self.views
        result = self.evaluator.judge_day(day, views, checkpoint.started_on, views, None, figures)
        write = self._write
        if result.alerts:
            write(store.write_alerts, result.alerts)
        if result.scores:
            write(store.write_scores, result.scores)
        if result.changed:
            memory = self.evaluator.memory
            changed = {sid: (memory[sid].to_json() if sid in memory else "") for sid in result.changed}
            write(store.write_memory, day, changed)
        stats = cohort_rows(day, result.groups)
        if stats:
            write(store.write_cohort_stats, stats)
        record = PartitionProgress(checkpoint.started_on, day)
        write(store.write_progresses, range(s.partitions), record)
        return Counter(alert.rule.value for alert in result.alerts)
