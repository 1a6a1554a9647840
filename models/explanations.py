"""Explanations in words: a student's figures against their group, and the alert texts, for tutors.

Each explanation is a sentence and the same figures as fields (for storage and dashboards), rounded
as people round (halves up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from models.activity import ATTENDANCE, NOT_OFFERED
from models.comparative_rules import AttendanceDecision, LowEngagementDecision
from models.comparison import GroupStats, StudentBenchmark
from models.engagement import COUNT_SOURCES, EngagementSettings
from models.events import SOURCES, Source
from models.groups import BASIS_NAMES


@dataclass(frozen=True, slots=True)
class Explanation:
    """A sentence for the tutor and the same figures as fields (for storage and dashboards)."""

    text: str
    fields: dict[str, Any]


_LABELS: dict[str, tuple[str, str, str]] = {
    Source.VLE.value: ("VLE activity", "event", "events"),
    Source.LIBRARY.value: ("library", "loan", "loans"),
    Source.ERESOURCE.value: ("e-resources", "access", "accesses"),
    Source.PRINT.value: ("printing", "job", "jobs"),
    Source.PC_LOGON.value: ("PC logons", "logon", "logons"),
    Source.REMOTE.value: ("remote access", "session", "sessions"),
}

#: How the explanations name the offered days (EngagementSettings.offered_days: a model constant).
_OFFERED_WORDS = f"{EngagementSettings().offered_days} days"

#: The groups' names: the same words on every page and report (models.groups).
_BASIS_WORDS: dict[str, str] = BASIS_NAMES


def _round(value: float, places: int = 1, scale: int = 1) -> float:
    """value * scale rounded halves up, as people do (Python's round(3.25, 1) gives 3.2).

    Rounds the decimal text of the value, so 0.285 as a percentage is 28.5, not 28.499999999999996.
    Only a value within a hair of a half needs that decimal arithmetic: anywhere else the float
    product rounds the same way, and an integer divided by 10**places is the nearest float to the
    decimal result (a first monitoring day explains ~100,000 alerts, so this is a hot path).
    """
    if (isinstance(value, int) or value.is_integer()) and abs(value) < 2**43:  # exact, also x100
        return float(value * scale)
    unit = 10**places
    scaled = value * scale * unit
    if 0 <= scaled < 1e9:  # float error under 1e-6 here
        whole = math.floor(scaled)
        fraction = scaled - whole
        if abs(fraction - 0.5) > 1e-6:
            return (whole + (fraction > 0.5)) / unit
    return _round_decimal(value, places, scale)


@lru_cache(maxsize=1 << 12)
def _round_decimal(value: float, places: int, scale: int) -> float:
    step = Decimal(1).scaleb(-places)
    return float((Decimal(repr(value)) * scale).quantize(step, rounding=ROUND_HALF_UP))


def _number(value: float) -> str:
    """A figure as a tutor reads it: whole numbers plain, others to one decimal place."""
    rounded = _round(value)
    return f"{rounded:.0f}" if rounded == int(rounded) else f"{rounded:.1f}"


def _percent(rate: float) -> str:
    """A rate as a whole percentage, halves rounded up (62.5% shows as 63%)."""
    return f"{_round(rate, 0, scale=100):.0f}%"


@dataclass(frozen=True, slots=True)
class _GroupWords:
    """What an explanation says of a group, the same for each of its students: per source in use
    (index, field prefix, label, singular, plural, average as stored, average as written), and
    attendance's average as stored and as written."""

    sources: tuple[tuple[int, str, str, str, str, float, str], ...]
    attendance_average: float | None
    attendance_words: str | None


_GROUP_WORDS: dict[int, tuple[GroupStats, _GroupWords]] = {}
_GROUP_WORDS_LIMIT = 10_000


def _group_words(group: GroupStats) -> _GroupWords:
    """The group's words, remembered by object (the entry holds the group, so its id stays its own)."""
    cached = _GROUP_WORDS.get(id(group))
    if cached is not None and cached[0] is group:
        return cached[1]
    sources = []
    for source in COUNT_SOURCES:
        stats = group.sources[source.value]
        if stats.in_use and stats.mean is not None:
            label, one, many = _LABELS[source.value]
            average = (_round(stats.mean, 1), _number(stats.mean))
            sources.append((SOURCES.index(source), source.value, label, one, many, *average))
    mean = group.sources[Source.ATTENDANCE.value].mean
    words = _GroupWords(
        tuple(sources),
        _round(mean, 1, scale=100) if mean is not None else None,
        _percent(mean) if mean is not None else None,
    )
    # A million-student day has a few thousand groups; each entry keeps its group alive (about 2 KB
    # with its words), so a running worker forgets earlier days' groups rather than hold months of them.
    if len(_GROUP_WORDS) >= _GROUP_WORDS_LIMIT:
        _GROUP_WORDS.clear()
    _GROUP_WORDS[id(group)] = (group, words)
    return words


def explain(bench: StudentBenchmark) -> Explanation:
    """The student's figures against their group, e.g. "VLE activity 3 events in the last 7 days against
    a programme average of 41; attendance 1 of 5 sessions (20%) against 84%."

    Lists every source the group uses, then attendance; sources nobody uses are left out.
    """
    features = bench.features
    group = bench.group
    words = _group_words(group)
    counts = features.counts
    percentiles = bench.percentiles
    fields: dict[str, Any] = {
        "basis": group.basis,
        "group_size": group.n,
        "window_days": features.window_days,
        "score": _round(bench.score, 1),
        "band": bench.band.value,
        "overall_percentile": _round(bench.overall_percentile, 1),
    }
    parts: list[str] = []
    not_offered: list[str] = []
    lead = f" in the last {features.window_days} days against a {_BASIS_WORDS[group.basis]} average of "
    for index, name, label, one, many, average, average_words in words.sources:
        count = counts[index]
        fields[f"{name}_average"] = average
        fields[f"{name}_percentile"] = _rounded(percentiles[name])
        if count == NOT_OFFERED:
            fields[f"{name}_count"] = None
            not_offered.append(label)
            continue
        fields[f"{name}_count"] = count
        against = lead if not parts else " against "
        parts.append(f"{label} {count} {one if count == 1 else many}{against}{average_words}")
    attended, expected = features.attended, counts[ATTENDANCE]
    fields["attended"] = attended
    fields["expected"] = expected
    rate = features.attendance_rate
    fields["attendance_rate"] = _round(rate, 1, scale=100) if rate is not None else None
    fields["attendance_average"] = words.attendance_average
    fields["attendance_percentile"] = _rounded(percentiles[Source.ATTENDANCE.value])
    if rate is not None:
        text = f"attendance {attended} of {expected} sessions ({_percent(rate)})"
        if words.attendance_words is not None:
            against = lead if not parts else " against "
            text += f"{against}{words.attendance_words}"
        elif not parts:
            text += f" in the last {features.window_days} days"
        parts.append(text)
    elif group.sources[Source.ATTENDANCE.value].n:
        parts.append("no sessions expected of this student")
    if not parts:
        parts.append(f"no activity recorded in the last {features.window_days} days")
    fields["sources_compared"] = [name for name, rank in percentiles.items() if rank is not None]
    sentence = "; ".join(parts) + "."
    if not_offered and len(not_offered) == len(words.sources):
        # Nothing at all used: "not counted" would read as if LDE looked away; say what it saw.
        sentence += f" No use of {', '.join(not_offered)} in the last {_OFFERED_WORDS}."
    elif not_offered:
        # Said so that a tutor knows the comparison left them out, and why.
        sentence += f" Not counted, as not used in the last {_OFFERED_WORDS}: {', '.join(not_offered)}."
    return Explanation(sentence[0].upper() + sentence[1:], fields)


def _rounded(value: float | None) -> float | None:
    return _round(value, 1) if value is not None else None


def explain_low_engagement(
    decision: LowEngagementDecision, bench: StudentBenchmark, days_in_a_row: int
) -> Explanation:
    """Alert text for low engagement: why, over how long, and the figures."""
    details = explain(bench)
    group = f"{_BASIS_WORDS[decision.basis]} ({decision.group_size} students)"
    median = decision.group_median_index
    share = _percent(decision.activity_index / median) if median > 0 else "0%"
    text = (
        f"Among the least engaged students of the {group} for {days_in_a_row} days in a row, with "
        f"{share} of the typical student's activity. {details.text}"
    )
    fields = {
        **details.fields,
        "days_in_a_row": days_in_a_row,
        "activity_index": _round(decision.activity_index, 3),
        "group_median_index": _round(decision.group_median_index, 3),
    }
    return Explanation(text, fields)


def explain_low_attendance(
    decision: AttendanceDecision, group_rate: float | None = None, basis: str | None = None
) -> Explanation:
    """Alert text for low attendance, e.g. "Attended 1 of 5 expected sessions (20%) in the last 14
    days, against a cohort average of 84%." (the group named as every page names it, models.groups;
    "for comparable students" when the group is not known).
    """
    rate = decision.rate if decision.rate is not None else 0.0
    text = (
        f"Attended {decision.attended} of {decision.expected} expected sessions ({_percent(rate)}) "
        f"in the last {decision.days} days"
    )
    if group_rate is not None and basis in _BASIS_WORDS:
        text += f", against a {_BASIS_WORDS[basis]} average of {_percent(group_rate)}"
    elif group_rate is not None:
        text += f", against {_percent(group_rate)} for comparable students"
    fields: dict[str, Any] = {
        "attended": decision.attended,
        "expected": decision.expected,
        "attendance_rate": _round(rate, 1, scale=100),
        "attendance_average": _round(group_rate, 1, scale=100) if group_rate is not None else None,
        "days": decision.days,
    }
    return Explanation(text + ".", fields)
