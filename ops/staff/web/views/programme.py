"""The programme page as data: the cohort's bands week by week, the students moving down, and
engagement by source against the institution. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from models.reports import BAND_ORDER, REPORT_SOURCES, SOURCE_LABELS

#: Bands worst first, then students with no score that week.
BAND_ROWS = ("None", "Low", "Partial", "Good", "High", "Not scored")


def band_distribution(
    history: Sequence[tuple[str, date, str, float]], members: Sequence[str], weeks: Sequence[date]
) -> list[dict[str, int]]:
    """Students per band in each week (their last scored day of the week); members with no score
    that week count as 'Not scored'."""
    by_week: dict[date, dict[str, str]] = {w: {} for w in weeks}
    for sid, week, band, _score in history:
        if week in by_week:
            by_week[week][sid] = band
    out = []
    for w in weeks:
        bands = by_week[w]
        counts = Counter(bands.get(m, "Not scored") for m in members)
        out.append({b: counts.get(b, 0) for b in BAND_ROWS})
    return out


@dataclass(frozen=True, slots=True)
class MovingDown:
    student_id: str
    name: str
    was: str
    now: str
    score_was: float
    score_now: float


def moving_down(
    history: Sequence[tuple[str, date, str, float]],
    names: Mapping[str, str],
    since: date,
    latest: date,
) -> list[MovingDown]:
    """Students whose band in the week of `latest` is worse than in the week of `since`, the largest
    drop first (then the lowest score now)."""
    then: dict[str, tuple[str, float]] = {}
    now: dict[str, tuple[str, float]] = {}
    for sid, week, band, score in history:
        if week == since:
            then[sid] = (band, float(score))
        elif week == latest:
            now[sid] = (band, float(score))
    out = []
    for sid, (band_now, score_now) in now.items():
        if sid not in then:
            continue
        band_then, score_then = then[sid]
        if BAND_ORDER.get(band_now, 5) < BAND_ORDER.get(band_then, 5):
            out.append(MovingDown(sid, names.get(sid, sid), band_then, band_now, score_then, score_now))
    out.sort(key=lambda m: (BAND_ORDER.get(m.now, 5) - BAND_ORDER.get(m.was, 5), m.score_now, m.student_id))
    return out


@dataclass(frozen=True, slots=True)
class SourceLine:
    source: str
    label: str
    programme: float | None
    institution: float | None


def source_comparison(
    programme: Mapping[str, int],
    programme_students: int,
    institution: Mapping[str, int],
    students: int,
    min_group: int,
) -> list[SourceLine]:
    """Events per student per source over the period: the programme against the institution
    (attendance: sessions attended). The programme's figure is withheld under `min_group` students."""
    out = []
    for source in REPORT_SOURCES:
        p = (
            round(programme.get(source, 0) / programme_students, 1)
            if programme_students >= min_group
            else None
        )
        i = round(institution.get(source, 0) / students, 1) if students else None
        out.append(SourceLine(source, SOURCE_LABELS[source], p, i))
    return out
