"""My students: the caseload page. A tutor sees their tutees, a programme leader their programme, a
director their school, an engagement officer the institution (models.access decides; nothing here
filters students by its own rule).

A page reads the precomputed view (ops.staff.page_views, issue 26): the scope comes out of the
access policy already in order, and only the page's rows are taken, on the page pool
(ops.staff.pool), which sheds with 503 rather than queue. `load_caseload` is the same page read
from the stores per request: what the view must equal (tested), and the benchmark's reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from models.access import (
    Action,
    CaseEscalation,
    IdentityRequired,
    ScopeIndex,
    Staff,
    StaffDirectory,
    UnknownStaff,
    may_see_programme,
)
from models.case_clock import OverduePolicy
from models.groups import comparison_groups, group_id, report_comparison, weekly_group_averages
from models.outbox import undelivered_notice
from models.reports import TREND_WEEKS
from ops.http.surface import Request, Response, as_bytes
from ops.staff.auth.web import csrf_token
from ops.staff.deps import StaffDeps
from ops.staff.page_views import open_cases
from ops.staff.web.common import NO_STORE, record_read, refused, render, respond, viewer_of
from ops.staff.web.views.caseload import (
    BANDS,
    BadQuery,
    CaseloadPage,
    CaseloadQuery,
    build_caseload,
    caseload_csv,
    with_details,
)
from ops.staff.web.views.precomputed import CaseloadView, page_from_view
from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import caseload as queries
from sinks.clickhouse import students as student_queries
from streams.gc_pause import collector_paused

#: The most students one export holds (an institution's whole caseload fits).
EXPORT_LIMIT = 1_000_000


def load_caseload(
    store: ClickHouseStore,
    viewer: Staff,
    query: CaseloadQuery,
    as_of: date,
    page_size: int,
    min_group: int,
    policy: OverduePolicy | None = None,
) -> CaseloadPage:
    """The caseload page's data: the viewer's scope from the access policy, then filtered and paged.

    Builds tens of thousands of short-lived tuples in a process that holds every student's stream
    state: the cyclic collector is paused meanwhile (streams.gc_pause), as on the stream's hot paths.
    """
    with collector_paused():
        return _load_caseload(store, viewer, query, as_of, page_size, min_group, policy)


def _load_caseload(
    store: ClickHouseStore,
    viewer: Staff,
    query: CaseloadQuery,
    as_of: date,
    page_size: int,
    min_group: int,
    policy: OverduePolicy | None,
) -> CaseloadPage:
    roster = queries.roster_lines(store, as_of)
    scope: list[Any] = ScopeIndex.of(roster).students_for(viewer)
    schools = {s.programme_code: s.school for s in scope}
    pages_open = sorted(code for code, school in schools.items() if may_see_programme(viewer, code, school))
    standings = queries.latest_standings(store, as_of, [s.student_id for s in scope])
    tutors = {s.student_id: s.personal_tutor_id for s in roster}
    cases = open_cases(store, as_of, tutors, policy or OverduePolicy())
    page = build_caseload(scope, standings, cases.alerts, query, page_size, cases.lines, as_of)
    first, last = queries.weeks_back(as_of, TREND_WEEKS)
    weeks = [first + timedelta(weeks=i) for i in range(TREND_WEEKS)]
    # each row's comparison group (models.groups), counted over the students on the roster in these
    # weeks; the events read are the page's students' and their groups' members' only
    everyone = student_queries.present_members(store, first, as_of)
    group_of = comparison_groups(everyone, min_group)
    wanted = {group_of[r.student.student_id] for r in page.rows if r.student.student_id in group_of}
    levels = {basis for basis, _ in wanted}
    in_groups = [m.student_id for m in everyone if any(group_id(m, lvl) in wanted for lvl in levels)]
    ids = sorted({r.student.student_id for r in page.rows} | set(in_groups))
    weekly, active = queries.weekly_totals(store, ids, first, last + timedelta(days=6)) if ids else ({}, {})
    averages = weekly_group_averages(everyone, wanted, weekly, weeks, min_group)
    quiet = [r.student.student_id for r in page.rows if r.student.student_id not in active]
    if quiet:  # nothing in eight weeks: look further back, for these few only
        active = {**active, **queries.last_active(store, quiet)}
    return replace(with_details(page, weekly, group_of, averages, active, weeks), programme_pages=pages_open)


#: The orders offered, with the words the page uses.
SORT_LABELS = (
    ("concern", "concern"),
    ("activity", "case activity, least recent first"),
    ("age", "case age, oldest first"),
    ("name", "name"),
    ("score", "score"),
    ("programme", "programme"),
)
#: The case filters with the words the page uses.
CASE_FILTER_LABELS = (
    ("need_action", "Need action"),
    ("in_progress", "In progress"),
    ("overdue", "Overdue"),
    ("follow_up", "Follow-up due this week"),
    ("escalated", "Come up to me"),
)


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
    overdue_days: int = 3,
    min_group: int = 8,
) -> str:
    """The page; `notice` tells the viewer of emails to them not delivered (the alert outbox); `csrf`
    (the session's token, '' without a session) goes in its sign-out form; `min_group` the smallest
    comparison group (LDE_MIN_COHORT_SIZE), named once with the sparklines."""
    return render(
        "caseload.html",
        page=page,
        viewer=viewer,
        names=names,
        as_of=as_of,
        bands=BANDS,
        notice=notice,
        csrf_token=csrf,
        sorts=SORT_LABELS,
        sort_label=dict(SORT_LABELS).get(page.query.sort, page.query.sort),
        case_filters=CASE_FILTER_LABELS,
        overdue_days=overdue_days,
        comparison=report_comparison(min_group),
    )


@dataclass(frozen=True, slots=True)
class CaseloadAsk:
    """What one caseload page (or export) asks of the view: who, which filters, and the parts of the
    page that come from the worker (the undelivered-email notice, the session's CSRF token)."""

    viewer: Staff
    query: CaseloadQuery
    page_size: int
    notice: str = ""
    csrf: str = ""
    overdue_days: int = 3
    min_group: int = 8


@dataclass(frozen=True, slots=True)
class Made:
    """A page (or CSV) made from the view, the students it shows (for the audit) and its day."""

    text: str
    student_ids: tuple[str, ...]
    as_of: date


def render_caseload(view: CaseloadView, directory: StaffDirectory, ask: CaseloadAsk) -> Made:
    """One caseload page from the view and the directory (run by ops.staff.renderer, in a renderer
    process in the embedded worker). Pure but for the template."""
    page = page_from_view(view, ask.viewer, ask.query, ask.page_size, CaseEscalation(directory))
    html = caseload_html(
        page,
        ask.viewer,
        {s.staff_id: s.name for s in directory},
        view.as_of,
        ask.notice,
        ask.csrf,
        ask.overdue_days,
        ask.min_group,
    )
    return Made(html, tuple(r.student.student_id for r in page.rows), view.as_of)


def render_export(view: CaseloadView, directory: StaffDirectory, ask: CaseloadAsk) -> Made:
    """The caseload's CSV (every matching student) from the view and the directory."""
    every = page_from_view(view, ask.viewer, ask.query, ask.page_size, CaseEscalation(directory))
    text = caseload_csv(every.rows, {s.staff_id: s.name for s in directory})
    return Made(text, tuple(r.student.student_id for r in every.rows), view.as_of)


def rendered(
    deps: StaffDeps,
    build: Callable[[CaseloadView, StaffDirectory, CaseloadAsk], Made],
    view: CaseloadView,
    ask: CaseloadAsk,
) -> Made:
    """`build` over the view and the directory in the renderer (ops.staff.renderer), timed
    (lde_web_render_seconds). Blocking: on a page thread."""
    began = time.perf_counter()
    made = deps.renderer.call(build, (view, deps.directory()), ask)
    deps.metrics.web_render_seconds.observe(time.perf_counter() - began)
    return made


def caseload_request(deps: StaffDeps, request: Request) -> tuple[Staff, CaseloadQuery] | Response:
    """Who asks for the caseload (page or export) and with which filters, or the page refusing
    them: no verified identity (refused) or a filter that does not parse (400, "Bad filter")."""
    try:
        viewer = viewer_of(request)
        query = CaseloadQuery.parse(request.query)
    except (IdentityRequired, UnknownStaff) as error:
        return refused(deps, request, "caseload", error)
    except BadQuery as error:
        body = render("error.html", viewer=None, title="Bad filter", message=str(error), status=400)
        return respond(deps, "caseload", body, 400)
    return viewer, query


async def caseload_page(deps: StaffDeps, request: Request) -> Response:
    """GET /app: the viewer's students, most worrying first."""
    asked = caseload_request(deps, request)
    if isinstance(asked, Response):
        return asked
    viewer, query = asked
    settings = deps.settings
    csrf = await csrf_token(deps.sessions, request)

    def work() -> str:
        view = deps.views.current()
        notice = undelivered_notice(*deps.views.undelivered(viewer.staff_id))
        ask = CaseloadAsk(
            viewer,
            query,
            settings.web_page_size,
            notice,
            csrf,
            settings.case_overdue_working_days,
            settings.min_cohort_size,
        )
        made = rendered(deps, render_caseload, view, ask)
        record_read(deps.reads, viewer, Action.CASELOAD, made.student_ids)
        return made.text

    body = await deps.pages.run(work)
    deps.metrics.personal_data_reads.labels(action="caseload", outcome="allowed").inc()
    return respond(deps, "caseload", body)


async def caseload_export(deps: StaffDeps, request: Request) -> Response:
    """GET /app/caseload.csv: the viewer's caseload as the page's filters choose it, every matching
    student (not one page), as a CSV download; audited as one read of those students."""
    asked = caseload_request(deps, request)
    if isinstance(asked, Response):
        return asked
    viewer, query = asked

    def work() -> tuple[str, date]:
        ask = CaseloadAsk(viewer, replace(query, page=1), EXPORT_LIMIT)
        made = rendered(deps, render_export, deps.views.current(), ask)
        record_read(deps.reads, viewer, Action.CASELOAD_EXPORT, made.student_ids)
        return made.text, made.as_of

    text, as_of = await deps.pages.run(work)
    deps.metrics.personal_data_reads.labels(action="caseload", outcome="allowed").inc()
    deps.metrics.web_pages.labels(page="caseload", status="2xx").inc()
    headers = {
        **NO_STORE,
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="lde-caseload-{as_of.isoformat()}.csv"',
    }
    # a byte-order mark: spreadsheets then read the names' accents and scripts as UTF-8
    return as_bytes(("\ufeff" + text).encode("utf-8"), headers=headers)
