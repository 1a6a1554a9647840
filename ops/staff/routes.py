"""The service's HTTP API, served by the Faust worker's web server: health, metrics, status, the
personal-data reads (through the access policy, audited) and the operators' actions.

Every route is in ROUTES with its kind; `register_routes` adds exactly those (and the collector's, see
ops.edge.collector), so a test can enumerate what the service answers. Before any handler runs, the
guard of its kind (ops.staff.auth.web) verifies who is asking: handlers never see an unverified request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.access import AccessDenied, IdentityRequired, UnknownStaff
from models.identifiers import path_refusal
from models.reports import BadWeek, last_complete_week, parse_week
from ops.edge.endpoints import ENDPOINTS
from ops.edge.openapi import OPENAPI_PATH
from ops.edge.xapi_resource import ABOUT_PATH as XAPI_ABOUT_PATH
from ops.edge.xapi_resource import STATEMENTS_PATH as XAPI_STATEMENTS_PATH
from ops.jobs.privacy import search_clickhouse, search_redis
from ops.jobs.reports.personal import (
    activity_view,
    alerts_view,
    export_anonymised,
    load_staff_rows,
    staff_from_csv_text,
    student_view,
)
from ops.jobs.reports.student import UnknownStudent, render_student_report, student_weekly_report
from ops.jobs.reports.weekly import NoStaffDirectory
from ops.jobs.scheduled import clock_today
from ops.staff.auth import api_tokens, signin
from ops.staff.web.routes import PAGES as WEB_PAGES
from sinks.mail import DeliveryError

if TYPE_CHECKING:
    from ops.runtime.wiring import Service

log = logging.getLogger("lde.stream")


class RouteKind(StrEnum):
    """Who a route is for (issue 15 puts each kind behind its own authentication)."""

    PUBLIC = "public"  # probes: no data
    METRICS = "metrics"  # Prometheus scrapes: aggregates only
    UPSTREAM = "upstream"  # source systems sending events (the collector, per-source tokens)
    STAFF = "staff"  # personal data through the access policy, every read audited
    ADMINISTRATOR = "administrator"  # loads, jobs, privacy checks, report runs, API tokens
    SIGN_IN = "sign_in"  # the browser sign-in flow (login, callback, logout): no data of their own


#: A handler: (the service, the request, the path's parameters) -> the view's response.
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    method: str
    kind: RouteKind
    handler: Handler


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _plain_json(rows: Any) -> Any:
    """Rows with dates as ISO strings, as Faust's JSON response wants them."""
    return json.loads(json.dumps(rows, default=_json_default))


def _refused(service: Service, view: Any, error: Exception, action: str) -> Any:
    status = 401 if isinstance(error, IdentityRequired) else 404 if isinstance(error, UnknownStudent) else 403
    service.lde.metrics.personal_data_reads.labels(action=action, outcome="denied").inc()
    # The reason names the student: kept out of the log (the refusal itself is audited).
    log.warning("personal_data_refused action=%s status=%d reason=%s", action, status, type(error).__name__)
    return view.json({"error": str(error), "status": status}, status=status)


def _bad_request(view: Any, message: str) -> Any:
    return view.json({"error": message, "status": 400}, status=400)


# -- public and metrics ------------------------------------------------------------------------------


async def live(service: Service, view: Any, request: Any) -> Any:
    return view.json({"status": "live"})


async def ready(service: Service, view: Any, request: Any) -> Any:
    ok, body = service.lde.ready()
    return view.json(body, status=200 if ok else 503)


async def metrics(service: Service, view: Any, request: Any) -> Any:
    # aiohttp refuses a charset inside content_type; the exposition format is plain text 0.0.4.
    body = generate_latest(service.lde.metrics.registry)
    return view.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def status(service: Service, view: Any, request: Any) -> Any:
    return view.json(service.lde.status())


# -- staff: personal data -------------------------------------------------------------------------------


def _credential(request: Any) -> str:
    from ops.staff.auth.web import credential_of

    return credential_of(request)


def _actor(request: Any) -> str:
    """Who ran an administrator action, for its log line (a staff id, or operator; never a student)."""
    from ops.staff.auth.web import viewer_of

    return viewer_of(request).staff_id


