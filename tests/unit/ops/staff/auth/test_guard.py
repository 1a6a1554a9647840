"""The route guard by kind, with a request of plain objects (no web server): who passes, and the
status of each refusal."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from models.access import Grant, Role, Staff, StaffDirectory
from ops.http.proxy import parse_networks
from ops.http.ratelimit import FailureLimiter
from ops.http.surface import RouteKind
from ops.metrics import Metrics
from ops.settings import Settings
from ops.staff.auth.authenticator import Authenticator, BadCredential
from ops.staff.auth.web import VIEWER_KEY, Guard

OPERATOR = "operator-token-for-the-guard-tests"
DIRECTORY = StaffDirectory(
    [
        Staff("T1", "Tia", "t@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),)),
        Staff("A1", "Ada", "a@x.ac.uk", (Grant(Role.ADMINISTRATOR),)),
    ]
)


class Request(dict[str, Any]):
    def __init__(self, headers: dict[str, str] | None = None, remote: str = "10.0.0.9", method: str = "GET"):
        super().__init__()
        self.headers, self.remote, self.method, self.cookies = headers or {}, remote, method, {}


def guard(metrics_token: str = "") -> Guard:
    metrics = Metrics()
    auth = Authenticator(
        metrics=metrics,
        proxies=parse_networks(["10.0.0.5"]),
        operator_token=OPERATOR,
        limiter=FailureLimiter(60),
    )
    return Guard(Settings(metrics_token=SecretStr(metrics_token)), metrics, auth, lambda: DIRECTORY)


def admit(g: Guard, kind: RouteKind, request: Request) -> int | None:
    """None when admitted, else the refusal's status."""
    refused = asyncio.run(g.admit(kind, request))  # type: ignore[arg-type]
    return None if refused is None else refused.status


def test_staff_routes_need_a_verified_known_identity() -> None:
    g = guard()
    assert admit(g, RouteKind.STAFF, Request()) == 401
    assert admit(g, RouteKind.STAFF, Request({"X-LDE-Staff": "T1"})) == 401  # not a proxy
    assert admit(g, RouteKind.STAFF, Request({"X-LDE-Staff": "X9"}, remote="10.0.0.5")) == 403
    ok = Request({"X-LDE-Staff": "T1"}, remote="10.0.0.5")
    assert admit(g, RouteKind.STAFF, ok) is None and ok[VIEWER_KEY].staff_id == "T1"
    operator = Request({"Authorization": f"Bearer {OPERATOR}"})
    assert admit(g, RouteKind.STAFF, operator) is None and operator[VIEWER_KEY].operator


def test_administrator_routes_need_the_role() -> None:
    g = guard()
    tutor = Request({"X-LDE-Staff": "T1"}, remote="10.0.0.5", method="POST")
    assert admit(g, RouteKind.ADMINISTRATOR, tutor) == 403 and VIEWER_KEY not in tutor
    admin = Request({"X-LDE-Staff": "A1"}, remote="10.0.0.5", method="POST")
    assert admit(g, RouteKind.ADMINISTRATOR, admin) is None
    assert admit(g, RouteKind.ADMINISTRATOR, Request({"Authorization": f"Bearer {OPERATOR}"})) is None


def test_public_upstream_and_sign_in_routes_pass_and_metrics_take_the_scrape_token() -> None:
    for kind in (RouteKind.PUBLIC, RouteKind.UPSTREAM, RouteKind.SIGN_IN, RouteKind.METRICS):
        assert admit(guard(), kind, Request()) is None
    g = guard(metrics_token="scrape")
    assert admit(g, RouteKind.METRICS, Request()) == 401
    assert admit(g, RouteKind.METRICS, Request({"Authorization": "Bearer scrap"})) == 401
    assert admit(g, RouteKind.METRICS, Request({"Authorization": "Bearer scrape"})) is None


def test_repeated_bad_tokens_from_one_address_get_429() -> None:
    g = guard()
    statuses = [admit(g, RouteKind.STAFF, Request({"Authorization": "Bearer junk"})) for _ in range(62)]
    assert statuses[0] == 401 and statuses[-1] == 429


class Sessions:
    """A session store with one live session (the real one is Redis: tests/integration/test_auth.py)."""

    async def staff_id(self, session_id: str) -> str:
        if session_id == "live-session":
            return "T1"
        raise BadCredential("bad_session", "the session has expired")


def test_a_shared_address_s_bad_tokens_refuse_no_valid_session() -> None:
    """Issue 22 item 8: twelve bad tokens from one address made a valid session there get 429."""
    metrics = Metrics()
    auth = Authenticator(
        metrics=metrics,
        proxies=parse_networks(["10.0.0.5"]),
        operator_token=OPERATOR,
        limiter=FailureLimiter(12),
        sessions=Sessions(),
    )
    g = Guard(Settings(), metrics, auth, lambda: DIRECTORY)

    def from_client(client: str, headers: dict[str, str], cookie: str = "") -> Request:
        request = Request({**headers, "X-Forwarded-For": client}, remote="10.0.0.5")  # via the proxy
        request.cookies = {"lde_session": cookie} if cookie else {}
        return request

    assert admit(g, RouteKind.STAFF, from_client("203.0.113.7", {}, "live-session")) is None
    flood = [
        admit(g, RouteKind.STAFF, from_client("203.0.113.7", {"Authorization": "Bearer junk"}))
        for _ in range(14)
    ]
    assert flood[0] == 401 and flood[-1] == 429
    assert admit(g, RouteKind.STAFF, from_client("203.0.113.7", {}, "live-session")) is None
    # the rest of the staff behind the same proxy are other clients: not held up at all
    assert admit(g, RouteKind.STAFF, from_client("203.0.113.8", {}, "stale-session")) == 401
    # a session that stops verifying is forgotten: it gets no pass from having been good
    assert admit(g, RouteKind.STAFF, from_client("203.0.113.7", {}, "made-up-session")) == 429
