"""The caseload's precomputed view (issue 26): built once after an evaluation, read by every page.

`build_view` takes what the evaluator and the stores say about every student on the roster and
returns a `CaseloadView`: one `CaseloadRow` per student, complete (band, score, open alerts, the
sparkline against the average of the student's comparison group, last activity), and the roster
indexed by scope (models.access.ScopeIndex) once per order, each already sorted. A page
(`page_from_view`) then asks the one access policy for the viewer's scope, which comes out in the
order wanted, filters it if asked and cuts the page: no request orders every student in scope. Pure:
the shell is ops.staff.web.caseload.

A new per-student figure (issue 27's cases, say) is a field of CaseloadRow filled in `build_view`.
The trends (`Trends`: weekly sparklines, each comparison group's weekly averages, last activity)
are read from every student's days and built apart, on a slower cadence; orders other than the
default are made on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from models.access import CaseEscalation, Role, ScopeIndex, Staff, may_see_programme
from models.case_clock import CaseCounts, CaseLine, count_lines
from models.groups import GroupId, GroupMember, comparison_groups, weekly_group_averages
from ops.staff.web.views.caseload import (
    _SORT_KEYS,
    CaseloadPage,
    CaseloadQuery,
    CaseloadRow,
    OpenAlert,
    _matches,
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
    counts: CaseCounts = field(default_factory=CaseCounts)  # the scope's open cases
    overdue: tuple[str, ...] = ()  # the scope's students with an overdue case, in the view's order


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
    #: The overdue cases gone up to each viewer (by staff id): found on their first page of this view
    _desks: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    #: (base view, patch, args) when this view is `patch(base, *args)`: a triage action's one row,
    #: which the renderer (ops.staff.renderer) applies to the view it holds instead of receiving
    #: this one whole
    derived_from: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.order("concern")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (for the renderer process, ops.staff.renderer) without its caches: the receiver
        indexes the roster again, on its own interpreter."""
        return (CaseloadView, (self.as_of, self.weeks, self.rows))

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
                counts=count_lines((c for s in scope if (c := rows[s.student_id].case)), self.as_of),
                overdue=tuple(
                    s.student_id for s in scope if (c := rows[s.student_id].case) is not None and c.overdue
                ),
            )
            self._options[key] = found
        return found


def _has_own_tutees(viewer: Staff) -> bool:
    """A personal tutor's scope depends on who they are, not only on their grants."""
    return any(g.role is Role.PERSONAL_TUTOR for g in viewer.grants)


@dataclass(frozen=True)
class Trends:
    """The sparkline figures of every student (engagement per week), their comparison group
    (models.groups: the cohort, widened as the score widens it; the same group as the student page,
    the own view and the weekly report) with each group's weekly average, and their last active day.
    The costliest part of the view to read (every student's days for eight weeks), so kept apart and
    refreshed less often: a trend of a few minutes ago is still the trend."""

    weeks: tuple[date, ...]
    own: Mapping[str, tuple[int, ...]]
    group_of: Mapping[str, GroupId]
    group: Mapping[GroupId, tuple[float | None, ...]]
    last_active: Mapping[str, date]

    def of(self, student: RosterLine) -> tuple[tuple[int, ...], tuple[float | None, ...], str, date | None]:
        """(own weeks, the group's average per week, the group's level, last active day)."""
        sid = student.student_id
        none = (None,) * len(self.weeks)
        chosen = self.group_of.get(sid)
        return (
            self.own.get(sid, (0,) * len(self.weeks)),
            self.group.get(chosen, none) if chosen else none,
            chosen[0] if chosen else "",
            self.last_active.get(sid),
        )


def build_trends(
    members: Sequence[GroupMember],
    weekly: Mapping[str, Mapping[date, int]],
    last_active: Mapping[str, date],
    weeks: Sequence[date],
    min_group: int,
) -> Trends:
    """Every student's weeks, group and each group's weekly average (None under `min_group`
    students); `members` everyone on the roster in those weeks, whom the groups are counted over."""
    everyone = list(members)
    group_of = comparison_groups(everyone, min_group)
    group = weekly_group_averages(everyone, set(group_of.values()), weekly, weeks, min_group)
    own = {sid: tuple(days.get(w, 0) for w in weeks) for sid, days in weekly.items()}
    return Trends(tuple(weeks), own, group_of, group, dict(last_active))


