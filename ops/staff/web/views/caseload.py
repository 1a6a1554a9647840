"""The caseload ("My students") as data: filter, search, order by concern and page the students in a
viewer's scope, and what is already being done about each. Pure: the handler (ops.staff.web.caseload)
reads the figures in bulk (sinks.clickhouse.caseload) and the scope from models.access.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from models.cases import CaseState, CaseStatus
from models.reports import BAND_ORDER
from sinks.clickhouse.caseload import RosterLine

SORTS = ("concern", "name", "score", "programme")
BANDS = ("None", "Low", "Partial", "Good", "High", "Not scored")


class BadQuery(ValueError):
    """A caseload address with a filter that does not parse (answered 400, with the reason)."""


@dataclass(frozen=True, slots=True)
class CaseloadQuery:
    """The caseload's filters, search, order and page, as in its address."""

    programme: str = ""
    year: int | None = None
    mode: str = ""
    band: str = ""
    rule: str = ""
    no_action: bool = False
    search: str = ""
    sort: str = "concern"
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CaseloadQuery:
        """From the address's query; raises BadQuery for a year, page, band or order that is not one."""
        get = lambda key: (query.get(key) or "").strip()  # noqa: E731 - a local shorthand
        try:
            year = int(get("year")) if get("year") else None
            page = int(get("page") or 1)
        except ValueError:
            raise BadQuery("year and page are whole numbers") from None
        if page < 1:
            raise BadQuery("page starts at 1")
        sort = get("sort") or "concern"
        if sort not in SORTS:
            raise BadQuery(f"sort: one of {', '.join(SORTS)}")
        band = get("band")
        if band and band not in BANDS:
            raise BadQuery(f"band: one of {', '.join(BANDS)}")
        return cls(
            programme=get("programme"),
            year=year,
            mode=get("mode"),
            band=band,
            rule=get("rule"),
            no_action=get("no_action") in ("1", "on", "true", "yes"),
            search=get("q")[:100],
            sort=sort,
            page=page,
        )

    def address(self, **changes: object) -> str:
        """The caseload's address with some fields changed (for sort links and paging)."""
        q = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "programme": q.programme,
            "year": "" if q.year is None else str(q.year),
            "mode": q.mode,
            "band": q.band,
            "rule": q.rule,
            "no_action": "1" if q.no_action else "",
            "q": q.search,
            "sort": "" if q.sort == "concern" else q.sort,
            "page": "" if q.page == 1 else str(q.page),
        }
        encoded = urlencode({k: v for k, v in pairs.items() if v})
        return "/app" + (f"?{encoded}" if encoded else "")


@dataclass(frozen=True, slots=True)
class OpenAlert:
    alert_id: str
    rule: str
    raised_on: date
    case: CaseState


@dataclass(frozen=True)
class CaseloadRow:
    student: RosterLine
    band: str | None
    score: float | None
    alerts: tuple[OpenAlert, ...] = ()
    trend: tuple[int, ...] = ()
    group_trend: tuple[float | None, ...] = ()
    last_active: date | None = None

    @property
    def untouched(self) -> int:
        """Open alerts nobody has acted on yet."""
        return _untouched(self.alerts)

    def doing(self, names: Mapping[str, str]) -> list[str]:
        """What is already being done, in short words, newest alert first (staff by name)."""
        out = []
        for a in sorted(self.alerts, key=lambda a: a.raised_on, reverse=True):
            c = a.case
            if c.status is CaseStatus.SNOOZED:
                out.append(f"snoozed until {c.snoozed_until}")
            if c.acknowledged_by:
                out.append(f"acknowledged by {names.get(c.acknowledged_by, c.acknowledged_by)}")
            if c.assignee:
                out.append(f"with {names.get(c.assignee, c.assignee)}")
            if c.last_note is not None:
                out.append(f"note {c.last_note.at.date()}: {c.last_note.detail[:80]}")
        return out


def _untouched(alerts: Sequence[OpenAlert]) -> int:
    return sum(1 for a in alerts if a.case.status is CaseStatus.OPEN)


def concern_order(
    student: RosterLine, band: str | None, score: float | None, alerts: Sequence[OpenAlert]
) -> tuple[int, int, int, float, str, str]:
    """Most worrying first: untouched alerts, open alerts, band, score (lowest first), name, id."""
    return (
        -_untouched(alerts),
        -len(alerts),
        BAND_ORDER.get(band, 5),
        score if score is not None else 101.0,
        student.name.casefold(),
        student.student_id,
    )