def _via(request: Any) -> str:
    """The audit's channel: `cli` for the command line's local operator token, else `http`."""
    from ops.staff.auth.web import via_of

    return via_of(request)


async def alerts(service: Service, view: Any, request: Any) -> Any:
    try:
        viewer = service.viewer(request)
    except (UnknownStaff, IdentityRequired) as error:
        return _refused(service, view, error, "alerts_list")
    rows = await asyncio.to_thread(
        alerts_view, service.lde.store, viewer, _via(request), _credential(request)
    )
    service.lde.metrics.personal_data_reads.labels(action="alerts_list", outcome="allowed").inc()
    return view.json(_plain_json(rows))


async def student(service: Service, view: Any, request: Any, student_id: str) -> Any:
    try:
        viewer = service.viewer(request)
        report = await asyncio.to_thread(
            student_view, service.lde.store, viewer, student_id, _via(request), _credential(request)
        )
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(service, view, error, "student_view")
    service.lde.metrics.personal_data_reads.labels(action="student_view", outcome="allowed").inc()
    return view.json(_plain_json(report))


async def student_own_report(service: Service, view: Any, request: Any, student_id: str) -> Any:
    lde = service.lde
    try:
        viewer = service.viewer(request)
        query = request.query
        week = (
            parse_week(query["week"])
            if query.get("week")
            else last_complete_week(clock_today(lde.clock, lde.tz))
        )
        report = await asyncio.to_thread(
            student_weekly_report,
            lde.store,
            student_id,
            week,
            viewer,
            _via(request),
            lde.settings.min_cohort_size,
        )
    except BadWeek as error:
        return _bad_request(view, str(error))
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(service, view, error, "student_report")
    files = await asyncio.to_thread(render_student_report, report)
    pdf = files.pop("pdf")
    assert isinstance(pdf, bytes)
    return view.json({**files, "pdf_base64": base64.b64encode(pdf).decode()})


async def activity(service: Service, view: Any, request: Any, student_id: str) -> Any:
    """A student's daily counts: through the access policy and audited like every personal read."""
    try:
        viewer = service.viewer(request)
        rows = await asyncio.to_thread(
            activity_view, service.lde.store, viewer, student_id, _via(request), _credential(request)
        )
    except (UnknownStaff, IdentityRequired, AccessDenied, UnknownStudent) as error:
        return _refused(service, view, error, "activity_view")
    service.lde.metrics.personal_data_reads.labels(action="activity_view", outcome="allowed").inc()
    return view.json(rows)


async def export(service: Service, view: Any, request: Any) -> Any:
    try:
        viewer = service.viewer(request)
        first = date.fromisoformat(request.query["from"])
        last = date.fromisoformat(request.query["to"])
    except (KeyError, ValueError) as error:
        return _bad_request(view, f"from/to: {error}")
    except (UnknownStaff, IdentityRequired) as error:
        return _refused(service, view, error, "export_anonymised")
    rows = await asyncio.to_thread(export_anonymised, service.lde.store, first, last, viewer, _via(request))
    return view.json(_plain_json(rows))


# -- administrators -------------------------------------------------------------------------------------


async def load_staff(service: Service, view: Any, request: Any) -> Any:
    text = (await request.read()).decode("utf-8-sig", errors="replace")
    rows, errors = staff_from_csv_text(text)
    if errors:
        return _bad_request(view, "; ".join(errors))
    try:
        directory = await asyncio.to_thread(load_staff_rows, service.lde.store, rows)
    except ValueError as error:
        return _bad_request(view, str(error))
    service.directory.replace(directory)
    log.info("staff_directory_loaded staff=%d roles=%d by=%s", len(directory), len(rows), _actor(request))
    return view.json({"staff": len(directory), "roles": len(rows)})


async def weekly_reports(service: Service, view: Any, request: Any) -> Any:
    query = request.query
    try:
        week = parse_week(query["week"]) if query.get("week") else None
        staff = query.getall("staff", []) or None
        log.info("weekly_reports_requested by=%s", _actor(request))
        run = await service.jobs.run_weekly_reports(week, staff, query.get("delivery"))
    except (BadWeek, UnknownStaff, NoStaffDirectory, DeliveryError) as error:
        return _bad_request(view, str(error))
    return view.json(run)


