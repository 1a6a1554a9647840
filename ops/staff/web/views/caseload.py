"""The caseload ("My students") as data: filter, search, order by concern and page the students in a
viewer's scope, and what is already being done about each. Pure: the handler (ops.staff.web.caseload)
reads the figures in bulk (sinks.clickhouse.caseload) and the scope from models.access.
"""

from __future__ import annotations

import csv
import heapq
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from models.case_clock import CaseCounts, CaseLine, count_lines, line_follow_up_due, week_end
from models.cases import CaseState, CaseStatus
from models.groups import GroupId, group_average_words
from models.reports import BAND_ORDER
from models.timebuckets import day_month
from sinks.clickhouse.caseload import RosterLine

SORTS = ("concern", "name", "score", "programme", "activity", "age")
BANDS = ("None", "Low", "Partial", "Good", "High", "Not scored")
#: The case filters (the counts at the top of the caseload link to them): `escalated` is the viewer's
#: own (overdue cases gone up to them, models.access.CaseEscalation), the others the case's.
CASE_FILTERS = ("need_action", "in_progress", "overdue", "follow_up", "escalated")
#: A case's last action in a few words (the caseload's "Being done", the CSV export).
ACTION_WORDS = {
    "acknowledge": "acknowledged",
    "snooze": "set aside",
    "assign": "given to a colleague",
    "note": "note",
    "refer": "referred",
    "outcome": "referral outcome",
    "resolve": "resolved",
    "reopen": "reopened",
    "raise": "concern raised",
    "follow_up": "follow-up date set",
}


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
    case: str = ""

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
        case = get("case")
        if case and case not in CASE_FILTERS:
            raise BadQuery(f"case: one of {', '.join(CASE_FILTERS)}")
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
            case=case,
        )

    def address(self, path: str = "/app", **changes: object) -> str:
        """The caseload's address with some fields changed (for sort links and paging); `path` for
        the same query elsewhere (the CSV export)."""
        q = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "programme": q.programme,
            "year": "" if q.year is None else str(q.year),
            "mode": q.mode,
            "band": q.band,
            "rule": q.rule,
            "no_action": "1" if q.no_action else "",
            "q": q.search,
            "case": q.case,
            "sort": "" if q.sort == "concern" else q.sort,
            "page": "" if q.page == 1 else str(q.page),
        }
        encoded = urlencode({k: v for k, v in pairs.items() if v})
        return path + (f"?{encoded}" if encoded else "")


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
    group_basis: str = ""  # the comparison group's level (models.groups): cohort, programme, ...
    last_active: date | None = None
    case: CaseLine | None = None  # the student's open case (models.case_clock), None when none is

    @property
    def group_words(self) -> str:
        """The row's average in words: "cohort average", "programme average" (widened), ..."""
        return group_average_words(self.group_basis) if self.group_basis else "group average"

    @property
    def untouched(self) -> int:
        """Open alerts nobody has acted on yet."""
        return _untouched(self.alerts)

    def doing(self, names: Mapping[str, str], today: date) -> list[str]:
        """What is being done about the open case, in short words: its owner, the last action and
        its date, the referrals waiting for an outcome and the follow-up date (staff by name)."""
        c = self.case
        if c is None:
            return []
        owner = names.get(c.owner) or f"{c.owner} (not in the staff directory)"
        out = [f"Owner: {owner}"]
        if c.last_action:
            who = names.get(c.last_action_by, c.last_action_by)
            out.append(
                f"Last: {ACTION_WORDS.get(c.last_action, c.last_action)}, {_short(c.last_action_on)} ({who})"
            )
        else:
            out.append("No action yet")
        if c.referrals:
            out.append(f"Referred: {', '.join(c.referrals)}")
        if c.follow_up is not None:
            due = " (due)" if line_follow_up_due(c, week_end(today)) else ""
            out.append(f"Follow-up: {_short(c.follow_up)}{due}")
        return out


def _short(day: date | None) -> str:
    return "-" if day is None else day_month(day)


def _untouched(alerts: Sequence[OpenAlert]) -> int:
    return sum(1 for a in alerts if a.case.status is CaseStatus.OPEN)


def concern_order(
    student: RosterLine,
    band: str | None,
    score: float | None,
    alerts: Sequence[OpenAlert],
    case: CaseLine | None = None,
) -> tuple[int, int, int, int, float, str, str]:
    """Most worrying first: overdue cases, untouched alerts, open alerts, band, score (lowest
    first), name, id."""
    return (
        -(case is not None and case.overdue),
        -_untouched(alerts),
        -len(alerts),
        BAND_ORDER.get(band, 5),
        score if score is not None else 101.0,
        student.name.casefold(),
        student.student_id,
    )


