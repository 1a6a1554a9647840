"""Route registration: the service answers exactly the classified routes, each with its method, and
the route guard (aiohttp middleware) stands in front of every one of them by its kind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from models.access import Grant, Role, Staff, StaffDirectory
from models.clock import WallClock
from ops.edge.collector import Collector, register_collector_routes
from ops.http.proxy import parse_networks
from ops.http.ratelimit import FailureLimiter
from ops.http.surface import as_html
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.authenticator import Authenticator
from ops.staff.auth.web import Guard, install_guard, install_security_headers
from ops.staff.deps import RouteDeps, Uses
from ops.staff.routes import ROUTES, RouteKind, add_routes, report_name, route_kinds
from streams.app import faust_app

OPERATOR = "operator-token-for-the-route-tests"


def no_deps() -> RouteDeps:
    """Dependencies a handler would fail on: the routes that must not run never touch them."""
    return RouteDeps(*(SimpleNamespace() for _ in Uses))  # type: ignore[arg-type]


@pytest.fixture
def app() -> web.Application:
    """The worker's aiohttp application with the service's routes and the collector's, never served."""
    app = web.Application()
    add_routes(app, no_deps())  # handlers read their dependencies only when they answer
    publisher = SimpleNamespace()  # the collector publishes only when it answers
    collector = Collector(Settings(), Metrics(), publisher, WallClock(), lambda partitions: {})  # type: ignore[arg-type]
    register_collector_routes(app, collector, None)
    return app


def methods_by_path(app: web.Application) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for route in app.router.routes():
        if route.resource is not None:
            found.setdefault(str(route.resource.canonical), set()).add(route.method)
    return found


def test_every_route_the_app_answers_is_classified(app: web.Application) -> None:
    assert set(methods_by_path(app)) == set(route_kinds())


def test_each_route_answers_its_method_only(app: web.Application) -> None:
    answered = methods_by_path(app)
    for route in ROUTES:
        assert answered[route.path] == {route.method}, route.path


def test_probes_only_is_what_a_production_worker_serves() -> None:
    app = web.Application()
    add_routes(app, no_deps(), probes_only=True)
    assert set(methods_by_path(app)) == {"/health/live", "/health/ready", "/metrics", "/v1/status"}


def test_every_handler_takes_the_dependencies_its_route_names() -> None:
    """The route table names which dependency object each handler gets: by the handler's first
    parameter's annotation (the names of ops.staff.deps and the auth objects)."""
    expected = {
        Uses.PROBES: "Probes",
        Uses.STAFF: "StaffDeps",
        Uses.ADMIN: "AdminDeps",
        Uses.SIGNIN: "SignIn",
        Uses.TOKENS: "ApiTokens",
    }
    for route in ROUTES:
        first = next(iter(route.handler.__annotations__.values()))
        assert first == expected[route.uses], route.path


def test_the_kinds_split_as_the_access_rules_need() -> None:
    kinds = route_kinds()
    assert {p for p, k in kinds.items() if k is RouteKind.PUBLIC} == {
        "/health/live",
        "/health/ready",
        "/v1/status",
        "/v1/openapi.json",
        "/xapi/about",  # the xAPI spec's version check: no credentials, no data
        "/app/static/{name}",  # the stylesheet: the sign-in pages use it before any session exists
    }
    assert kinds["/metrics"] is RouteKind.METRICS
    assert {p for p, k in kinds.items() if k is RouteKind.UPSTREAM} == {
        "/v1/caliper",
        "/v1/xapi/statements",
        "/v1/events",
        "/v1/canvas/live-events",
        "/xapi/statements",  # the xAPI statements resource (issue 17)
    }
    # Everything that reads personal data or changes anything is staff or administrator.
    for path in ("/v1/students/{student_id}", "/v1/activity/{student_id}", "/v1/alerts"):
        assert kinds[path] is RouteKind.STAFF
    for path in ("/v1/staff", "/v1/jobs/daily", "/v1/reports/weekly", "/v1/privacy/{student_id}"):
        assert kinds[path] is RouteKind.ADMINISTRATOR
    # a holder issues and revokes their own personal token (issue 22); administrators list them all
    for path in ("/v1/tokens/issue", "/v1/tokens/{token_id}/revoke"):
        assert kinds[path] is RouteKind.STAFF
    assert kinds["/v1/tokens"] is RouteKind.ADMINISTRATOR
    assert len(kinds) == len(ROUTES) + 7  # + 4 collector endpoints, its OpenAPI document, 2 xAPI


# -- the guard as middleware, through a real aiohttp server on the loopback ---------------------------


