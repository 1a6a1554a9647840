"""What the evaluator keeps and writes: rule memory per student, standings per day, progress per
partition. Plain data with no I/O, shared by the evaluator (streams) and the ClickHouse store (sinks)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from models.alerts import Rule


@dataclass(slots=True)
class Episode:
    """An open alert episode: raised once, closed by re-engagement, escalated once if it lasts."""

    episode_start: date
    raised_on: date
    escalated: bool = False


@dataclass(slots=True)
class StudentMemory:
    """What the rules remember about a student between days (persisted by the caller)."""

    episodes: dict[Rule, Episode] = field(default_factory=dict)
    low_streak: int = 0
    closed_on: dict[Rule, date] = field(default_factory=dict)  # cool-down: when each rule last closed
    low_days: list[date] = field(default_factory=list)  # days low engagement held, the last 14 days
    low_run_far_below: bool = False  # a day of the current low run (low_streak) was under the alert line

    def is_empty(self) -> bool:
        return (
            not self.episodes
            and self.low_streak == 0
            and not self.closed_on
            and not self.low_days
            and not self.low_run_far_below
        )

    def end_low_run(self) -> None:
        """No low-engagement run goes on (an exemption, days away, a silence): its count and whether
        it fell under the alert line both start again."""
        self.low_streak = 0
        self.low_run_far_below = False

    def cooling_down(self, rule: Rule, day: date, cooldown_days: int) -> bool:
        """True while a closed episode of `rule` is more recent than the cool-down period."""
        closed = self.closed_on.get(rule)
        return closed is not None and (day - closed).days < cooldown_days

    def snapshot(self) -> tuple[Any, ...]:
        """A cheap comparable copy (to tell whether a day changed the memory)."""
        return (
            tuple((r, e.episode_start, e.raised_on, e.escalated) for r, e in self.episodes.items()),
            self.low_streak,
            tuple(self.closed_on.items()),
            tuple(self.low_days),
            self.low_run_far_below,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "episodes": {
                    rule.value: [e.episode_start.isoformat(), e.raised_on.isoformat(), e.escalated]
                    for rule, e in self.episodes.items()
                },
                "low_streak": self.low_streak,
                "closed_on": {rule.value: day.isoformat() for rule, day in self.closed_on.items()},
                "low_days": [day.isoformat() for day in self.low_days],
                # Written only when set: memories stored before the alert line read the same.
                **({"low_run_far_below": True} if self.low_run_far_below else {}),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> StudentMemory:
        data = json.loads(text)
        episodes = {
            Rule(rule): Episode(date.fromisoformat(start), date.fromisoformat(raised), bool(escalated))
            for rule, (start, raised, escalated) in data.get("episodes", {}).items()
        }
        closed = {Rule(rule): date.fromisoformat(day) for rule, day in data.get("closed_on", {}).items()}
        low_days = [date.fromisoformat(day) for day in data.get("low_days", [])]
        return cls(
            episodes=episodes,
            low_streak=int(data.get("low_streak", 0)),
            closed_on=closed,
            low_days=low_days,
            low_run_far_below=bool(data.get("low_run_far_below", False)),
        )


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """A student's standing on a day (the daily_scores table)."""

    day: date
    student_id: str
    score: float
    band: str
    basis: str
    overall_percentile: float


@dataclass(frozen=True, slots=True)
class ScoreColumns:
    """Every judged member's standing on a day, as columns (a million rows must not be a million
    objects): the daily_scores table."""

    day: date
    student_ids: list[str]
    scores: list[float]
    bands: list[str]
    bases: list[str]
    overall_percentiles: list[float]

    def __len__(self) -> int:
        return len(self.student_ids)

    def __iter__(self) -> Iterator[ScoreRow]:
        for i, sid in enumerate(self.student_ids):
            yield ScoreRow(
                self.day, sid, self.scores[i], self.bands[i], self.bases[i], self.overall_percentiles[i]
            )

    @classmethod
    def empty(cls, day: date) -> ScoreColumns:
        return cls(day, [], [], [], [], [])


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """How far the evaluator has judged one partition, and the day it started judging it."""

    started_on: date
    evaluated_through: date


def next_days_to_evaluate(
    progress: Mapping[int, PartitionProgress], partition: int, through: date, evaluate_from: date | None
) -> tuple[date, date] | None:
    """The inclusive range of days a partition still needs judging, or None when it is up to date.

    A partition never judged starts at `evaluate_from` (or at `through`: the service judges from the
    day it started, not back to the beginning of time).
    """
    done = progress.get(partition)
    if done is not None:
        first = date.fromordinal(done.evaluated_through.toordinal() + 1)
    else:
        first = evaluate_from or through
    if first > through:
        return None
    return first, through