_SortKey = Callable[[RosterLine, "str | None", "float | None", Sequence[OpenAlert]], tuple[Any, ...]]
_SORT_KEYS: dict[str, _SortKey] = {
    "concern": concern_order,
    "name": lambda s, b, sc, a: (s.name.casefold(), s.student_id),
    "score": lambda s, b, sc, a: (sc if sc is not None else 101.0, s.student_id),
    "programme": lambda s, b, sc, a: (s.programme_code, *concern_order(s, b, sc, a)),
}


@dataclass(frozen=True)
class CaseloadPage:
    query: CaseloadQuery
    rows: Sequence[CaseloadRow]
    matching: int
    in_scope: int
    pages: int
    programmes: Sequence[str] = ()
    years: Sequence[int] = ()
    modes: Sequence[str] = ()
    rules: Sequence[str] = ()
    trend_weeks: Sequence[date] = field(default=())
    programme_pages: Sequence[str] = ()  # programmes whose page the viewer may open (models.access)


def _matches(s: RosterLine, band: str | None, alerts: Sequence[OpenAlert], q: CaseloadQuery) -> bool:
    if q.programme and s.programme_code != q.programme:
        return False
    if q.year is not None and s.year_of_study != q.year:
        return False
    if q.mode and s.mode != q.mode:
        return False
    if q.band and (band or "Not scored") != q.band:
        return False
    if q.rule and not any(a.rule == q.rule for a in alerts):
        return False
    if q.no_action and not _untouched(alerts):
        return False
    if q.search:
        needle = q.search.casefold()
        return needle in s.name.casefold() or needle in s.student_id.casefold()
    return True


def build_caseload(
    students: Sequence[RosterLine],
    standings: Mapping[str, tuple[float, str, date]],
    alerts: Mapping[str, Sequence[OpenAlert]],
    query: CaseloadQuery,
    page_size: int,
) -> CaseloadPage:
    """One page of the students given (already cut to the viewer's scope), filtered and ordered.

    Runs over a whole institution per request: the filter and the order work on plain tuples, and
    rows are built for the page's students only."""
    sort_key = _SORT_KEYS[query.sort]
    no_alerts: tuple[OpenAlert, ...] = ()
    unfiltered = query == CaseloadQuery(sort=query.sort, page=query.page)
    chosen = []
    for s in students:
        standing = standings.get(s.student_id)
        band, score = (standing[1], standing[0]) if standing else (None, None)
        own = alerts.get(s.student_id, no_alerts)
        if unfiltered or _matches(s, band, own, query):
            chosen.append((sort_key(s, band, score, own), s, band, score, own))
    matching = len(chosen)
    pages = max(1, -(-matching // page_size))
    page = min(query.page, pages)
    if page * page_size * 4 < len(chosen):  # an early page of many: no need to order them all
        chosen = heapq.nsmallest(page * page_size, chosen, key=lambda c: c[0])
    else:
        chosen.sort(key=lambda c: c[0])
    in_scope = {s.student_id for s in students}
    return CaseloadPage(
        query=replace(query, page=page),
        rows=[
            CaseloadRow(s, band, score, tuple(own))
            for _, s, band, score, own in chosen[(page - 1) * page_size : page * page_size]
        ],
        matching=matching,
        in_scope=len(students),
        pages=pages,
        programmes=sorted({s.programme_code for s in students}),
        years=sorted({s.year_of_study for s in students}),
        modes=sorted({s.mode for s in students}),
        rules=sorted({a.rule for sid, own in alerts.items() if sid in in_scope for a in own}),
    )


def with_details(
    page: CaseloadPage,
    weekly: Mapping[str, Mapping[date, int]],
    group_average: Mapping[str, Sequence[float | None]],
    last_active: Mapping[str, date],
    weeks: Sequence[date],
) -> CaseloadPage:
    """The page's rows with their sparkline figures (the student's weeks against their programme's
    average) and last activity, read for the page's students only."""
    rows = [
        replace(
            r,
            trend=tuple(weekly.get(r.student.student_id, {}).get(w, 0) for w in weeks),
            group_trend=tuple(group_average.get(r.student.programme_code, [None] * len(weeks))),
            last_active=last_active.get(r.student.student_id),
        )
        for r in page.rows
    ]
    return replace(page, rows=rows, trend_weeks=tuple(weeks))


def programme_average(
    weekly: Mapping[str, Mapping[date, int]], members: Sequence[str], weeks: Sequence[date], min_group: int
) -> list[float | None]:
    """A programme's average engagement per week over its members (None under `min_group` students,
    so that an average never reveals a handful of others)."""
    if len(members) < min_group:
        return [None] * len(weeks)
    return [round(sum(weekly.get(m, {}).get(w, 0) for m in members) / len(members), 1) for w in weeks]