async def daily_job(service: Service, view: Any, request: Any) -> Any:
    query = request.query
    as_of = date.fromisoformat(query["as_of"]) if query.get("as_of") else None
    dry_run = query.get("dry_run", "") in ("1", "true", "yes")
    log.info("daily_job_requested by=%s dry_run=%s", _actor(request), dry_run)
    return view.json(await service.jobs.run_daily_job(as_of, dry_run))


async def privacy(service: Service, view: Any, request: Any, student_id: str) -> Any:
    lde = service.lde
    log.info("privacy_check_requested by=%s", _actor(request))  # the student stays out of the log
    places = await asyncio.to_thread(search_clickhouse, lde.store, student_id)
    places.update(await asyncio.to_thread(search_redis, lde.ledger.client, student_id))
    for name, table in (("activity", lde.activity), ("roster", lde.roster), ("absences", lde.absences)):
        if student_id in table:
            places[f"faust-table:{name}"] = 1
    return view.json(places)


ROUTES: tuple[Route, ...] = (
    Route("/health/live", "GET", RouteKind.PUBLIC, live),
    Route("/health/ready", "GET", RouteKind.PUBLIC, ready),
    Route("/metrics", "GET", RouteKind.METRICS, metrics),
    Route("/v1/status", "GET", RouteKind.PUBLIC, status),
    Route("/v1/alerts", "GET", RouteKind.STAFF, alerts),
    Route("/v1/students/{student_id}", "GET", RouteKind.STAFF, student),
    Route("/v1/reports/student/{student_id}", "GET", RouteKind.STAFF, student_own_report),
    Route("/v1/activity/{student_id}", "GET", RouteKind.STAFF, activity),
    Route("/v1/export/anonymised", "GET", RouteKind.STAFF, export),
    Route("/v1/staff", "POST", RouteKind.ADMINISTRATOR, load_staff),
    Route("/v1/reports/weekly", "POST", RouteKind.ADMINISTRATOR, weekly_reports),
    Route("/v1/jobs/daily", "POST", RouteKind.ADMINISTRATOR, daily_job),
    Route("/v1/privacy/{student_id}", "GET", RouteKind.ADMINISTRATOR, privacy),
    # -- issue 15: sign-in and personal API tokens --
    Route("/auth/login", "GET", RouteKind.SIGN_IN, signin.login),
    Route("/auth/callback", "GET", RouteKind.SIGN_IN, signin.callback),
    Route("/auth/session", "GET", RouteKind.SIGN_IN, signin.session_info),
    Route("/auth/logout", "POST", RouteKind.SIGN_IN, signin.logout),
    Route("/auth/local", "GET", RouteKind.SIGN_IN, signin.local_sign_in),
    Route("/v1/tokens", "GET", RouteKind.ADMINISTRATOR, api_tokens.list_route),
    Route("/v1/tokens/issue", "POST", RouteKind.ADMINISTRATOR, api_tokens.issue_route),
    Route("/v1/tokens/{token_id}/revoke", "POST", RouteKind.ADMINISTRATOR, api_tokens.revoke_route),
    # the staff web app (issue 16): every page is staff, through Service.viewer and the access policy
    *(Route(path, method, RouteKind.STAFF, handler) for path, method, handler in WEB_PAGES),
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


def _view_class(service: Service, route: Route) -> type[faust.web.View]:
    """A Faust view answering `route.method` with its handler (other methods: 405, from Faust)."""
    handler, kind = route.handler, route.kind

    async def answer(self: faust.web.View, request: Any, **params: Any) -> Any:
        refused = await service.guard.admit(kind, self, request)  # who may call a route of this kind
        if refused is not None:
            return refused
        malformed = path_refusal(params)  # an id outside its pattern names nothing (issue 22)
        if malformed is not None:
            return self.json({"error": malformed}, status=404)
        return await handler(service, self, request, **params)

    name = f"lde_{handler.__name__}"
    view = type(name, (faust.web.View,), {route.method.lower(): answer, "__doc__": handler.__doc__})
    return view


def register_routes(app: faust.App, service: Service) -> None:
    """Add every route of ROUTES to the app's web server."""
    for route in ROUTES:
        app.page(route.path, name=f"lde_{route.handler.__name__}")(_view_class(service, route))
