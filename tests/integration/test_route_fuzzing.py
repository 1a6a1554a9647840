"""Issue 22 item 9: every route of the route table, called with fuzzed path and query parameters (a
fixed corpus of nasty values, then Hypothesis's mixtures of them) as a signed-in administrator and as
a personal tutor: no input gets a 5xx; a refusal is a 4xx that says what is wrong.

Found and fixed by it: `/v1/reports/student/ID?week=9999-W52` and `POST /v1/jobs/daily?as_of=not-a-date`
(500 before issue 22), and the other date parameters (export's from/to)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops.devtools.replay import EventTimeRun
from ops.http.proxy import STAFF_HEADER
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from ops.staff.routes import ROUTES, RouteKind, route_kinds
from tests.integration import report_data
from tests.integration.web_helpers import ENV, seed_data_dir
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider

pytestmark = pytest.mark.integration

ADMIN, TUTOR = "A0001", "S1042"
#: Values that broke, or could break, a parser, a query, a header or a file name.
NASTY = (
    "0",
    "-1",
    "99999999999999999999999999999999",
    "1e309",
    "NaN",
    "9999-W52",
    "0000-W00",
    "2026-W99",
    "not-a-date",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "\x00",
    "\r\n",
    "\r\nSet-Cookie: x=1",
    "../../../etc/passwd",
    "..",
    "/",
    "\\",
    "é✓😀\u202e",
    "\udcff",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "%s%n",
    "${jndi:ldap://127.0.0.1/x}",
    "",
    " ",
    "A" * 4000,
)
#: Every query parameter a handler reads (grep `request.query`), and a few it does not.
QUERY_NAMES = (
    "as_of",
    "code",
    "days",
    "delivery",
    "done",
    "dry_run",
    "error",
    "label",
    "next",
    "staff",
    "state",
    "statementId",
    "week",
    "from",
    "to",
    "band",
    "concern",
    "mode",
    "no_action",
    "page",
    "programme",
    "q",
    "rule",
    "sort",
    "year",
    "id_token_hint",
    "unknown",
)
#: Parameters that must be present (fuzzed) so a fuzz run never starts a whole legitimate job.
REQUIRED = {"/v1/reports/weekly": "week", "/v1/jobs/daily": "as_of", "/v1/tokens/issue": "staff"}


@dataclass
class Served:
    run: EventTimeRun
    routes: list[tuple[str, str]]  # (path pattern, method)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    provider = OidcTestProvider().start()
    data_dir = tmp_path_factory.mktemp("fuzz")
    seed_data_dir(data_dir)
    run = EventTimeRun(
        Settings(),
        data_dir,
        evaluate_from=report_data.WEEK,
        extra_env={
            **ENV,
            "LDE_OIDC_ISSUER": provider.issuer,
            "LDE_OIDC_CLIENT_ID": CLIENT_ID,
            "LDE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        },
    )
    run.start()
    try:
        rows = report_data.sample_directory().rows()
        csv = "staff_id,name,email,role,scope\n" + "".join(
            f"{r.staff_id},{r.name},{r.email},{r.role.value},{r.scope}\n" for r in rows
        )
        csv += f"{ADMIN},Ada Admin,a.admin@example.ac.uk,administrator,service\n"
        assert run.client.post("/v1/staff", csv.encode())["staff"] == 8
        assert wait_until(lambda: fetch(run, "GET", "/health/ready", ADMIN)[0] == 200, 60, 0.3)
        methods = {r.path: r.method for r in ROUTES}
        routes = [
            (path, methods.get(path, "POST" if kind is RouteKind.UPSTREAM else "GET"))
            for path, kind in route_kinds().items()
        ]
        yield Served(run, routes)
    finally:
        run.stop()
        provider.stop()


def fetch(run: EventTimeRun, method: str, target: str, staff: str, body: bytes = b"") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", run.settings.web_port, timeout=60)
    try:
        connection.request(method, target, body=body or None, headers={STAFF_HEADER: staff})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def target(pattern: str, segment: str, query: dict[str, str]) -> str:
    """The pattern with every `{param}` replaced by `segment` (percent-encoded), and the query."""
    path = pattern
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + quote(segment.encode("utf-8", "surrogatepass"), safe="") + path[end + 1 :]
    encoded = urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    return path + ("?" + encoded if encoded else "")


def check(served: Served, pattern: str, method: str, segment: str, query: dict[str, str]) -> None:
    for staff in (ADMIN, TUTOR):
        url = target(pattern, segment, query)
        body = (query.get("q") or segment).encode("utf-8", "surrogatepass") if method == "POST" else b""
        status, text = fetch(served.run, method, url, staff, body)
        assert status < 500, (staff, method, url[:300], status, text[:500])
        if status >= 400 and text.startswith("{"):
            reason = json.loads(text).get("error")
            assert reason and isinstance(reason, str), (url[:300], text[:300])


def test_the_issue_s_examples_are_4xx_with_a_reason(served: Served) -> None:
    run = served.run
    for method, url in (
        ("GET", "/v1/reports/student/900201777?week=9999-W52"),
        ("POST", "/v1/jobs/daily?as_of=not-a-date"),
        ("POST", "/v1/jobs/daily?as_of=9999-12-31"),
        ("GET", "/v1/export/anonymised?from=not-a-date&to=2026-01-01"),
        ("GET", "/v1/export/anonymised?from=0001-01-01&to=9999-12-31"),
        ("POST", "/v1/reports/weekly?week=9999-W52"),
    ):
        staff = ADMIN if url.startswith(("/v1/jobs", "/v1/reports/weekly")) else "S9001"
        status, text = fetch(run, method, url, staff)
        assert status == 400, (url, status, text)
        assert json.loads(text)["error"], url


def test_every_route_with_every_nasty_value(served: Served) -> None:
    for pattern, method in served.routes:
        for value in NASTY:
            check(served, pattern, method, value, dict.fromkeys(QUERY_NAMES, value))
            check(served, pattern, method, value, {REQUIRED.get(pattern, "unknown"): value})


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_route_with_mixtures_of_them(served: Served, data: st.DataObject) -> None:
    pattern, method = data.draw(st.sampled_from(served.routes))
    value = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
    segment = data.draw(value)
    query = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES), value, max_size=6))
    if pattern in REQUIRED:
        query[REQUIRED[pattern]] = data.draw(value)
    check(served, pattern, method, segment, query)