def guarded_app(web_app: web.Application, metrics_token: str = "") -> web.Application:
    """The application with the guard installed as the wiring installs it."""
    metrics = Metrics()
    auth = Authenticator(
        metrics=metrics,
        proxies=parse_networks(["10.0.0.5"]),
        operator_token=OPERATOR,
        limiter=FailureLimiter(60),
    )
    directory = StaffDirectory([Staff("T1", "Tia", "t@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))])
    settings = Settings(metrics_token=metrics_token)  # type: ignore[arg-type]
    guard = Guard(settings, metrics, auth, lambda: directory)
    guard.page_refusal = lambda request, error: as_html(f"sign in: {type(error).__name__}", status=401)

    async def unclassified(request: web.Request) -> web.Response:
        return web.Response(text="ran")

    web_app.router.add_get("/not-in-the-table", unclassified)
    install_guard(web_app, guard, route_kinds())
    return web_app


def answers(web_app: web.Application, *requests: tuple[str, str, dict[str, str]]) -> list[tuple[int, str]]:
    """(status, body) of each request, sent to the application served on 127.0.0.1."""

    async def run() -> list[tuple[int, str]]:
        async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
            out = []
            for method, path, headers in requests:
                response = await client.request(method, path, headers=headers)
                out.append((response.status, await response.text()))
            return out

    return asyncio.run(run())


def test_the_guard_refuses_before_any_handler_runs(app: web.Application) -> None:
    # The handlers' dependencies are empty: a handler that ran would answer 500.
    [alerts, page, admin, unclassified] = answers(
        guarded_app(app),
        ("GET", "/v1/alerts", {}),
        ("GET", "/app", {}),
        ("POST", "/v1/jobs/daily", {"Authorization": f"Bearer {OPERATOR}x"}),
        ("GET", "/not-in-the-table", {}),
    )
    assert alerts[0] == 401 and '"status":401' in alerts[1]
    assert page == (401, "sign in: IdentityRequired")  # a browser page's refusal is a page
    assert admin[0] == 401
    assert unclassified[0] == 401  # a route missing from the table is closed, not open


def test_the_guard_admits_by_kind_and_leaves_404_and_405_to_aiohttp(app: web.Application) -> None:
    [live, metrics, wrong_method, nowhere, tutor_as_admin] = answers(
        guarded_app(app, metrics_token="scrape"),
        ("GET", "/health/live", {}),
        ("GET", "/metrics", {}),
        ("POST", "/health/live", {}),
        ("GET", "/no/such/path", {}),
        ("POST", "/v1/jobs/daily", {"X-LDE-Staff": "T1"}),  # not from the trusted proxy: no identity
    )
    assert live == (200, '{"status":"live"}')
    assert metrics[0] == 401  # the scrape token is asked for before the handler
    assert wrong_method[0] == 405 and nowhere[0] == 404
    assert tutor_as_admin[0] == 401


def test_the_worker_runs_no_faust_web_server() -> None:
    """Faust's own web server would add its router and table views (/table/{name}/{key}/ hands out a
    student's table values) and answer on the stream's loop: the worker serves HTTP from its own
    server instead (ops.runtime.web_thread), with only the routes of the table."""
    assert faust_app(Settings()).conf.web_enabled is False


def test_no_version_in_the_server_header_of_any_answer() -> None:
    """Issue 22 item 11: aiohttp's `Server: Python/3.x aiohttp/x` named what to exploit."""
    web_app = web.Application()

    async def fine(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    web_app.router.add_get("/fine", fine)
    web_app.router.add_get("/broken", broken)
    install_security_headers(web_app, Settings())

    async def run() -> list[tuple[int, str]]:
        async with TestClient(TestServer(web_app, host="127.0.0.1")) as client:
            out = []
            for path in ("/fine", "/broken", "/nowhere"):
                response = await client.get(path)
                out.append((response.status, response.headers.get("Server", "")))
            return out

    assert asyncio.run(run()) == [(200, "LDE"), (500, "LDE"), (404, "LDE")]


def test_weekly_report_answers_name_files_in_the_reports_folder_only(tmp_path: Path) -> None:
    """Issue 22 item 11: the weekly-report reply listed the server's absolute paths."""
    folder = tmp_path / "reports"
    assert report_name(str(folder / "2026-W47" / "S1042.pdf"), folder) == "2026-W47/S1042.pdf"
    assert report_name(str(tmp_path / "elsewhere" / "x.pdf"), folder) == "x.pdf"
    assert str(tmp_path) not in report_name(str(folder / "a.html"), folder)
