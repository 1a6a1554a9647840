"""My students: the caseload page. A tutor sees their tutees, a programme leader their programme, a
director their school, an engagement officer the institution (models.access decides; nothing here
filters students by its own rule).

A page reads the precomputed view (ops.staff.page_views, issue 26): the scope comes out of the
access policy already in order, and only the page's rows are taken, on the page pool
(ops.staff.pool), which sheds with 503 rather than queue. `load_caseload` is the same page read
from the stores per request: what the view must equal (tested), and the benchmark's reference.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from models.access import Action, IdentityRequired, ScopeIndex, Staff, UnknownStaff, may_see_programme
from models.outbox import undelivered_notice
from models.reports import TREND_WEEKS
from ops.http.surface import Request, Response
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.page_views import open_alerts
from ops.staff.web.common import names_of, record_read, refused, render, respond, viewer_of
from ops.staff.web.views.caseload import (
    BANDS,
    BadQuery,
    CaseloadPage,
    CaseloadQuery,
    build_caseload,
    programme_average,
    with_details,
)
from ops.staff.web.views.precomputed import page_from_view
from sinks.clickhouse import ClickHouseStore, outbox
from sinks.clickhouse import caseload as queries
from streams.gc_pause import collector_paused


def load_caseload(
    store: ClickHouseStore, viewer: Staff, query: CaseloadQuery, as_of: date, page_size: int, min_group: int
) -> CaseloadPage:
    """The caseload page's data: the viewer's scope from the access policy, then filtered and paged.

    Builds tens of thousands of short-lived tuples in a process that holds every student's stream
    state: the cyclic collector is paused meanwhile (streams.gc_pause), as on the stream's hot paths.
    """
    with collector_paused():
        return _load_caseload(store, viewer, query, as_of, page_size, min_group)


def _load_caseload(
    store: ClickHouseStore, viewer: Staff, query: CaseloadQuery, as_of: date, page_size: int, min_group: int
) -> CaseloadPage:
    roster = queries.roster_lines(store, as_of)
    scope: list[Any] = ScopeIndex.of(roster).students_for(viewer)
    schools = {s.programme_code: s.school for s in scope}
    pages_open = sorted(code for code, school in schools.items() if may_see_programme(viewer, code, school))
    standings = queries.latest_standings(store, as_of, [s.student_id for s in scope])
    page = build_caseload(scope, standings, open_alerts(store, as_of), query, page_size)
    first, last = queries.weeks_back(as_of, TREND_WEEKS)
    weeks = [first + timedelta(weeks=i) for i in range(TREND_WEEKS)]
    programmes = {r.student.programme_code for r in page.rows}
    members: dict[str, list[str]] = defaultdict(list)
    for s in roster:
        if s.programme_code in programmes:
            members[s.programme_code].append(s.student_id)
    ids = sorted({r.student.student_id for r in page.rows} | {m for ms in members.values() for m in ms})
    weekly, active = queries.weekly_totals(store, ids, first, last + timedelta(days=6)) if ids else ({}, {})
    averages = {code: programme_average(weekly, ms, weeks, min_group) for code, ms in members.items()}
    quiet = [r.student.student_id for r in page.rows if r.student.student_id not in active]
    if quiet:  # nothing in eight weeks: look further back, for these few only
        active = {**active, **queries.last_active(store, quiet)}
    return replace(with_details(page, weekly, averages, active, weeks), programme_pages=pages_open)


def caseload_as_of(store: ClickHouseStore, fallback: date) -> date:
    """The day the caseload describes: the evaluator's latest scored day (else the service's today)."""
    return queries.latest_scored_day(store) or fallback


def caseload_html(
    page: CaseloadPage,
    viewer: Staff,
    names: dict[str, str],
    as_of: date,
    notice: str = "",
    csrf: str = "",
) -> str:
    """The page; `notice` tells the viewer of emails to them not delivered (the alert outbox); `csrf`
    (the session's token, '' without a session) goes in its sign-out form."""
    return render(
        "caseload.html",
        page=page,
        viewer=viewer,
        names=names,
        as_of=as_of,
        bands=BANDS,
        notice=notice,
        csrf_token=csrf,
    )


async def caseload_page(deps: StaffDeps, request: Request) -> Response:
    """GET /app: the viewer's students, most worrying first."""
    try:
        viewer = viewer_of(request)
        query = CaseloadQuery.parse(request.query)
    except (IdentityRequired, UnknownStaff) as error:
        return refused(deps, request, "caseload", error)
    except BadQuery as error:
        body = render("error.html", viewer=None, title="Bad filter", message=str(error), status=400)
        return respond(deps, "caseload", body, 400)
    settings = deps.settings
    csrf = await csrf_token(deps.sessions, request)

    def work() -> str:
        view = deps.views.current()
        page = page_from_view(view, viewer, query, settings.web_page_size)
        record_read(deps.reads, viewer, Action.CASELOAD, [r.student.student_id for r in page.rows])
        notice = undelivered_notice(*outbox.undelivered_to(deps.store, viewer.staff_id))
        return caseload_html(page, viewer, names_of(deps), view.as_of, notice, csrf)

    body = await deps.pages.run(work)
    deps.metrics.personal_data_reads.labels(action="caseload", outcome="allowed").inc()
    return respond(deps, "caseload", body)
