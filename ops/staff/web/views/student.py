"""The student page as data: engagement by day against the comparison group's average and quartiles,
attendance by week, and every alert with its explanation, figures and case. Pure.

The group's daily figures are computed here from its members' daily counts (zeros included: a member
with no row that day did nothing), and shown only for groups of at least `min_group` students.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from models.access import Staff
from models.cases import ActionKind, CaseState, Channel, allowed_actions, case_state, describe
from models.comparison import quantile
from models.reports import REPORT_SOURCES, SOURCE_LABELS


@dataclass(frozen=True, slots=True)
class DaySeries:
    """One source's days: the student's count, and the group's mean, lower and upper quartile."""

    source: str
    label: str
    days: Sequence[date]
    own: Sequence[int]
    mean: Sequence[float | None]
    q1: Sequence[float | None]
    q3: Sequence[float | None]

    @property
    def total(self) -> int:
        return sum(self.own)


def day_series(
    student_id: str,
    rows: Sequence[tuple[str, date, str, int, int]],
    members: Sequence[str],
    days: Sequence[date],
    min_group: int,
) -> list[DaySeries]:
    """Per source (in report order, skipping sources nobody used): the student's days against the
    group's. rows: (student, day, source, events, attended) of the student and the group's members;
    attendance counts sessions attended."""
    counts: dict[tuple[str, date, str], int] = {}
    for sid, day, source, events, attended in rows:
        counts[(sid, day, source)] = int(attended if source == "attendance" else events)
    used = {source for (_, _, source) in counts}
    shown = len(members) >= min_group
    out = []
    for source in REPORT_SOURCES:
        if source not in used:
            continue
        own = [counts.get((student_id, d, source), 0) for d in days]
        mean: list[float | None] = []
        q1: list[float | None] = []
        q3: list[float | None] = []
        for d in days:
            if not shown:
                for column in (mean, q1, q3):
                    column.append(None)
                continue
            values = sorted(float(counts.get((m, d, source), 0)) for m in members)
            mean.append(round(sum(values) / len(values), 1))
            q1.append(round(quantile(values, 0.25), 1))
            q3.append(round(quantile(values, 0.75), 1))
        out.append(DaySeries(source, SOURCE_LABELS[source], days, own, mean, q1, q3))
    return out


@dataclass(frozen=True, slots=True)
class AttendanceWeek:
    week: date
    expected: int
    attended: int

    @property
    def rate(self) -> str:
        return f"{100 * self.attended / self.expected:.0f}%" if self.expected else "no sessions"


def attendance_weeks(
    student_id: str, rows: Sequence[tuple[str, date, str, int, int]], weeks: Sequence[date]
) -> list[AttendanceWeek]:
    """Sessions expected and attended per week (Mondays given)."""
    expected: dict[date, int] = defaultdict(int)
    attended: dict[date, int] = defaultdict(int)
    for sid, day, source, events, came in rows:
        if sid == student_id and source == "attendance":
            monday = day - timedelta(days=day.weekday())
            expected[monday] += int(events)
            attended[monday] += int(came)
    return [AttendanceWeek(w, expected.get(w, 0), attended.get(w, 0)) for w in weeks]


@dataclass(frozen=True)
class AlertCard:
    """One alert with what was done about it and what may be done next."""

    alert: Mapping[str, Any]
    case: CaseState
    history: Sequence[str]
    allowed: Sequence[ActionKind]

    @property
    def alert_id(self) -> str:
        return str(self.alert["alert_id"])

    @property
    def figures(self) -> list[tuple[str, str]]:
        """The alert's figures as (name, value) pairs for a definition list."""
        raw = self.alert.get("figures") or {}
        if isinstance(raw, str):
            raw = json.loads(raw or "{}")
        return [(str(k).replace("_", " "), _figure(v)) for k, v in sorted(raw.items())]


def _figure(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


#: Actions whose words (models.cases.describe) already hold their detail.
_SAID = frozenset({ActionKind.OUTCOME, ActionKind.SNOOZE})


def alert_cards(
    alerts: Sequence[Mapping[str, Any]],
    actions: Mapping[str, Sequence[Any]],
    names: Mapping[str, str],
    today: date,
) -> list[AlertCard]:
    """The student's alerts, newest first, each with its case and its history in words."""
    cards = []
    for a in sorted(alerts, key=lambda a: (a["raised_on"], a["alert_id"]), reverse=True):
        done = list(actions.get(a["alert_id"], ()))
        state = case_state(a["alert_id"], done, today)
        history = [
            describe(x, dict(names)) + (f": {x.detail}" if x.detail and x.kind not in _SAID else "")
            for x in state.history
        ]
        cards.append(AlertCard(a, state, history, allowed_actions(state)))
    return cards


@dataclass(frozen=True)
class TriageChoices:
    """What the triage forms offer: colleagues who may see the student, services, contact kinds."""

    colleagues: Sequence[Staff]
    services: Sequence[str]
    channels: Sequence[str] = tuple(c.value for c in Channel)


def days_back(as_of: date, count: int) -> list[date]:
    return [as_of - timedelta(days=count - 1 - i) for i in range(count)]
