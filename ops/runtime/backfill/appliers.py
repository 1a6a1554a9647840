"""The stream's half of a backfill, a share of the partitions per process: each process keeps its
students' activity state, applies each day's envelopes of its partitions with the activity agent's
core (`streams.batch.process_batch`), trims the states as the agent does, and hands back the day's
absolute counts for ClickHouse, its dead letters and its students' window figures, which is all
the evaluator reads of their state (`Evaluator.judge_day` with `figures`). State is per partition
in the service too, so the shares never meet: on a two-core machine two processes apply a day in
about half the time, while the parent judges and writes.

`Applier` is the share itself (plain, usable in one process); `Appliers` runs N of them in
processes of their own and talks to them over pipes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models.activity import StudentActivity
from models.activity_columns import DayFigures, day_figures
from models.evaluation import PartitionProgress
from models.event_time import TimeWindow
from models.timebuckets import day_end, zone
from ops.runtime.backfill.checkpoint import Checkpoint
from ops.runtime.backfill.spool import read_day
from streams.agents.activity import oldest_day_to_keep
from streams.batch import DeadLetter, RawMessage, oldest_accepted_days, process_batch


@dataclass(frozen=True)
class StreamSettings:
    """What the stream's half needs of the settings (plain values: they cross to other processes)."""

    timezone: str
    partitions: int
    lateness_hours: int
    state_horizon_days: int
    window: TimeWindow  # the accepted event times (the event clock's: a floor, no upper bound)
    attendance_days: int
    offered_days: int | None


@dataclass
class Applied:
    """One day of one share: what to write, what to dead-letter, and the students' figures."""

    rows: list[tuple[str, int, list[int], int]]
    dead_letters: list[DeadLetter]
    applied: int
    duplicates: int
    figures: DayFigures | None = None
    forgotten: list[str] = field(default_factory=list)


class Applier:
    """The states of some partitions' students, a day at a time (see the module)."""

    def __init__(
        self,
        settings: StreamSettings,
        partitions: frozenset[int],
        student_ids: Sequence[str],
        lengths: NDArray[np.int64],
        judge_from: date,
        states: dict[str, StudentActivity] | None = None,
        offsets: dict[int, int] | None = None,
    ) -> None:
        self.settings = settings
        self.partitions = partitions
        self.student_ids = list(student_ids)
        self.lengths = lengths
        self.judge_from = judge_from
        self.states: dict[str, StudentActivity] = states if states is not None else {}
        self.offsets: dict[int, int] = offsets if offsets is not None else {}
        self.tz = zone(settings.timezone)

    def apply(
        self,
        day: date,
        folders: Sequence[Path],
        first_day: date,
        progress: PartitionProgress | None,
        judge: bool,
    ) -> Applied:
        """Apply the day's envelopes of this share's partitions (from every input, in input order) as
        the activity agent would when a live replay sends them: the watermark is the end of the day
        before (none before the first day). With `judge`, also the students' figures for the day."""
        s = self.settings
        mine, offsets = self.partitions, self.offsets
        messages: list[RawMessage] = []
        for folder in folders:
            for partition, value in read_day(folder, day.toordinal()):
                if partition in mine:
                    offset = offsets.get(partition, 0)
                    offsets[partition] = offset + 1
                    messages.append(RawMessage(partition, offset, value))
        reference: datetime | None = None if day <= first_day else day_end(day - timedelta(days=1), self.tz)
        oldest = oldest_accepted_days(
            dict.fromkeys(mine, reference), timedelta(hours=s.lateness_hours), self.tz
        )
        states = self.states
        outcome = process_batch(messages, states.get, self.tz, s.partitions, oldest, s.window)
        evaluated = dict.fromkeys(mine, progress) if progress is not None else {}
        keep_from = oldest_day_to_keep(
            reference, self.tz, set(mine), evaluated, self.judge_from, s.state_horizon_days
        )
        for student_id, state in outcome.states.items():
            if keep_from is not None:
                state.trim(keep_from, oldest.get(outcome.partition_of[student_id]))
            states[student_id] = state
        for student_id in outcome.forget:
            states.pop(student_id, None)
        applied = Applied(
            outcome.rows,
            outcome.dead_letters,
            sum(outcome.applied_by_source.values()),
            outcome.duplicates,
            forgotten=list(outcome.forget),
        )
        if judge:
            applied.figures = day_figures(
                [states.get(sid) for sid in self.student_ids],
                day.toordinal(),
                self.lengths,
                s.attendance_days,
                offered_days=s.offered_days,
            )
        return applied

    def save(self, path: Path) -> None:
        Checkpoint({"partitions": sorted(self.partitions)}, offsets=self.offsets, states=self.states).save(
            path
        )

    def load(self, path: Path) -> None:
        """The states a checkpoint named (FileNotFoundError when the file is gone: never start the
        share's students afresh under a checkpoint that has judged days with them)."""
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: the checkpoint's states of partitions {sorted(self.partitions)}"
            )
        found = Checkpoint.load(path, {"partitions": sorted(self.partitions)})
        self.states.clear()
        self.states.update(found.states)
        self.offsets.clear()
        self.offsets.update(found.offsets)


def shares(partitions: int, processes: int) -> list[frozenset[int]]:
    """The partitions cut into `processes` runs of consecutive numbers (none empty)."""
    count = max(1, min(processes, partitions))
    return [frozenset(range(k * partitions // count, (k + 1) * partitions // count)) for k in range(count)]


def _serve(connection: Connection, applier: Applier) -> None:
    """A share's process: run each command the parent sends until told to stop. An error goes back
    to the parent (which raises it) and ends the process."""
    from streams.gc_pause import collector_paused

    with collector_paused():  # the states live for the whole run; collections would walk them all
        while True:
            command, args = connection.recv()
            try:
                if command == "stop":
                    return
                result: Any = getattr(applier, command)(*args)
            except BaseException as error:
                connection.send(("error", repr(error)))
                raise
            connection.send(("ok", result))


class ApplierFailed(RuntimeError):
    """A share's process failed (its error, or its end, is the message)."""


class Appliers:
    """N shares in processes of their own (spawned: the parent holds chDB's threads). Each command
    goes to every share at once, and the answers come back in share order."""

    def __init__(self, appliers: Sequence[Applier]) -> None:
        context = multiprocessing.get_context("spawn")
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        for applier in appliers:
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, applier), daemon=True)
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)

    def call(self, command: str, *per_share: tuple[Any, ...]) -> list[Any]:
        """`command` on every share (share k with `per_share[k]`, else no arguments); their results."""
        self.send(command, *per_share)
        return self.receive()

    def send(self, command: str, *per_share: tuple[Any, ...]) -> None:
        """Start `command` on every share (see `call`); `receive` gives the results."""
        for k, connection in enumerate(self._connections):
            connection.send((command, per_share[k] if per_share else ()))

    def receive(self) -> list[Any]:
        """The results of the command sent last, in share order (ApplierFailed when one failed)."""
        out = []
        for k, connection in enumerate(self._connections):
            try:
                status, result = connection.recv()
            except EOFError:
                raise ApplierFailed(f"the process of partition share {k} ended") from None
            if status != "ok":
                raise ApplierFailed(f"partition share {k}: {result}")
            out.append(result)
        return out

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(BrokenPipeError, OSError):  # already gone: joined below
                connection.send(("stop", ()))
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
