"""Route registration: the service answers exactly the classified routes, each with its method."""

from __future__ import annotations

from types import SimpleNamespace

import faust
import pytest

from ops.edge.collector import register_collector
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.routes import ROUTES, RouteKind, register_routes, route_kinds


@pytest.fixture
def app() -> faust.App:
    """A Faust app with the service's routes, never started (no broker, no web server)."""
    app = faust.App("routes-test", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=True)
    register_routes(app, SimpleNamespace())  # handlers read the service only when they answer
    register_collector(app, SimpleNamespace(settings=Settings(), metrics=Metrics()))
    return app


def test_every_route_the_app_answers_is_classified(app: faust.App) -> None:
    assert set(app.web.views) == set(route_kinds())


def test_each_route_answers_its_method_only(app: faust.App) -> None:
    for route in ROUTES:
        view = type(app.web.views[route.path])
        answered = {m for m in ("get", "post", "put", "patch", "delete") if m in vars(view)}
        assert answered == {route.method.lower()}, route.path


def test_the_kinds_split_as_the_access_rules_need() -> None:
    kinds = route_kinds()
    assert {p for p, k in kinds.items() if k is RouteKind.PUBLIC} == {
        "/health/live",
        "/health/ready",
        "/v1/status",
        "/v1/openapi.json",
        "/xapi/about",  # the xAPI spec's version check: no credentials, no data
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
    assert len(kinds) == len(ROUTES) + 7  # + 4 collector endpoints, its OpenAPI document, 2 xAPI
