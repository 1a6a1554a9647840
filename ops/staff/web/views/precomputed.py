"""The caseload's precomputed view (issue 26): built once after an evaluation, read by every page.

`build_view` takes what the evaluator and the stores say about every student on the roster and
returns a `CaseloadView`: one `CaseloadRow` per student, complete (band, score, open alerts, the
sparkline against the programme's average, last activity), and the roster indexed by scope
(models.access.ScopeIndex) once per order, each already sorted. A page (`page_from_view`) then asks the
one access policy for the viewer's scope, which comes out in the order wanted, filters it if asked and
cuts the page: no request orders every student in scope. Pure: the shell is ops.staff.web.caseload.

A new per-student figure (issue 27's cases, say) is a field of CaseloadRow filled in `build_view`.
The trends (`Trends`: weekly sparklines, programme averages, last activity) are read from every
student's days and built apart, on a slower cadence; orders other than the default are made on
first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from models.access import Role, ScopeIndex, Staff, may_see_programme
from ops.staff.web.views.caseload import (
    _SORT_KEYS,
    CaseloadPage,
    CaseloadQuery,
    CaseloadRow,
    OpenAlert,
    _matches,
    programme_average,
)
from sinks.clickhouse.caseload import RosterLine


@dataclass(frozen=True, slots=True)
class ScopeOptions:
    """The caseload's filter choices for one scope (programmes, years, modes, alert rules)."""

    programmes: tuple[str, ...]
    years: tuple[int, ...]
    modes: tuple[str, ...]
    rules: tuple[str, ...]
    programme_pages: tuple[str, ...]


@dataclass(frozen=True)
class CaseloadView:
    """Every student's caseload row on `as_of`, and the roster indexed by scope once per order."""

    as_of: date
    weeks: tuple[date, ...]
    rows: Mapping[str, CaseloadRow]
    #: The roster indexed by scope per order, made on first use (the default order at build time),
    #: and the filter choices per viewer's grants: caches, filled as pages ask (a view is replaced,
    #: never changed).
    _orders: dict[str, ScopeIndex] = field(default_factory=dict, compare=False, repr=False)
    _options: dict[Any, ScopeOptions] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.order("concern")

    def order(self, sort: str) -> ScopeIndex:
        """The roster indexed by scope in the order `sort` (one of SORTS)."""
        found = self._orders.get(sort)
        if found is None:
            found = self._orders[sort] = _ordered(self.rows, sort)
        return found

    def options_for(self, viewer: Staff, scope: Sequence[RosterLine]) -> ScopeOptions:
        """The filter choices of the viewer's scope (kept per set of grants: many staff share one)."""
        key = (viewer.operator, viewer.staff_id if _has_own_tutees(viewer) else "", viewer.grants)
        found = self._options.get(key)
        if found is None:
            rows = self.rows
            schools = {s.programme_code: s.school for s in scope}
            found = ScopeOptions(
                programmes=tuple(sorted(schools)),
                years=tuple(sorted({s.year_of_study for s in scope})),
                modes=tuple(sorted({s.mode for s in scope})),
                rules=tuple(sorted({a.rule for s in scope for a in rows[s.student_id].alerts})),
                programme_pages=tuple(
                    sorted(
                        code for code, school in schools.items() if may_see_programme(viewer, code, school)
                    )
                ),
            )
            self._options[key] = found
        return found


def _has_own_tutees(viewer: Staff) -> bool:
    """A personal tutor's scope depends on who they are, not only on their grants."""
    return any(g.role is Role.PERSONAL_TUTOR for g in viewer.grants)


@dataclass(frozen=True)
class Trends:
    """The sparkline figures of every student (engagement per week), their programme's average and
    their last active day. The costliest part of the view to read (every student's days for eight
    weeks), so kept apart and refreshed less often: a trend of a few minutes ago is still the trend."""

    weeks: tuple[date, ...]
    own: Mapping[str, tuple[int, ...]]
    group: Mapping[str, tuple[float | None, ...]]
    last_active: Mapping[str, date]

    def of(self, student: RosterLine) -> tuple[tuple[int, ...], tuple[float | None, ...], date | None]:
        sid = student.student_id
        none = (None,) * len(self.weeks)
        return (
            self.own.get(sid, (0,) * len(self.weeks)),
            self.group.get(student.programme_code, none),
            self.last_active.get(sid),
        )


