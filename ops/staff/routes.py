"""The service's HTTP API, served by the worker's web server (ops.runtime.web_thread) and `lde web`:
health, metrics, status, the personal-data reads (through the access policy, audited) and the
operators' actions.

Every route is in ROUTES with its kind; `add_routes` adds exactly those (and the collector's, see
ops.edge.collector), so a test can enumerate what the service answers. Before any handler runs, the
guard's middleware (ops.staff.auth.web.install_guard) looks the route's kind up here and verifies who
is asking: handlers never see an unverified request. Each handler is given the dependency object it
uses (ops.staff.deps), named by its route's `uses`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Container, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.access import AccessDenied, IdentityRequired, UnknownStaff
from models.identifiers import path_refusal
from models.reports import BadDay, BadWeek, last_complete_week, parse_day, parse_week
from ops.edge.endpoints import ENDPOINTS
from ops.edge.openapi import OPENAPI_PATH
from ops.edge.xapi_resource import ABOUT_PATH as XAPI_ABOUT_PATH
from ops.edge.xapi_resource import STATEMENTS_PATH as XAPI_STATEMENTS_PATH
from ops.http.surface import Handler, Request, Response, RouteKind, as_bytes, as_json
from ops.jobs.privacy import search_clickhouse, search_redis
from ops.jobs.reports.audited import UnknownStudent, not_visible
from ops.jobs.reports.personal import (
    activity_view,
    alerts_view,
    export_anonymised,
    load_staff_rows,
    staff_from_csv_text,
    student_view,
)
from ops.jobs.reports.student import render_student_report, student_weekly_report
from ops.jobs.reports.weekly import NoStaffDirectory
from ops.staff.auth import api_tokens, signin
from ops.staff.auth.web import credential_of, via_of, viewer_of
from ops.staff.deps import AdminDeps, Probes, RouteDeps, StaffDeps, Uses
from ops.staff.web.routes import PAGES as WEB_PAGES
from ops.staff.web.routes import PUBLIC_PAGES as WEB_PUBLIC_PAGES
from sinks.mail import DeliveryError

__all__ = ["ROUTES", "Route", "RouteKind", "add_routes", "route_kinds"]

log = logging.getLogger("lde.stream")


@dataclass(frozen=True, slots=True)
class Route:
    """One route: its path and method, its kind (who may call it: the guard decides by it), its
    handler, and which dependency object (ops.staff.deps.RouteDeps) the handler takes."""

    path: str
    method: str
    kind: RouteKind
    handler: Handler
    uses: Uses = Uses.STAFF


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _plain_json(rows: object) -> object:
    """Rows with dates as ISO strings, as Faust's JSON response wants them."""
    return json.loads(json.dumps(rows, default=_json_default))


def _refused(deps: StaffDeps, error: Exception, action: str) -> Response:
    """A refused personal-data read. A student outside the viewer's scope is answered exactly as one
    not on the roster (404, the same words): the answer tells nobody which students exist. The
    refusal itself is audited by the gateway (ops.jobs.reports.audited)."""
    status = 401 if isinstance(error, IdentityRequired) else 403 if isinstance(error, UnknownStaff) else 404
    message = (
        not_visible(error.student_id) if isinstance(error, AccessDenied | UnknownStudent) else str(error)
    )
    deps.metrics.personal_data_reads.labels(action=action, outcome="denied").inc()
    # The reason names the student: kept out of the log (the refusal itself is audited).
    log.warning("personal_data_refused action=%s status=%d reason=%s", action, status, type(error).__name__)
    return as_json({"error": message, "status": status}, status=status)


def _bad_request(message: str) -> Response:
    return as_json({"error": message, "status": 400}, status=400)


# -- public and metrics ------------------------------------------------------------------------------


async def live(probes: Probes, request: Request) -> Response:
    return as_json({"status": "live"})


async def ready(probes: Probes, request: Request) -> Response:
    ok, body = probes.ready()
    return as_json(body, status=200 if ok else 503)


