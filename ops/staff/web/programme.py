"""The programme page, for programme leaders, directors and engagement officers (models.access
`may_see_programme`): the cohort's bands week by week, the students moving down (with their ids:
two students may share a name), engagement by source against the institution, and the impact
summary of the programme's cases (models.impact, issue 27.7: aggregated, counts rounded to 5 and
figures over fewer than 8 cases suppressed, as the trends are)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from models.access import (
    AccessDenied,
    Action,
    IdentityRequired,
    Staff,
    UnknownStaff,
    may_see,
    may_see_programme,
)
from models.impact import ImpactSummary
from models.reports import TREND_WEEKS
from models.workdays import WorkingCalendar
from ops.http.surface import Request, Response
from ops.jobs.reports.audited import AuditedReads
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.web.common import NotFound, error_page, record_read, refused, render, respond, viewer_of
from ops.staff.web.views.programme import BAND_ROWS, band_distribution, moving_down, source_comparison
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import caseload as queries
from sinks.clickhouse.caseload import RosterLine
from sinks.clickhouse.cases import programme_impact

#: The institution's events per source over some days, and its student count (queries.source_totals).
Institution = Callable[[date, date], tuple[dict[str, int], int]]
#: A programme's impact summary of the cases opened between two days (sinks.clickhouse.cases).
Impact = Callable[[str, date, date], ImpactSummary]


def load_programme(
    store: ClickHouseStore,
    reads: AuditedReads,
    viewer: Staff,
    code: str,
    as_of: date,
    min_group: int,
    members: Sequence[RosterLine] | None = None,
    institution: Institution | None = None,
    impact: Impact | None = None,
) -> dict[str, Any]:
    """The programme page's data. Raises NotFound, also for a programme outside the viewer's scope
    (the same answer as for one that does not exist: no oracle), that refusal audited; audited (the
    students named).

    `members`, `institution` and `impact` come from the precomputed views (ops.staff.page_views,
    issue 26): the programme's students, the institution's figures (the same for every programme's
    page) and the programme's impact summary, each read once per view; without them they are read
    here (the whole roster, every student's days, the programme's cases)."""
    if members is None:
        members = [s for s in queries.roster_lines(store, as_of) if s.programme_code == code]
    members = list(members)
    missing = f"no programme {code} with students on the roster"
    if not members:
        raise NotFound(missing)
    if not may_see_programme(viewer, code, members[0].school):
        reads.refuse(viewer, Action.PROGRAMME_VIEW, "web", [])
        raise NotFound(missing)
    first, _ = queries.weeks_back(as_of, TREND_WEEKS)
    weeks = [first + timedelta(weeks=i) for i in range(TREND_WEEKS)]
    ids = [s.student_id for s in members]
    history = queries.band_history(store, ids, first, as_of)
    names = {s.student_id: s.name for s in members}
    since = weeks[-3] if len(weeks) >= 3 else weeks[0]
    moving = [
        m
        for m in moving_down(history, names, since, weeks[-1])
        if may_see(viewer, _ref(members, m.student_id))
    ]
    own, n = queries.source_totals(store, ids, first, as_of)
    everyone, total = (institution or (lambda f, a: queries.source_totals(store, None, f, a)))(first, as_of)
    record_read(reads, viewer, Action.PROGRAMME_VIEW, [m.student_id for m in moving])
    return {
        "code": code,
        "name": members[0].programme_name,
        "students": len(members),
        "weeks": weeks,
        "as_of": as_of,
        "distribution": band_distribution(history, ids, weeks),
        "band_rows": BAND_ROWS,
        "moving": moving,
        "since": since,
        "latest": weeks[-1],
        "sources": source_comparison(own, n, everyone, total, min_group),
        "impact": (impact or (lambda c, f, a: programme_impact(store, c, f, a, WorkingCalendar())))(
            code, first, as_of
        ),
        "min_group": min_group,
    }


def _ref(members: list[RosterLine], student_id: str) -> RosterLine:
    return next(s for s in members if s.student_id == student_id)


async def programme_page(deps: StaffDeps, request: Request, programme_code: str) -> Response:
    """GET /app/programmes/{code}."""
    try:
        viewer = viewer_of(request)
        view = await deps.pages.run(deps.views.current)
        data = await deps.pages.run(
            load_programme,
            deps.store,
            deps.reads,
            viewer,
            programme_code,
            view.as_of,
            deps.settings.min_cohort_size,
            view.order("concern").by_programme.get(programme_code, []),
            deps.views.institution_sources,
            deps.views.programme_impact,
        )
    except (IdentityRequired, UnknownStaff, AccessDenied) as error:
        return refused(deps, request, "programme", error)
    except NotFound as error:
        return error_page(deps, "programme", 404, "Programme not found", str(error))
    deps.metrics.personal_data_reads.labels(action="programme_view", outcome="allowed").inc()
    csrf = await csrf_token(deps.sessions, request)
    return respond(deps, "programme", render("programme.html", viewer=viewer, csrf_token=csrf, **data))