def build_trends(
    roster: Sequence[RosterLine],
    weekly: Mapping[str, Mapping[date, int]],
    last_active: Mapping[str, date],
    weeks: Sequence[date],
    min_group: int,
) -> Trends:
    """Every student's weeks and each programme's average (None under `min_group` students)."""
    members: dict[str, list[str]] = {}
    for s in roster:
        members.setdefault(s.programme_code, []).append(s.student_id)
    group = {code: tuple(programme_average(weekly, ids, weeks, min_group)) for code, ids in members.items()}
    own = {sid: tuple(days.get(w, 0) for w in weeks) for sid, days in weekly.items()}
    return Trends(tuple(weeks), own, group, dict(last_active))


def build_view(
    as_of: date,
    roster: Sequence[RosterLine],
    standings: Mapping[str, tuple[float, str, date]],
    alerts: Mapping[str, Sequence[OpenAlert]],
    trends: Trends,
) -> CaseloadView:
    """The view of every student on the roster (see the module docstring)."""
    no_alerts: tuple[OpenAlert, ...] = ()
    rows: dict[str, CaseloadRow] = {}
    for s in roster:
        sid = s.student_id
        standing = standings.get(sid)
        trend, group_trend, last = trends.of(s)
        rows[sid] = CaseloadRow(
            student=s,
            band=standing[1] if standing else None,
            score=standing[0] if standing else None,
            alerts=tuple(alerts.get(sid, no_alerts)),
            trend=trend,
            group_trend=group_trend,
            last_active=last,
        )
    return CaseloadView(as_of=as_of, weeks=trends.weeks, rows=rows)


def _ordered(rows: Mapping[str, CaseloadRow], sort: str) -> ScopeIndex:
    """The roster indexed by scope in one order (each index's lists keep that order)."""
    key = _SORT_KEYS[sort]
    keyed = [(key(r.student, r.band, r.score, r.alerts), r.student) for r in rows.values()]
    keyed.sort(key=lambda pair: pair[0])
    return ScopeIndex.of(s for _, s in keyed)


def with_alerts(view: CaseloadView, student_id: str, alerts: Sequence[OpenAlert]) -> CaseloadView:
    """The view with one student's open alerts replaced (a triage action just moved their case);
    the same as building it again with those alerts. A student not in it: unchanged."""
    row = view.rows.get(student_id)
    if row is None:
        return view
    rows = {**view.rows, student_id: replace(row, alerts=tuple(alerts))}
    return CaseloadView(as_of=view.as_of, weeks=view.weeks, rows=rows)


def page_from_view(view: CaseloadView, viewer: Staff, query: CaseloadQuery, page_size: int) -> CaseloadPage:
    """One page of the viewer's caseload from the view: the scope comes from the access policy
    already in the order asked; filters walk it once; only the page's rows are taken."""
    rows = view.rows
    scope: list[Any] = view.order(query.sort).students_for(viewer)
    unfiltered = query == CaseloadQuery(sort=query.sort, page=query.page)
    chosen = (
        scope
        if unfiltered
        else [s for s in scope if _matches(s, rows[s.student_id].band, rows[s.student_id].alerts, query)]
    )
    matching = len(chosen)
    pages = max(1, -(-matching // page_size))
    page = min(query.page, pages)
    options = view.options_for(viewer, scope)
    return CaseloadPage(
        query=replace(query, page=page),
        rows=[rows[s.student_id] for s in chosen[(page - 1) * page_size : page * page_size]],
        matching=matching,
        in_scope=len(scope),
        pages=pages,
        programmes=options.programmes,
        years=options.years,
        modes=options.modes,
        rules=options.rules,
        trend_weeks=view.weeks,
        programme_pages=options.programme_pages,
    )
