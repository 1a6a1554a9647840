"""What the staff surface's HTTP code is typed with, below everything else in ops.staff: the kinds of
route (the route table, ops.staff.routes, classifies every route with one), the request and the
response (aiohttp's, as Faust's web server hands them over), and the responses' builders, made as
Faust's aiohttp driver makes them (the same bytes and headers as `faust.web.View.json` and friends),
so that the guard's middleware, which runs before any view, answers as a view would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any

from aiohttp.web import Request, Response
from faust.utils import json as faust_json

__all__ = ["Handler", "Request", "Response", "RouteKind", "as_bytes", "as_html", "as_json"]

#: A route's handler: (its dependencies, the request, the path's parameters) -> the response.
Handler = Callable[..., Awaitable[Response]]


class RouteKind(StrEnum):
    """Who a route is for (issue 15 puts each kind behind its own authentication)."""

    PUBLIC = "public"  # probes: no data
    METRICS = "metrics"  # Prometheus scrapes: aggregates only
    UPSTREAM = "upstream"  # source systems sending events (the collector, per-source tokens)
    STAFF = "staff"  # personal data through the access policy, every read audited
    ADMINISTRATOR = "administrator"  # loads, jobs, privacy checks, report runs, API tokens
    SIGN_IN = "sign_in"  # the browser sign-in flow (login, callback, logout): no data of their own


def as_json(value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """JSON (`application/json; charset=utf-8`), serialised by Faust's JSON codec."""
    payload: str | bytes = faust_json.dumps(value)
    if isinstance(payload, bytes):  # orjson
        return Response(
            body=payload, content_type="application/json", charset="utf-8", status=status, headers=headers
        )
    return Response(text=payload, content_type="application/json", status=status, headers=headers)


def as_html(value: str, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(text=value, content_type="text/html", status=status, headers=headers)


def as_bytes(
    value: bytes,
    *,
    content_type: str | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(body=value, content_type=content_type, status=status, headers=headers)
