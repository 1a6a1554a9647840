"""The evaluator's input read from the tables: every rostered student of the owned partitions (silent
ones included) and their window figures."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from models.activity_columns import DayFigures, day_figures
from models.partitioning import partition_for
from models.roster import Absence, RosterRecord
from streams import faust_compat
from streams.evaluator import Evaluator, StudentView

log = logging.getLogger("lde.stream")

#: Students whose state the evaluator reads between two turns of the event loop.
FIGURES_CHUNK = 16_384


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A student's roster and absences as parsed for the evaluator, with the table values they came
    from (a replaced value means a changed record)."""

    roster_value: Any
    absences_value: Any
    record: RosterRecord
    absences: tuple[Absence, ...]
    partition: int


class RosterViews:
    """Reads the roster, absences and activity tables for the evaluator (see `views`)."""

    def __init__(self, roster: Any, absences: Any, activity: Any, partitions: int) -> None:
        self.roster = roster
        self.absences = absences
        self.activity = activity
        self.partitions = partitions
        self._parsed: dict[str, _Parsed] = {}
        #: Table values that no longer validate (written by an older release: an identifier outside
        #: models.identifiers' pattern), by student: left out, and logged once per value.
        self._refused: dict[str, Any] = {}

    def views(self, owned: set[int]) -> dict[int, list[StudentView]]:
        """Every rostered student of the owned partitions, silent ones included.

        Reads the tables' in-memory dicts directly (a million Table.get calls, each through Faust's
        sensors, would cost seconds) and keeps each student's parsed roster record and absences
        until the table value behind them is replaced.
        """
        views: dict[int, list[StudentView]] = defaultdict(list)
        roster = faust_compat.table_dict(self.roster)
        absences = faust_compat.table_dict(self.absences)
        states = faust_compat.table_dict(self.activity)
        cache = self._parsed
        partitions = self.partitions
        for key, value in list(roster.items()):
            student_id = key.decode() if isinstance(key, bytes) else str(key)
            raw_absences = absences.get(key)
            parsed = cache.get(student_id)
            if (
                parsed is None
                or parsed.roster_value is not value
                or parsed.absences_value is not raw_absences
            ):
                try:
                    record = RosterRecord.model_validate(value)
                    away = tuple(Absence.model_validate(a) for a in raw_absences or [])
                except ValidationError:
                    if self._refused.get(student_id) is not value:
                        self._refused[student_id] = value
                        log.warning(
                            "roster_record_refused: a stored record no longer validates; load it again"
                        )
                    continue
                parsed = cache[student_id] = _Parsed(
                    value, raw_absences, record, away, partition_for(student_id, partitions)
                )
            if parsed.partition in owned:
                views[parsed.partition].append(StudentView(parsed.record, parsed.absences, states.get(key)))
        if len(cache) > len(roster):  # students erased or moved away: forget their parsed records
            for student_id in [sid for sid in cache if sid not in roster]:
                del cache[student_id]
        return views


async def read_figures(
    evaluator: Evaluator, day_ordinal: int, everyone: list[StudentView], attendance_days: int
) -> DayFigures:
    """Everyone's window counts from the activity table, a chunk of students at a time: the agents
    change the same state objects, so this read runs on the event loop, letting it breathe between
    chunks; everything after it (judge_day) can then run in a thread."""
    lengths = evaluator.window_lengths(everyone)
    parts: list[DayFigures] = []
    for start in range(0, len(everyone), FIGURES_CHUNK):
        chunk = everyone[start : start + FIGURES_CHUNK]
        lengths_here = lengths[start : start + FIGURES_CHUNK]
        states = [v.activity for v in chunk]
        offered = evaluator.engagement.offered_days
        parts.append(day_figures(states, day_ordinal, lengths_here, attendance_days, offered_days=offered))
        await asyncio.sleep(0)
    return DayFigures.concat(parts)
