"""A seeded workload with its ground truth, for the fault tests: a roster, each local day's events
(with upstream re-sends) and the counts they must produce. Pure: no Kafka, no files.

The same seed always gives the same input, so a run with kills can be compared with the ledger and
with a clean replay of exactly the same input.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from models.events import ActivityEvent
from models.roster import RosterRecord

#: Sources the generator uses (attendance has its own attended column; these are plain counts).
SOURCES = ("vle", "library", "eresource", "print", "pc_logon", "remote")
#: November: Europe/London is on UTC, so an event's UTC day is its local day.
FIRST_DAY = date(2026, 11, 2)

Key = tuple[str, str, str]  # (student_id, ISO day, source)


@dataclass
class Workload:
    """What to publish and what it must count to."""

    seed: int
    roster: list[RosterRecord]
    days: list[date]
    events_by_day: dict[date, list[ActivityEvent]]  # re-sends included
    truth: Counter[Key] = field(default_factory=Counter)
    silent_from: dict[str, date] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Distinct events (what the counts must add up to)."""
        return sum(self.truth.values())

    @property
    def messages(self) -> int:
        """Events published, re-sends included."""
        return sum(len(v) for v in self.events_by_day.values())


def student_id(seed: int, index: int) -> str:
    return f"F{seed % 1000:03d}{index:05d}"


def generate(
    seed: int,
    students: int = 200,
    days: int = 12,
    events_per_day: int = 3,
    resend_share: float = 0.05,
    silent_share: float = 0.15,
) -> Workload:
    """A term fragment: every student starts three weeks before the first day (no start exemption);
    `silent_share` of them fall silent from a random day (no_engagement alerts follow); a share of
    each day's events is sent again later the same day or the next (upstream re-sends)."""
    rng = random.Random(seed)
    ids = [student_id(seed, i) for i in range(students)]
    roster = [
        RosterRecord.model_validate(
            {
                "student_id": sid,
                "given_name": "Fault",
                "family_name": sid,
                "programme_code": f"P{i % 3}",
                "school": "School of Testing",
                "year_of_study": 1 + i % 3,
                "mode": "FT",
                "status": "active",
                "start_date": FIRST_DAY - timedelta(days=21),
                "personal_tutor_id": f"T{i % 7}",
            }
        )
        for i, sid in enumerate(ids)
    ]
    all_days = [FIRST_DAY + timedelta(days=d) for d in range(days)]
    silent_from = {sid: all_days[rng.randrange(days)] for sid in ids if rng.random() < silent_share}
    by_day: dict[date, list[ActivityEvent]] = {d: [] for d in all_days}
    truth: Counter[Key] = Counter()
    carried: list[ActivityEvent] = []  # yesterday's re-sends, sent again today
    serial = 0
    for day in all_days:
        todays: list[ActivityEvent] = list(carried)
        carried = []
        for sid in ids:
            if sid in silent_from and day >= silent_from[sid]:
                continue
            for _ in range(rng.randrange(2 * events_per_day + 1)):
                source = rng.choice(SOURCES)
                moment = datetime(
                    day.year, day.month, day.day, 8 + rng.randrange(14), rng.randrange(60), tzinfo=UTC
                )
                event = ActivityEvent.model_validate(
                    {
                        "event_id": f"s{seed}-e{serial}",
                        "student_id": sid,
                        "source": source,
                        "occurred_at": moment,
                    }
                )
                serial += 1
                truth[(sid, day.isoformat(), source)] += 1
                todays.append(event)
                if rng.random() < resend_share:
                    (todays if rng.random() < 0.5 else carried).append(event)
        rng.shuffle(todays)
        by_day[day] = todays
    if carried:  # the last day's carried re-sends go out with the last day
        by_day[all_days[-1]].extend(carried)
    return Workload(seed, roster, all_days, by_day, truth, silent_from)


@dataclass(frozen=True)
class Comparison:
    """Counts against the ledger, per (student, day, source): missing and duplicated kept apart."""

    missing: int
    duplicated: int
    wrong_keys: list[tuple[Key, int, int]]  # (key, expected, counted), first few

    @property
    def exact(self) -> bool:
        return self.missing == 0 and self.duplicated == 0


def compare(truth: Counter[Key], counted: dict[Key, int], days: set[str] | None = None) -> Comparison:
    """Missing = expected events not counted; duplicated = counted beyond the ledger (per key).
    `days` limits the comparison to those ISO days (a state that keeps only recent days)."""
    missing = duplicated = 0
    wrong: list[tuple[Key, int, int]] = []
    for key in set(truth) | set(counted):
        if days is not None and key[1] not in days:
            continue
        expected, got = truth.get(key, 0), counted.get(key, 0)
        if expected > got:
            missing += expected - got
        elif got > expected:
            duplicated += got - expected
        if expected != got and len(wrong) < 20:
            wrong.append((key, expected, got))
    return Comparison(missing, duplicated, sorted(wrong))


def merge_versions(rows: list[tuple[str, str, str, int, int]]) -> dict[Key, int]:
    """Rows (student, day, source, events, version) from several ClickHouse stores: per key the row
    with the highest version wins (what one shared ReplacingMergeTree would keep)."""
    best: dict[Key, tuple[int, int]] = {}
    for sid, day, source, events, version in rows:
        key = (sid, day, source)
        current = best.get(key)
        if current is None or version > current[0] or (version == current[0] and events > current[1]):
            best[key] = (version, events)
    return {key: events for key, (_, events) in best.items()}