_SortKey = Callable[
    [RosterLine, "str | None", "float | None", Sequence[OpenAlert], "CaseLine | None"], tuple[Any, ...]
]
_NO_CASE = date.max.toordinal()
_SORT_KEYS: dict[str, _SortKey] = {
    "concern": concern_order,
    "name": lambda s, b, sc, a, c: (s.name.casefold(), s.student_id),
    "score": lambda s, b, sc, a, c: (sc if sc is not None else 101.0, s.student_id),
    "programme": lambda s, b, sc, a, c: (s.programme_code, *concern_order(s, b, sc, a, c)),
    # the open case whose last activity is oldest first (what has waited longest), then no case
    "activity": lambda s, b, sc, a, c: (
        c.last_activity_on.toordinal() if c else _NO_CASE,
        *concern_order(s, b, sc, a, c),
    ),
    # the oldest open case first, then no case
    "age": lambda s, b, sc, a, c: (
        c.opened_on.toordinal() if c else _NO_CASE,
        *concern_order(s, b, sc, a, c),
    ),
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
    counts: CaseCounts = field(default_factory=CaseCounts)  # the open cases in scope, not only the page's
    #: students in scope whose overdue case went up to the viewer (models.access.CaseEscalation)
    escalated: frozenset[str] = frozenset()


def _case_matches(case: CaseLine | None, wanted: str, today: date) -> bool:
    """Whether a student's open case is of the kind a case filter asks for (`escalated` is decided
    by the caller, who knows the viewer: here any overdue case)."""
    if case is None:
        return False
    if wanted == "need_action":
        return case.status is CaseStatus.OPEN
    if wanted == "in_progress":
        return case.status is not CaseStatus.OPEN
    if wanted == "follow_up":
        return line_follow_up_due(case, week_end(today))
    return case.overdue  # overdue, escalated


def _matches(
    s: RosterLine,
    band: str | None,
    alerts: Sequence[OpenAlert],
    q: CaseloadQuery,
    case: CaseLine | None = None,
    today: date = date.min,
) -> bool:
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
    if q.case and not _case_matches(case, q.case, today):
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
    cases: Mapping[str, CaseLine] | None = None,
    today: date = date.min,
    escalated: frozenset[str] = frozenset(),
) -> CaseloadPage:
    """One page of the students given (already cut to the viewer's scope), filtered and ordered;
    `cases` the open cases by student, `escalated` the students whose overdue case went up to the
    viewer.

    Runs over a whole institution per request: the filter and the order work on plain tuples, and
    rows are built for the page's students only."""
    sort_key = _SORT_KEYS[query.sort]
    no_alerts: tuple[OpenAlert, ...] = ()
    cases = cases or {}
    unfiltered = query == CaseloadQuery(sort=query.sort, page=query.page)
    chosen = []
    for s in students:
        standing = standings.get(s.student_id)
        band, score = (standing[1], standing[0]) if standing else (None, None)
        own = alerts.get(s.student_id, no_alerts)
        case = cases.get(s.student_id)
        if query.case == "escalated" and s.student_id not in escalated:
            continue
        if unfiltered or _matches(s, band, own, query, case, today):
            chosen.append((sort_key(s, band, score, own, case), s, band, score, own, case))
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
            CaseloadRow(s, band, score, tuple(own), case=case)
            for _, s, band, score, own, case in chosen[(page - 1) * page_size : page * page_size]
        ],
        matching=matching,
        in_scope=len(students),
        pages=pages,
        programmes=sorted({s.programme_code for s in students}),
        years=sorted({s.year_of_study for s in students}),
        modes=sorted({s.mode for s in students}),
        rules=sorted({a.rule for sid, own in alerts.items() if sid in in_scope for a in own}),
        counts=count_lines((c for sid, c in cases.items() if sid in in_scope), today),
        escalated=escalated & in_scope,
    )


def with_details(
    page: CaseloadPage,
    weekly: Mapping[str, Mapping[date, int]],
    groups: Mapping[str, GroupId],
    averages: Mapping[GroupId, Sequence[float | None]],
    last_active: Mapping[str, date],
    weeks: Sequence[date],
) -> CaseloadPage:
    """The page's rows with their sparkline figures (the student's weeks against the average of
    their comparison group, models.groups: `groups` each student's, `averages` each group's) and
    last activity, read for the page's students only."""
    none = (None,) * len(weeks)
    rows = []
    for r in page.rows:
        sid = r.student.student_id
        group = groups.get(sid)
        rows.append(
            replace(
                r,
                trend=tuple(weekly.get(sid, {}).get(w, 0) for w in weeks),
                group_trend=tuple(averages.get(group, none)) if group else none,
                group_basis=group[0] if group else "",
                last_active=last_active.get(sid),
            )
        )
    return replace(page, rows=rows, trend_weeks=tuple(weeks))


#: The caseload export's columns (one row per student in scope and matching the filters).
CSV_COLUMNS = (
    "student_id",
    "name",
    "programme",
    "year",
    "mode",
    "band",
    "score",
    "last_engaged",
    "case_status",
    "overdue",
    "case_opened",
    "alerts",
    "owner",
    "last_action",
    "last_action_on",
    "referrals_waiting",
    "follow_up",
)
#: A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote mark first."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def caseload_csv(rows: Sequence[CaseloadRow], names: Mapping[str, str]) -> str:
    """The rows as CSV (a header, then one line per student; staff by name; dates ISO), every
    cell safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        s, c = r.student, r.case
        cells: list[object] = [
            s.student_id,
            s.name,
            s.programme_code,
            s.year_of_study,
            s.mode,
            r.band or "Not scored",
            "" if r.score is None else f"{r.score:.0f}",
            r.last_active,
        ]
        if c is None:
            cells += ["none", "", "", "", "", "", "", "", ""]
        else:
            cells += [
                c.status.value,
                "yes" if c.overdue else "no",
                c.opened_on,
                "; ".join(f"{a.rule} {a.raised_on}" for a in r.alerts),
                names.get(c.owner, c.owner),
                ACTION_WORDS.get(c.last_action, c.last_action),
                c.last_action_on,
                "; ".join(c.referrals),
                c.follow_up,
            ]
        writer.writerow([safe_cell(v) for v in cells])
    return out.getvalue()