def build_view(
    as_of: date,
    roster: Sequence[RosterLine],
    standings: Mapping[str, tuple[float, str, date]],
    alerts: Mapping[str, Sequence[OpenAlert]],
    trends: Trends,
    cases: Mapping[str, CaseLine] | None = None,
) -> CaseloadView:
    """The view of every student on the roster (see the module docstring); `alerts` the alerts of
    each student's open case, `cases` the open case as a row (models.case_clock.case_line)."""
    cases = cases or {}
    no_alerts: tuple[OpenAlert, ...] = ()
    rows: dict[str, CaseloadRow] = {}
    for s in roster:
        sid = s.student_id
        standing = standings.get(sid)
        trend, group_trend, basis, last = trends.of(s)
        rows[sid] = CaseloadRow(
            student=s,
            band=standing[1] if standing else None,
            score=standing[0] if standing else None,
            alerts=tuple(alerts.get(sid, no_alerts)),
            trend=trend,
            group_trend=group_trend,
            group_basis=basis,
            last_active=last,
            case=cases.get(sid),
        )
    return CaseloadView(as_of=as_of, weeks=trends.weeks, rows=rows)


def _ordered(rows: Mapping[str, CaseloadRow], sort: str) -> ScopeIndex:
    """The roster indexed by scope in one order (each index's lists keep that order)."""
    key = _SORT_KEYS[sort]
    keyed = [(key(r.student, r.band, r.score, r.alerts, r.case), r.student) for r in rows.values()]
    keyed.sort(key=lambda pair: pair[0])
    return ScopeIndex.of(s for _, s in keyed)


def with_case(
    view: CaseloadView, student_id: str, alerts: Sequence[OpenAlert], case: CaseLine | None
) -> CaseloadView:
    """The view with one student's open case and its alerts replaced (an action just moved it); the
    same as building it again with those. A student not in it: unchanged."""
    row = view.rows.get(student_id)
    if row is None:
        return view
    rows = {**view.rows, student_id: replace(row, alerts=tuple(alerts), case=case)}
    derived = (view, with_case, (student_id, tuple(alerts), case))
    return CaseloadView(view.as_of, view.weeks, rows, derived_from=_chained(derived))


#: The most views one derived view keeps alive through its bases (each a copy of the rows mapping);
#: a longer chain is cut, and the renderer is then sent the view whole.
MAX_DERIVED = 16


def _chained(derived: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """`derived`, unless its chain of bases is already MAX_DERIVED long."""
    base, depth = derived[0], 1
    while base.derived_from is not None:
        depth += 1
        if depth > MAX_DERIVED:
            return None
        base = base.derived_from[0]
    return derived


def escalated_to(
    view: CaseloadView, viewer: Staff, overdue: Sequence[str], escalation: CaseEscalation
) -> frozenset[str]:
    """Of the students with an overdue case, those whose case went up to the viewer (not the ones the
    viewer owns: those are theirs already)."""
    out = set()
    for sid in overdue:
        row = view.rows[sid]
        case = row.case
        mine = case is not None and case.owner != viewer.staff_id
        if mine and case is not None and escalation.on_desk(viewer, case.owner, row.student, True):
            out.add(sid)
    return frozenset(out)


def page_from_view(
    view: CaseloadView,
    viewer: Staff,
    query: CaseloadQuery,
    page_size: int,
    escalation: CaseEscalation | None = None,
) -> CaseloadPage:
    """One page of the viewer's caseload from the view: the scope comes from the access policy
    already in the order asked; filters walk it once; only the page's rows are taken. The counts of
    the scope's cases are kept with the view; the cases gone up to the viewer are found among its
    overdue ones only, with `escalation` (none without it), once per viewer and view: a directory
    load shows within the view's next refresh."""
    rows = view.rows
    scope: list[Any] = view.order(query.sort).students_for(viewer)
    options = view.options_for(viewer, scope)
    in_scope = len(scope)
    mine: frozenset[str] = frozenset()
    if escalation is not None:
        found = view._desks.get(viewer.staff_id)
        if found is None:
            found = view._desks[viewer.staff_id] = escalated_to(view, viewer, options.overdue, escalation)
        mine = found
    unfiltered = query == CaseloadQuery(sort=query.sort, page=query.page)
    as_of = view.as_of
    if unfiltered:
        chosen = scope
    else:
        if query.case == "escalated":
            scope = [s for s in scope if s.student_id in mine]
        chosen = [
            s
            for s in scope
            if _matches(
                s, rows[s.student_id].band, rows[s.student_id].alerts, query, rows[s.student_id].case, as_of
            )
        ]
    matching = len(chosen)
    pages = max(1, -(-matching // page_size))
    page = min(query.page, pages)
    return CaseloadPage(
        query=replace(query, page=page),
        rows=[rows[s.student_id] for s in chosen[(page - 1) * page_size : page * page_size]],
        matching=matching,
        in_scope=in_scope,
        pages=pages,
        programmes=options.programmes,
        years=options.years,
        modes=options.modes,
        rules=options.rules,
        trend_weeks=view.weeks,
        programme_pages=options.programme_pages,
        counts=options.counts,
        escalated=mine,
    )
