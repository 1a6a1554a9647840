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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from models.evaluation import PartitionProgress
from models.partitioning import partition_for
from models.roster import Absence, RosterRecord
from models.timebuckets import day_end, zone
from ops.runtime.backfill.checkpoint import Checkpoint
from ops.runtime.backfill.spool import read_day
from ops.settings import Settings
from sinks.clickhouse import ClickHouseStore
from streams.agents.activity import oldest_day_to_keep
from streams.batch import BatchOutcome, DeadLetter, RawMessage, oldest_accepted_days, process_batch
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

    Not thread-safe. `store` is written directly (no service runs beside a backfill)."""

    def __init__(
        self,
        settings: Settings,
        store: ClickHouseStore,
        roster: Sequence[RosterRecord],
        absences: Sequence[Absence],
        checkpoint: Checkpoint,
        judge_from: date,
        work: Path,
    ) -> None:
        self.settings = settings
        self.store = store
        self.tz = zone(settings.timezone)
        self.checkpoint = checkpoint
        self.judge_from = judge_from
        self.work = work
        self.states = checkpoint.states
        self.evaluator = Evaluator(
            settings.rules, settings.engagement, memory=checkpoint.memory, already_raised=checkpoint.raised
        )
        away: dict[str, list[Absence]] = {}
        for absence in absences:
            away.setdefault(absence.student_id, []).append(absence)
        partitions = settings.partitions
        by_partition: dict[int, list[tuple[RosterRecord, tuple[Absence, ...]]]] = {}
        for record in roster:
            student = (record, tuple(away.get(record.student_id, ())))
            by_partition.setdefault(partition_for(record.student_id, partitions), []).append(student)
        #: Every rostered student, partition by partition (as the evaluation loop lists them).
        self.students = [s for p in sorted(by_partition) for s in by_partition[p]]
        (work / "judged").mkdir(parents=True, exist_ok=True)

    def run_day(self, day: date, inputs: Sequence[Path], first_day: date, save: bool = True) -> DayDone:
        """Apply the day's spooled envelopes (from every input, in input order), judge the day when
        it is one to judge, write it all and move the checkpoint past it (written to disk when
        `save`; otherwise a crash judges this day again from an earlier checkpoint, which writes the
        same rows). `first_day` is the first day applied (no watermark came before it)."""
        outcome = self._apply(day, inputs, first_day)
        letters = self._dead_letters(day, outcome.dead_letters)
        alerts: Counter[str] = Counter()
        judged = day >= self.judge_from
        if judged:
            alerts = self._judge(day)
        checkpoint = self.checkpoint
        checkpoint.through = day
        counts = checkpoint.counts
        applied = sum(outcome.applied_by_source.values())
        for name, value in (
            ("events_applied", applied),
            ("duplicates", outcome.duplicates),
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

    def save(self) -> None:
        """Write the checkpoint as it stands (after the last day run)."""
        self.checkpoint.save(self.work / "checkpoint.bin")

    # -- the stream's half ---------------------------------------------------------------------------
    def _apply(self, day: date, inputs: Sequence[Path], first_day: date) -> BatchOutcome:
        s = self.settings
        offsets = self.checkpoint.offsets
        messages: list[RawMessage] = []
        for folder in inputs:
            for partition, value in read_day(folder, day.toordinal()):
                offset = offsets.get(partition, 0)
                offsets[partition] = offset + 1
                messages.append(RawMessage(partition, offset, value))
        # The watermark of a live replay when this day's events arrive: the end of the day before.
        reference = None if day <= first_day else day_end(day - timedelta(days=1), self.tz)
        everything = set(range(s.partitions))
        oldest = oldest_accepted_days(
            dict.fromkeys(everything, reference), timedelta(hours=s.lateness_hours), self.tz
        )
        states = self.states
        outcome = process_batch(
            messages, states.get, self.tz, s.partitions, oldest, s.event_time_window(reference)
        )
        rows = outcome.rows
        for start in range(0, len(rows), ACTIVITY_INSERT_ROWS):
            self.store.write_activity(rows[start : start + ACTIVITY_INSERT_ROWS])
        progress = self._progress()
        keep_from = oldest_day_to_keep(
            reference, self.tz, everything, progress, self.judge_from, s.state_horizon_days
        )
        for student_id, state in outcome.states.items():
            if keep_from is not None:
                state.trim(keep_from, oldest.get(outcome.partition_of[student_id]))
            states[student_id] = state
        for student_id in outcome.forget:
            states.pop(student_id, None)
        return outcome

    def _progress(self) -> dict[int, PartitionProgress]:
        checkpoint = self.checkpoint
        started, through = checkpoint.started_on, checkpoint.through
        if started is None or through is None or through < self.judge_from:
            return {}
        record = PartitionProgress(started, through)
        return dict.fromkeys(range(self.settings.partitions), record)

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
    def _judge(self, day: date) -> Counter[str]:
        s, store, checkpoint = self.settings, self.store, self.checkpoint
        if checkpoint.started_on is None:
            checkpoint.started_on = day
        states = self.states
        views = [StudentView(record, away, states.get(record.student_id)) for record, away in self.students]
        figures = self.evaluator.read_figures(day, views)
        result = self.evaluator.judge_day(day, views, checkpoint.started_on, views, None, figures)
        if result.alerts:
            store.write_alerts(result.alerts)
        if result.scores:
            store.write_scores(result.scores)
        if result.changed:
            memory = self.evaluator.memory
            store.write_memory(
                day, {sid: (memory[sid].to_json() if sid in memory else "") for sid in result.changed}
            )
        stats = cohort_rows(day, result.groups)
        if stats:
            store.write_cohort_stats(stats)
        record = PartitionProgress(checkpoint.started_on, day)
        for partition in range(s.partitions):
            store.write_progress(partition, record)
        return Counter(alert.rule.value for alert in result.alerts)