async def metrics(probes: Probes, request: Request) -> Response:
    # aiohttp refuses a charset inside content_type; the exposition format is plain text 0.0.4.
    body = generate_latest(probes.registry)
    return as_bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status(probes: Probes, request: Request) -> Response:
    return as_json(probes.status())


# -- staff: personal data -------------------------------------------------------------------------------


def _actor(request: Request) -> str:
    """Who ran an administrator action, for its log line (a staff id, or operator; never a student)."""
    return viewer_of(request).staff_id


async def alerts(deps: StaffDeps, request: Request) -> Response:
    try:
        viewer = viewer_of(request)
    except (UnknownStaff, IdentityRequired) as error:
        return _refused(deps, error, "alerts_list")
    rows = await deps.pages.run(
        alerts_view, deps.store, deps.reads, viewer, via_of(request), credential_of(request)
    )
    deps.metrics.personal_data_reads.labels(action="alerts_list", outcome="allowed").inc()
    return as_json(_plain_json(rows))


async def student(deps: StaffDeps, request: Request, student_id: str) -> Response:
    try:
        viewer = viewer_of(request)
        report = await deps.pages.run(
            student_view, deps.store, deps.reads, viewer, student_id, via_of(request), credential_of(request)
        )
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(deps, error, "student_view")
    deps.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    return as_json(_plain_json(report))


async def student_own_report(deps: StaffDeps, request: Request, student_id: str) -> Response:
    try:
        viewer = viewer_of(request)
        query = request.query
        week = parse_week(query["week"]) if query.get("week") else last_complete_week(deps.today())
        report = await deps.pages.run(
            student_weekly_report,
            deps.store,
            deps.reads,
            student_id,
            week,
            viewer,
            via_of(request),
            deps.settings.min_cohort_size,
        )
    except BadWeek as error:
        return _bad_request(str(error))
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(deps, error, "student_report")
    files = await deps.pages.run(render_student_report, report)
    pdf = files.pop("pdf")
    assert isinstance(pdf, bytes)
    return as_json({**files, "pdf_base64": base64.b64encode(pdf).decode()})


async def activity(deps: StaffDeps, request: Request, student_id: str) -> Response:
    """A student's daily counts: through the access policy and audited like every personal read."""
    try:
        viewer = viewer_of(request)
        rows = await deps.pages.run(
            activity_view, deps.store, deps.reads, viewer, student_id, via_of(request), credential_of(request)
        )
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(deps, error, "activity_view")
    deps.metrics.personal_data_reads.labels(action="activity_view", outcome="allowed").inc()
    return as_json(rows)


async def export(deps: StaffDeps, request: Request) -> Response:
    try:
        viewer = viewer_of(request)
        first = parse_day(request.query["from"], "from")
        last = parse_day(request.query["to"], "to")
    except KeyError as error:
        return _bad_request(f"from/to: both are needed, {error} is missing")
    except BadDay as error:
        return _bad_request(str(error))
    except (UnknownStaff, IdentityRequired) as error:
        return _refused(deps, error, "export_anonymised")
    rows = await deps.pages.run(
        export_anonymised, deps.store, deps.reads, first, last, viewer, via_of(request)
    )
    return as_json(_plain_json(rows))


# -- administrators -------------------------------------------------------------------------------------


async def load_staff(deps: AdminDeps, request: Request) -> Response:
    text = (await request.read()).decode("utf-8-sig", errors="replace")
    rows, errors = staff_from_csv_text(text)
    if errors:
        return _bad_request("; ".join(errors))
    try:
        directory = await asyncio.to_thread(load_staff_rows, deps.store, rows)
    except ValueError as error:
        return _bad_request(str(error))
    deps.directory.replace(directory)
    log.info("staff_directory_loaded staff=%d roles=%d by=%s", len(directory), len(rows), _actor(request))
    return as_json({"staff": len(directory), "roles": len(rows)})


async def weekly_reports(deps: AdminDeps, request: Request) -> Response:
    query = request.query
    try:
        week = parse_week(query["week"]) if query.get("week") else None
        staff = query.getall("staff", []) or None
        log.info("weekly_reports_requested by=%s", _actor(request))
        run = await deps.jobs.run_weekly_reports(week, staff, query.get("delivery"))
    except (BadWeek, UnknownStaff, NoStaffDirectory, DeliveryError) as error:
        return _bad_request(str(error))
    if "files" in run:  # no server paths in answers: names in the reports folder
        run["files"] = [report_name(path, deps.jobs.settings.reports_path) for path in run["files"]]
    return as_json(run)


def report_name(path: str, folder: Path) -> str:
    """A written report's name relative to the reports folder (never the server's absolute path). Pure."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name


async def daily_job(deps: AdminDeps, request: Request) -> Response:
    query = request.query
    try:
        as_of = parse_day(query["as_of"], "as_of") if query.get("as_of") else None
    except BadDay as error:
        return _bad_request(str(error))
    dry_run = query.get("dry_run", "") in ("1", "true", "yes")
    log.info("daily_job_requested by=%s dry_run=%s", _actor(request), dry_run)
    return as_json(await deps.jobs.run_daily_job(as_of, dry_run))


async def privacy(deps: AdminDeps, request: Request, student_id: str) -> Response:
    log.info("privacy_check_requested by=%s", _actor(request))  # the student stays out of the log
    places = await asyncio.to_thread(search_clickhouse, deps.store, student_id)
    places.update(await asyncio.to_thread(search_redis, deps.redis, student_id))
    for name, table in deps.tables.items():
        if student_id in table:
            places[f"faust-table:{name}"] = 1
    return as_json(places)


ROUTES: tuple[Route, ...] = (
    Route("/health/live", "GET", RouteKind.PUBLIC, live, Uses.PROBES),
    Route("/health/ready", "GET", RouteKind.PUBLIC, ready, Uses.PROBES),
    Route("/metrics", "GET", RouteKind.METRICS, metrics, Uses.PROBES),
    Route("/v1/status", "GET", RouteKind.PUBLIC, status, Uses.PROBES),
    Route("/v1/alerts", "GET", RouteKind.STAFF, alerts),
    Route("/v1/students/{student_id}", "GET", RouteKind.STAFF, student),
    Route("/v1/reports/student/{student_id}", "GET", RouteKind.STAFF, student_own_report),
    Route("/v1/activity/{student_id}", "GET", RouteKind.STAFF, activity),
    Route("/v1/export/anonymised", "GET", RouteKind.STAFF, export),
    Route("/v1/staff", "POST", RouteKind.ADMINISTRATOR, load_staff, Uses.ADMIN),
    Route("/v1/reports/weekly", "POST", RouteKind.ADMINISTRATOR, weekly_reports, Uses.ADMIN),
    Route("/v1/jobs/daily", "POST", RouteKind.ADMINISTRATOR, daily_job, Uses.ADMIN),
    Route("/v1/privacy/{student_id}", "GET", RouteKind.ADMINISTRATOR, privacy, Uses.ADMIN),
    # -- issue 15: sign-in and personal API tokens --
    Route("/auth/login", "GET", RouteKind.SIGN_IN, signin.login, Uses.SIGNIN),
    Route("/auth/callback", "GET", RouteKind.SIGN_IN, signin.callback, Uses.SIGNIN),
    Route("/auth/session", "GET", RouteKind.SIGN_IN, signin.session_info, Uses.SIGNIN),
    Route("/auth/logout", "POST", RouteKind.SIGN_IN, signin.logout, Uses.SIGNIN),
    Route("/auth/sign-out", "GET", RouteKind.SIGN_IN, signin.logout_page, Uses.SIGNIN),
    Route("/auth/signed-out", "GET", RouteKind.SIGN_IN, signin.signed_out, Uses.SIGNIN),
    Route("/auth/local", "GET", RouteKind.SIGN_IN, signin.local_sign_in, Uses.SIGNIN),
    Route("/v1/tokens", "GET", RouteKind.ADMINISTRATOR, api_tokens.list_route, Uses.TOKENS),
    # a holder issues and revokes their own token; an administrator revokes anyone's (issue 22)
    Route("/v1/tokens/issue", "POST", RouteKind.STAFF, api_tokens.issue_route, Uses.TOKENS),
    Route("/v1/tokens/{token_id}/revoke", "POST", RouteKind.STAFF, api_tokens.revoke_route, Uses.TOKENS),
    # the staff web app (issue 16): every page is staff, the viewer the guard verified, the access policy
    *(Route(path, method, RouteKind.STAFF, handler) for path, method, handler in WEB_PAGES),
    *(Route(path, method, RouteKind.PUBLIC, handler) for path, method, handler in WEB_PUBLIC_PAGES),
)


def route_kinds() -> dict[str, RouteKind]:
    """Every path the service answers, with its kind: ROUTES, the collector's endpoints and its
    OpenAPI document."""
    kinds = {route.path: route.kind for route in ROUTES}
    kinds.update({endpoint.path: RouteKind.UPSTREAM for endpoint in ENDPOINTS})
    kinds[OPENAPI_PATH] = RouteKind.PUBLIC
    # The xAPI resource (issue 17): statements take the source's credentials; "about" is the
    # spec's unauthenticated version check (no data).
    kinds[XAPI_STATEMENTS_PATH] = RouteKind.UPSTREAM
    kinds[XAPI_ABOUT_PATH] = RouteKind.PUBLIC
    return kinds


#: The routes whose handlers run on the stream's event loop in a worker (ops.runtime.web_thread): the
#: probes (a worker whose stream is stuck is not live) and the administrators' actions (the job
#: runner's locks and the stream's tables live there). Everything else runs on the web server's loop.
ON_STREAM_LOOP = frozenset({Uses.PROBES, Uses.ADMIN})

#: Runs a handler's coroutine on the stream's event loop (ops.runtime.web_thread.StreamLoop.run).
OnStream = Callable[[Coroutine[Any, Any, Response]], Awaitable[Response]]

#: What aiohttp's router calls.
AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_handler(route: Route, deps: object, on_stream: OnStream | None = None) -> AiohttpHandler:
    """An aiohttp handler answering `route` with its handler and dependencies; with `on_stream`, a
    route of ON_STREAM_LOOP runs there (its body read first, here: the request's stream is this
    loop's). The guard has already admitted the request (ops.staff.auth.web.install_guard)."""
    handler = route.handler
    bridged = on_stream is not None and route.uses in ON_STREAM_LOOP

    async def handle(request: web.Request, params: dict[str, str]) -> Response:
        return await handler(deps, request, **params)

    async def answer(request: web.Request) -> web.StreamResponse:
        params = dict(request.match_info)
        malformed = path_refusal(params)  # an id outside its pattern names nothing (issue 22)
        if malformed is not None:
            return as_json({"error": malformed}, status=404)
        if bridged and on_stream is not None:
            await request.read()  # kept by the request: the handler's read() returns it on any loop
            return await on_stream(handle(request, params))
        return await handle(request, params)

    answer.__name__ = f"lde_{handler.__name__}"
    answer.__doc__ = handler.__doc__
    return answer


def add_routes(
    app: web.Application,
    deps: RouteDeps,
    *,
    probes_only: bool = False,
    on_stream: OnStream | None = None,
    skip: Container[str] = (),
) -> None:
    """Add every route of ROUTES (but `skip`) to `app`, each with the dependencies it uses: only the
    probes and status with `probes_only` (a production stream worker, issue 26); `on_stream` in a
    worker (see `route_handler`)."""
    for route in ROUTES:
        if (probes_only and route.uses is not Uses.PROBES) or route.path in skip:
            continue
        app.router.add_route(route.method, route.path, route_handler(route, deps.of(route.uses), on_stream))
