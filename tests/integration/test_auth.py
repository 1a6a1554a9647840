"""Issue 15 end to end: the real service signs staff in through a real OpenID Connect provider
(tests/oidc_provider.py, on 127.0.0.1), checks bearer JWTs, personal API tokens and trusted-proxy
headers, and refuses every route to a request without a verified identity.

One service for the module. Requests go out from chosen loopback addresses (127.0.0.2 is the trusted
proxy, 127.0.0.3 the address that gets rate limited), so the tests see the peer address LDE sees.
"""

from __future__ import annotations

import base64
import html
import http.client
import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ops.devtools.replay import EventTimeRun
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from ops.staff.auth.credentials import SESSION_COOKIE
from ops.staff.routes import ROUTES, RouteKind, route_kinds
from tests.integration.conftest import TERM_START, roster_record
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider

pytestmark = pytest.mark.integration

TUTEE, OTHER, THIRD = "900100001", "900100002", "900100003"  # S1042's tutee; S2210's (CS, psychology)
STAFF_CSV = (
    "staff_id,name,email,role,scope\n"
    "S1042,Dr Helen Park,h.park@example.ac.uk,personal_tutor,tutees\n"
    "S2210,Dr Owen Hughes,o.hughes@example.ac.uk,personal_tutor,tutees\n"
    "S1001,Prof Ian Mercer,i.mercer@example.ac.uk,programme_leader,programme:BSC-CS\n"
    "S1000,Prof Ann Lee,a.lee@example.ac.uk,director_of_school,school:School of Computing\n"
    "S9001,Sam Officer,s.officer@example.ac.uk,student_engagement_officer,institution\n"
    "A0001,Ada Admin,a.admin@example.ac.uk,administrator,service\n"
    "DEMO-SEO,Demo Engagement Officer,demo.officer@example.ac.uk,student_engagement_officer,institution\n"
)
#: Who each may see, written out from the rules (not computed with the policy under test).
MATRIX = {
    "S1042": {TUTEE},
    "S2210": {OTHER, THIRD},
    "S1001": {TUTEE, OTHER},
    "S1000": {TUTEE, OTHER},
    "S9001": {TUTEE, OTHER, THIRD},
    "A0001": set(),
}
PROXY, LIMITED = "127.0.0.2", "127.0.0.3"
METRICS_TOKEN = "scrape-token-for-tests-0123456789"


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text) if self.text else None


def call(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = "127.0.0.1",
) -> Reply:
    """One request from a chosen source address, redirects not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read().decode(errors="replace"))
    finally:
        connection.close()


@dataclass
class World:
    run: EventTimeRun
    provider: OidcTestProvider

    @property
    def port(self) -> int:
        return self.run.settings.web_port

    def as_bearer(self, token: str, method: str, path: str, body: bytes | None = None, **kw: Any) -> Reply:
        return call(self.port, method, path, {"Authorization": f"Bearer {token}"}, body, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    provider = OidcTestProvider().start()
    run = EventTimeRun(
        Settings(),
        tmp_path_factory.mktemp("auth") / "lde",
        evaluate_from=TERM_START,
        partitions=2,
        extra_env={
            "LDE_OIDC_ISSUER": provider.issuer,
            "LDE_OIDC_CLIENT_ID": CLIENT_ID,
            "LDE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "LDE_OIDC_JWKS_MIN_REFETCH_SECONDS": "0",
            "LDE_TRUSTED_PROXIES": json.dumps([f"{PROXY}/32"]),
            "LDE_METRICS_TOKEN": METRICS_TOKEN,
            "LDE_AUTH_FAILURES_PER_MINUTE": "30",
            "LDE_DEBUG_LEVEL": "INFO",  # the whole info-level log, Faust's and aiohttp's too
            "LDE_DEMO_SIGN_IN": "true",
            "LDE_DEMO_SIGN_IN_STAFF": json.dumps(["S1042"]),
        },
    )
    run.start()
    try:
        assert run.client.post("/v1/staff", STAFF_CSV.encode())["staff"] == 7  # as the operator (CLI token)
        run.publish(
            roster=[
                roster_record(TUTEE, personal_tutor_id="S1042"),
                roster_record(OTHER, personal_tutor_id="S2210"),
                roster_record(
                    THIRD, personal_tutor_id="S2210", programme_code="BSC-PSY", school="School of Psychology"
                ),
            ]
        )
        for sid in (TUTEE, OTHER, THIRD):
            assert wait_until(lambda sid=sid: "name" in run.client.get(f"/v1/students/{sid}"), 60, 0.3)
        yield World(run, provider)
    finally:
        run.stop()
        provider.stop()


def concrete(path: str) -> str:
    return (
        path.replace("{student_id}", TUTEE)
        .replace("{token_id}", "0123456789ab")
        .replace("{alert_id}", "0123456789ab")
        .replace("{programme_code}", "BSC-CS")
        .replace("{name}", "app.css")
    )


# -- no identity: nothing read, nothing changed -----------------------------------------------------


def test_every_route_without_identity_reads_no_personal_data_and_changes_nothing(world: World) -> None:
    methods = {r.path: r.method for r in ROUTES}
    tokens_before = world.run.client.get("/v1/tokens")
    attacker_csv = (
        b"staff_id,name,email,role,scope\nX1,Eve,e@x.ac.uk,student_engagement_officer,institution\n"
    )
    for path, kind in route_kinds().items():
        method = methods.get(path, "POST" if kind is RouteKind.UPSTREAM else "GET")
        reply = call(world.port, method, concrete(path), body=attacker_csv if method == "POST" else None)
        # A page refusal links to sign-in with the page asked for (`next=`): only the request's own path.
        shown = reply.text.replace(urllib.parse.quote(concrete(path), safe=""), "")
        assert TUTEE not in shown and OTHER not in shown, path
        if kind in (RouteKind.STAFF, RouteKind.ADMINISTRATOR, RouteKind.METRICS, RouteKind.UPSTREAM):
            assert reply.status == 401, (path, reply.status, reply.text)
        elif kind is RouteKind.PUBLIC:
            assert reply.status in (200, 503), path  # /health/ready may say not ready yet
        else:  # sign-in routes: a redirect to the provider, a refusal, or the signed-out page
            assert reply.status in (200, 302, 401, 403, 404), (path, reply.status)
            # never a session: /auth/login only binds the sign-in it starts to this browser
            cookies = reply.headers.get_all("Set-Cookie") or []
            assert all(c.startswith("lde_sign_in=") for c in cookies), (path, cookies)
    # nothing changed: the attacker is not staff, no token appeared
    assert call(world.port, "GET", "/v1/alerts", {"X-LDE-Staff": "X1"}, source=PROXY).status == 403
    assert world.run.client.get("/v1/tokens") == tokens_before


def test_the_operator_default_is_gone(world: World) -> None:
    reply = call(world.port, "GET", f"/v1/students/{TUTEE}")
    assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")


# -- trusted proxies ------------------------------------------------------------------------------


def test_a_forged_staff_header_from_an_untrusted_address_is_ignored(world: World) -> None:
    forged = call(world.port, "GET", f"/v1/students/{TUTEE}", {"X-LDE-Staff": "S1042"})
    assert forged.status == 401 and TUTEE not in forged.text
    honest = call(world.port, "GET", f"/v1/students/{TUTEE}", {"X-LDE-Staff": "S1042"}, source=PROXY)
    assert honest.status == 200 and honest.body["student_id"] == TUTEE


# -- bearer JWTs ------------------------------------------------------------------------------------


def test_bearer_jwts_are_checked(world: World) -> None:
    p = world.provider
    path = f"/v1/students/{TUTEE}"
    assert world.as_bearer(p.token("S1042"), "GET", path).status == 200
    for bad in (
        p.token("S1042", expires_in=-600),
        p.token("S1042", audience="another-app"),
        p.token("S1042", issuer="https://login.example.net/other"),
        "not-a-token",
    ):
        reply = world.as_bearer(bad, "GET", path)
        assert reply.status == 401 and TUTEE not in reply.text
    assert world.as_bearer(p.token("S9999"), "GET", path).status == 403  # verified, but not staff


def test_a_rotated_key_is_picked_up(world: World) -> None:
    before = world.provider.jwks_requests
    new_key = world.provider.rotate()
    assert (
        world.as_bearer(world.provider.token("S1042", key=new_key), "GET", f"/v1/students/{TUTEE}").status
        == 200
    )
    assert world.provider.jwks_requests == before + 1


def test_a_tutor_asking_for_a_non_tutee_is_refused(world: World) -> None:
    """Outside scope looks like not found (issue 22): the same 404 and words as a student who does
    not exist, so the answer tells nobody who is on the roster."""
    tutor = world.provider.token("S1042")
    reply = world.as_bearer(tutor, "GET", f"/v1/students/{OTHER}")
    assert reply.status == 404 and "Liam" not in reply.text
    missing = world.as_bearer(tutor, "GET", "/v1/students/999999999")
    assert reply.text.replace(OTHER, "X") == missing.text.replace("999999999", "X")
    activity = world.as_bearer(tutor, "GET", f"/v1/activity/{OTHER}")
    assert activity.status == 404
    report = world.as_bearer(tutor, "GET", f"/v1/reports/student/{OTHER}?week=2026-W40")
    assert report.status == 404, report.text


def test_each_administrator_route_refuses_a_tutor_and_changes_nothing(world: World) -> None:
    tutor = world.provider.token("S1042")
    tokens_before = world.run.client.get("/v1/tokens")
    promote = (
        b"staff_id,name,email,role,scope\nS1042,Dr Helen Park,h.park@example.ac.uk,administrator,service\n"
    )
    admin_routes = [r for r in ROUTES if r.kind is RouteKind.ADMINISTRATOR]
    assert len(admin_routes) == 5  # staff load, reports, daily job, privacy, token list
    for route in admin_routes:
        path = concrete(route.path)
        reply = world.as_bearer(tutor, route.method, path, promote if route.method == "POST" else None)
        assert reply.status == 403, (route.path, reply.status, reply.text)
    # nothing changed: S1042 is still no administrator, no token was issued
    assert world.as_bearer(world.provider.token("S1042"), "GET", "/v1/tokens").status == 403
    assert world.run.client.get("/v1/tokens") == tokens_before


# -- personal API tokens ----------------------------------------------------------------------------


def test_nobody_mints_a_token_that_acts_as_someone_else(world: World) -> None:
    """Issue 22 item 5: `POST /v1/tokens/issue?staff=OTHER` gave an administrator a token reading
    all OTHER may read, audited as OTHER. Now a token carries only its holder's identity."""
    admin, tutor = world.provider.token("A0001"), world.provider.token("S1042")
    tokens_before = world.run.client.get("/v1/tokens")
    for bearer, other in ((admin, "S1042"), (tutor, "S2210"), (admin, "S9001")):
        reply = world.as_bearer(bearer, "POST", f"/v1/tokens/issue?staff={other}&label=x")
        assert reply.status == 403 and "lde_pat_" not in reply.text, (other, reply.text)
        assert "only for themselves" in reply.body["error"]
    assert world.run.client.get("/v1/tokens") == tokens_before  # nothing was minted
    # a holder may name themselves; their token is theirs, and another tutor cannot revoke it
    own = world.as_bearer(tutor, "POST", "/v1/tokens/issue?staff=S1042&label=own")
    assert own.status == 200 and own.body["staff_id"] == "S1042"
    other_tutor = world.provider.token("S2210")
    stranger = world.as_bearer(other_tutor, "POST", f"/v1/tokens/{own.body['token_id']}/revoke")
    missing = world.as_bearer(other_tutor, "POST", "/v1/tokens/000000000000/revoke")
    assert stranger.status == missing.status == 404  # whose tokens exist is nobody else's business
    assert world.as_bearer(own.body["token"], "GET", f"/v1/students/{TUTEE}").status == 200
    assert world.as_bearer(tutor, "POST", f"/v1/tokens/{own.body['token_id']}/revoke").status == 200
    assert world.as_bearer(own.body["token"], "GET", f"/v1/students/{TUTEE}").status == 401


def test_a_holder_issues_their_own_token_and_an_administrator_revokes_it(world: World) -> None:
    admin, tutor = world.provider.token("A0001"), world.provider.token("S1042")
    # an administrator alone sees no student
    assert world.as_bearer(admin, "GET", f"/v1/students/{TUTEE}").status == 404
    issued = world.as_bearer(tutor, "POST", "/v1/tokens/issue?label=script&days=30")
    assert issued.status == 200, issued.text
    token, token_id = issued.body["token"], issued.body["token_id"]
    assert token.startswith("lde_pat_") and issued.body["staff_id"] == "S1042"
    assert world.as_bearer(token, "GET", f"/v1/students/{TUTEE}").status == 200
    assert world.as_bearer(token, "GET", f"/v1/students/{OTHER}").status == 404  # the tutor's own scope
    listed = world.as_bearer(admin, "GET", "/v1/tokens").body
    assert token_id in {r["token_id"] for r in listed} and token not in json.dumps(listed)
    assert world.as_bearer(admin, "POST", f"/v1/tokens/{token_id}/revoke").status == 200
    assert world.as_bearer(token, "GET", f"/v1/students/{TUTEE}").status == 401
    assert world.as_bearer(token[:-2] + "xx", "GET", f"/v1/students/{TUTEE}").status == 401


# -- browser sign-in --------------------------------------------------------------------------------


def binding_of(login: Reply) -> str:
    """The cookie binding a started sign-in to its browser (HttpOnly, SameSite=Lax, /auth only)."""
    header = login.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/auth" in header
    match = re.search(r"lde_sign_in=([^;]+)", header)
    assert match
    return f"lde_sign_in={match.group(1)}"


def start_sign_in(world: World, user: str, next_path: str = "/v1/alerts") -> tuple[str, str]:
    """A browser starts signing in and the provider signs `user` in: (the binding cookie, the callback
    path the provider sends the browser back to)."""
    world.provider.user = user
    login = call(world.port, "GET", f"/auth/login?next={next_path}")
    assert login.status == 302, login.text
    authorize = urllib.parse.urlsplit(login.headers["Location"])
    query = dict(urllib.parse.parse_qsl(authorize.query))
    assert query["code_challenge_method"] == "S256" and query["state"] and query["nonce"]
    at_provider = call(int(authorize.port or 80), "GET", f"{authorize.path}?{authorize.query}")
    assert at_provider.status == 302
    back = urllib.parse.urlsplit(at_provider.headers["Location"])
    return binding_of(login), f"{back.path}?{back.query}"


def sign_in(world: World, user: str, next_path: str = "/v1/alerts") -> Reply:
    """The browser's round trip: LDE -> provider (signs `user` in) -> LDE's callback, same browser."""
    binding, back = start_sign_in(world, user, next_path)
    return call(world.port, "GET", back, {"Cookie": binding})


def cookie_of(reply: Reply) -> str:
    header = reply.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    match = re.search(r"lde_session=([^;]+)", header)
    assert match
    return f"lde_session={match.group(1)}"


def test_login_and_logout_revoke_the_session_server_side(world: World) -> None:
    callback = sign_in(world, "S1042")
    assert callback.status == 302 and callback.headers["Location"] == "/v1/alerts"
    cookie = cookie_of(callback)
    assert call(world.port, "GET", f"/v1/students/{TUTEE}", {"Cookie": cookie}).status == 200
    me = call(world.port, "GET", "/auth/session", {"Cookie": cookie}).body
    assert me["staff_id"] == "S1042" and me["csrf_token"]
    # sign-out needs the CSRF token
    assert call(world.port, "POST", "/auth/logout", {"Cookie": cookie}).status == 403
    assert call(world.port, "GET", f"/v1/students/{TUTEE}", {"Cookie": cookie}).status == 200
    out = call(world.port, "POST", "/auth/logout", {"Cookie": cookie, "X-CSRF-Token": me["csrf_token"]})
    assert out.status == 200
    # the same cookie, kept by an attacker, is dead
    assert call(world.port, "GET", f"/v1/students/{TUTEE}", {"Cookie": cookie}).status == 401


def test_a_replayed_callback_and_an_unknown_staff_sign_in_are_refused(world: World) -> None:
    binding, back = start_sign_in(world, "S1042")
    assert call(world.port, "GET", back, {"Cookie": binding}).status == 302
    assert call(world.port, "GET", back, {"Cookie": binding}).status == 401  # state used once
    unknown = sign_in(world, "S9999")
    assert unknown.status == 403 and "lde_session=" not in str(unknown.headers.get_all("Set-Cookie"))
    assert unknown.headers["Content-Type"].startswith("text/html") and "/auth/login" in unknown.text


def test_a_callback_completed_by_someone_else_signs_no_other_browser_in(world: World) -> None:
    """Issue 22 item 3, login CSRF: an attacker starts a sign-in, completes it at the provider as
    themselves, and gets a victim's browser to open the callback URL. The state is bound to the
    attacker's browser (RFC 9700 4.7), so the victim's browser is signed in as nobody."""
    _, attackers_callback = start_sign_in(world, "S2210")
    victims_binding, _ = start_sign_in(world, "S1042")  # the victim may have a sign-in of their own
    for victim in ({}, {"Cookie": victims_binding}):
        reply = call(world.port, "GET", attackers_callback, victim)
        assert reply.status == 401, reply.text
        assert "lde_session=" not in str(reply.headers.get_all("Set-Cookie"))
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "another browser" in reply.text and 'href="/auth/login"' in reply.text


def test_return_paths_are_parsed_and_written_out_again(world: World) -> None:
    """Issue 22 item 2: `next=/%09/host/path` came back as a Location browsers follow to another host,
    and `next=/%0D/...` raised after the session was made. Only a path on LDE comes back."""
    for asked, expected in (
        ("/%09/evil.example/path", "/"),
        ("/%0D/evil.example", "/"),
        ("/%0D%0ASet-Cookie:%20x=1", "/"),
        ("/%5Cevil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/app/students/900100001%3Fdone%3D1", "/app/students/900100001?done=1"),
        ("/app?q=Liam%20Ng", "/app?q=Liam%20Ng"),
    ):
        reply = sign_in(world, "S1042", asked)
        assert reply.status == 302, (asked, reply.status, reply.text)
        assert reply.headers["Location"] == expected, asked


def test_sign_in_failures_are_pages_with_a_way_back_styled_without_a_session(world: World) -> None:
    refused = call(world.port, "GET", "/auth/callback?error=access_denied&state=x")
    assert refused.status == 401 and refused.headers["Content-Type"].startswith("text/html")
    assert 'href="/auth/login"' in refused.text and 'href="/app/static/app.css"' in refused.text
    css = call(world.port, "GET", "/app/static/app.css")  # no session: the stylesheet is public
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert call(world.port, "GET", "/app/static/..%2Fcommon.py").status == 404


def test_sign_out_is_a_plain_form_on_every_page_and_ends_the_provider_session(world: World) -> None:
    """Issue 22 item 7: a Sign out form on every page, the CSRF token as a form field; the session is
    revoked server-side, then RP-initiated logout at the provider (end_session_endpoint) with the ID
    token as hint, back to LDE's signed-out page."""
    cookie = {"Cookie": cookie_of(sign_in(world, "S1042"))}
    for path in ("/app", f"/app/students/{TUTEE}", f"/app/students/{TUTEE}/view"):
        page = call(world.port, "GET", path, cookie)
        assert page.status == 200, page.text
        form = re.search(
            r'<form class="signout" method="post" action="/auth/logout">(.*?)</form>', page.text, re.S
        )
        assert form, path
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.group(1))
    assert found
    csrf = found.group(1)
    # an error page links to the sign-out page, which draws the same form with the session's token
    missing = call(world.port, "GET", "/app/students/000000000", cookie)
    assert missing.status == 404 and 'href="/auth/sign-out"' in missing.text
    confirm = call(world.port, "GET", "/auth/sign-out", cookie)
    assert confirm.status == 200 and f'name="csrf_token" value="{csrf}"' in confirm.text
    plain = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert call(world.port, "POST", "/auth/logout", plain, b"csrf_token=wrong").status == 403
    assert call(world.port, "GET", "/app", cookie).status == 200  # a forged sign-out changed nothing
    out = call(world.port, "POST", "/auth/logout", plain, f"csrf_token={csrf}".encode())
    assert out.status == 303, out.text
    assert "lde_session=;" in str(out.headers.get_all("Set-Cookie")) or "Max-Age=0" in str(
        out.headers.get_all("Set-Cookie")
    )
    at = urllib.parse.urlsplit(out.headers["Location"])
    assert f"{at.scheme}://{at.netloc}" == world.provider.issuer and at.path == "/logout"
    query = dict(urllib.parse.parse_qsl(at.query))
    assert query["post_logout_redirect_uri"].endswith("/auth/signed-out")
    hint = json.loads(base64.urlsafe_b64decode(query["id_token_hint"].split(".")[1] + "=="))
    assert hint["preferred_username"] == "S1042" and hint["aud"] == CLIENT_ID
    back = call(int(at.port or 80), "GET", f"{at.path}?{at.query}")
    assert world.provider.logouts[-1]["id_token_hint"] == query["id_token_hint"]
    assert back.status == 302 and back.headers["Location"] == query["post_logout_redirect_uri"]
    landed = call(world.port, "GET", urllib.parse.urlsplit(back.headers["Location"]).path)
    assert landed.status == 200 and "signed out" in landed.text
    assert 'href="/app/static/app.css"' in landed.text and 'class="outcome' in landed.text
    assert call(world.port, "GET", "/app", cookie).status == 401  # the session is gone server-side
    # the sign-out page (linked from error pages) says so once the session has gone
    gone = call(world.port, "GET", "/auth/sign-out", cookie)
    assert gone.status == 200 and "Not signed in" in gone.text and 'href="/auth/login"' in gone.text


def test_the_staff_claim_comes_from_userinfo_when_the_id_token_lacks_it(world: World) -> None:
    """Issue 25.1: a provider that keeps profile claims out of the ID token (OIDC Core 5.4) signs staff
    in through UserInfo; UserInfo about another subject, without the claim, or down, fails clearly."""
    p = world.provider
    p.id_token_staff_claim = False
    try:
        asked = p.userinfo_requests
        callback = sign_in(world, "S1042")
        assert callback.status == 302, callback.text
        assert p.userinfo_requests == asked + 1
        assert call(world.port, "GET", f"/v1/students/{TUTEE}", {"Cookie": cookie_of(callback)}).status == 200
        for override, status, message in (
            ({"sub": "sub-someone-else"}, 200, "another subject than the ID token"),
            ({"preferred_username": None}, 200, "neither the ID token nor the UserInfo endpoint carries"),
            ({}, 503, "UserInfo could not be read"),
        ):
            p.userinfo_override, p.userinfo_status = override, status
            refused = sign_in(world, "S1042")
            # a page saying why, with a way back (issue 22), and no session
            assert refused.status == 401 and refused.headers["Content-Type"].startswith("text/html")
            assert message in html.unescape(refused.text) and 'href="/auth/login"' in refused.text
            assert SESSION_COOKIE not in refused.headers.get("Set-Cookie", "")
    finally:
        p.id_token_staff_claim, p.userinfo_override, p.userinfo_status = True, {}, 200
    asked = p.userinfo_requests
    assert sign_in(world, "S1042").status == 302
    assert p.userinfo_requests == asked  # the ID token had the claim: UserInfo was not asked


def test_cookie_requests_that_change_data_need_the_csrf_token(world: World) -> None:
    cookie = cookie_of(sign_in(world, "A0001"))
    csrf = call(world.port, "GET", "/auth/session", {"Cookie": cookie}).body["csrf_token"]
    path = "/v1/tokens/issue?label=csrf"
    assert call(world.port, "POST", path, {"Cookie": cookie}).status == 403
    assert call(world.port, "POST", path, {"Cookie": cookie, "X-CSRF-Token": "wrong"}).status == 403
    assert call(world.port, "POST", path, {"Cookie": cookie, "X-CSRF-Token": csrf}).status == 200


def test_the_role_matrix_through_real_sign_in(world: World) -> None:
    students = (TUTEE, OTHER, THIRD)
    for staff_id, expected in MATRIX.items():
        cookie = {"Cookie": cookie_of(sign_in(world, staff_id))}
        seen = {s for s in students if call(world.port, "GET", f"/v1/students/{s}", cookie).status == 200}
        assert seen == expected, staff_id
        activity = {s for s in students if call(world.port, "GET", f"/v1/activity/{s}", cookie).status == 200}
        assert activity == expected, staff_id
        bearer = world.as_bearer(world.provider.token(staff_id), "GET", f"/v1/students/{THIRD}")
        assert (bearer.status == 200) == (THIRD in expected), staff_id


def test_the_web_app_through_real_sign_in(world: World) -> None:
    """Issue 16's pages behind issue 15's sign-in: the session's scope, page refusals with a sign-in
    link, and plain HTML forms that carry the session's CSRF token in a hidden field."""
    nobody = call(world.port, "GET", "/app")
    assert nobody.status == 401 and "/auth/login?next=" in nobody.text
    cookie = {"Cookie": cookie_of(sign_in(world, "S1042"))}
    caseload = call(world.port, "GET", "/app", cookie)
    assert caseload.status == 200, caseload.text
    assert f"/app/students/{TUTEE}" in caseload.text and OTHER not in caseload.text
    assert call(world.port, "GET", f"/app/students/{OTHER}", cookie).status == 404
    csrf = call(world.port, "GET", "/auth/session", cookie).body["csrf_token"]
    form = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
    path = "/app/alerts/no-such-alert/actions"
    for body in (b"kind=acknowledge", b"kind=acknowledge&csrf_token=wrong"):
        assert call(world.port, "POST", path, form, body).status == 403, body
    admitted = call(world.port, "POST", path, form, f"kind=acknowledge&csrf_token={csrf}".encode())
    assert admitted.status != 403 and admitted.status < 500, (admitted.status, admitted.text)


def test_the_demo_link_works_once_and_only_from_loopback(world: World) -> None:
    link_file = world.run.settings.data_dir / "demo-sign-in.url"
    assert link_file.stat().st_mode & 0o777 == 0o600
    link = link_file.read_text().strip()
    path = link[link.index("/auth/local") :]
    elsewhere = call(world.port, "GET", path, source=PROXY)  # not from 127.0.0.1
    assert elsewhere.status == 404 and "No one-time sign-in here" in elsewhere.text
    first = call(world.port, "GET", path)
    assert first.status == 302
    cookie = cookie_of(first)
    assert call(world.port, "GET", f"/v1/students/{THIRD}", {"Cookie": cookie}).status == 200
    used = call(world.port, "GET", path)  # used once: a styled page with a way back, not JSON
    assert used.status == 401 and used.headers["Content-Type"].startswith("text/html")
    assert "This sign-in link has been used" in used.text and 'href="/auth/login"' in used.text
    assert 'href="/app/static/app.css"' in used.text
    asked = call(world.port, "GET", path, {"Accept": "application/json"})  # an API client: JSON
    assert asked.status == 401 and json.loads(asked.text)["status"] == 401
    # lde demo's second link: a personal tutor, who sees only their tutees
    tutor_file = world.run.settings.data_dir / "demo-sign-in-S1042.url"
    assert tutor_file.stat().st_mode & 0o777 == 0o600
    tutor_link = tutor_file.read_text().strip()
    signed = call(world.port, "GET", tutor_link[tutor_link.index("/auth/local") :])
    assert signed.status == 302 and signed.headers["Location"] == "/app"
    tutor = {"Cookie": cookie_of(signed)}
    assert call(world.port, "GET", f"/v1/students/{TUTEE}", tutor).status == 200
    assert call(world.port, "GET", f"/v1/students/{OTHER}", tutor).status == 404


# -- defences ---------------------------------------------------------------------------------------


def test_security_headers_on_every_response(world: World) -> None:
    for path in ("/health/live", f"/v1/students/{TUTEE}", "/v1/openapi.json"):
        headers = call(world.port, "GET", path).headers
        assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Strict-Transport-Security" not in headers  # plain http on 127.0.0.1
        assert headers["Server"] == "LDE"  # no Python or aiohttp version (issue 22)


def test_metrics_need_the_scrape_token_and_count_failures(world: World) -> None:
    assert call(world.port, "GET", "/metrics", {"Authorization": "Bearer wrong"}).status == 401
    scrape = call(world.port, "GET", "/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scrape.status == 200
    assert 'lde_auth_failures_total{reason="expired"}' in scrape.text
    assert re.search(r'lde_auth_failures_total\{reason="untrusted_staff_header"\} [1-9]', scrape.text)
    assert re.search(r'lde_logins_total\{outcome="success"\} [1-9]', scrape.text)


def test_token_failures_are_rate_limited_per_address(world: World) -> None:
    path = f"/v1/students/{TUTEE}"
    statuses = [world.as_bearer("junk", "GET", path, source=LIMITED).status for _ in range(32)]
    assert statuses[0] == 401 and statuses[-1] == 429
    # another address is not held up, and a good token from it still works
    assert world.as_bearer(world.provider.token("S1042"), "GET", path).status == 200


def test_behind_the_proxy_one_client_s_failures_lock_nobody_else_out(world: World) -> None:
    """Issue 22 item 8: behind the TLS proxy every member of staff shares its address; twelve bad
    tokens there made a valid session get 429. Failures now count per client (X-Forwarded-For, from
    the trusted proxy only) and per credential, and a valid credential is never refused."""
    path = f"/v1/students/{TUTEE}"
    session = {"Cookie": cookie_of(sign_in(world, "S1042"))}
    api = world.as_bearer(world.provider.token("S1042"), "POST", "/v1/tokens/issue?label=proxy").body["token"]
    via = {"X-Forwarded-For": "203.0.113.7"}  # one client behind the proxy: the attacker

    def through_proxy(headers: dict[str, str]) -> int:
        return call(world.port, "GET", path, {**via, **headers}, source=PROXY).status

    assert through_proxy({**session}) == 200 and through_proxy({"Authorization": f"Bearer {api}"}) == 200
    flood = [through_proxy({"Authorization": "Bearer junk"}) for _ in range(32)]
    assert flood[0] == 401 and flood[-1] == 429
    # the same client address: valid credentials it used before are not refused for the junk
    assert through_proxy({**session}) == 200
    assert through_proxy({"Authorization": f"Bearer {api}"}) == 200
    # another client behind the same proxy is not held up at all, with a credential new to LDE
    other = {"X-Forwarded-For": "203.0.113.8", "Authorization": f"Bearer {world.provider.token('S1001')}"}
    assert call(world.port, "GET", path, other, source=PROXY).status == 200
    # X-Forwarded-For from anyone but the proxy is not believed: a limited peer cannot hide behind it
    for _ in range(32):
        call(world.port, "GET", path, {"Authorization": "Bearer junk"}, source="127.0.0.5")
    spoofed = {"X-Forwarded-For": "198.51.100.1", "Authorization": "Bearer junk2"}
    assert call(world.port, "GET", path, spoofed, source="127.0.0.5").status == 429


def test_the_audit_records_refusals_and_credentials(world: World) -> None:
    from sinks import clickhouse
    from sinks.clickhouse import ClickHouseStore

    issued = {r["token_id"] for r in world.run.client.get("/v1/tokens")}
    world.run.stop()  # chDB has one owner: read the audit once the service is gone
    store = ClickHouseStore(clickhouse.connect(world.run.settings))
    try:
        rows = store.audit_details()
        job_runs = store.query("SELECT count() FROM job_runs")[0][0]
    finally:
        store.close()
    # the tutor's and the anonymous attempts at the daily job and the weekly reports ran nothing
    assert job_runs == 0 and not world.run.settings.reports_path.exists()
    refused = {(r[1], r[2], tuple(r[4])) for r in rows if r[5] == "refused"}
    assert ("S1042", "student_view", (OTHER,)) in refused
    assert ("S1042", "activity_view", (OTHER,)) in refused
    assert ("S1042", "student_report", (OTHER,)) in refused
    credentials = {r[6].split(":")[0] for r in rows if r[1] == "S1042" and r[5] == "allowed"}
    assert {"jwt", "session", "proxy", "api-token"} <= credentials
    # every read made with a personal token names the token (issue 22 item 5)
    used = {r[6].split(":", 1)[1] for r in rows if r[6].startswith("api-token:")}
    assert used and used <= issued
    operator = [r for r in rows if r[1] == "operator"]
    assert operator and all(r[6].startswith("local-operator:") for r in operator)


def test_the_info_log_holds_no_student_id_and_no_secret(world: World) -> None:
    world.run.stop()
    log = (world.run.settings.data_dir / "service.log").read_text()
    assert "signed_in credential=session" in log and "api_token_issued" in log  # the log was written
    assert "staff_directory_loaded staff=7 roles=7 by=operator" in log  # who ran an administrator action
    operator_token = world.run.settings.operator_token_path.read_text().strip()
    for secret in (
        TUTEE,
        OTHER,
        THIRD,
        operator_token,
        METRICS_TOKEN,
        CLIENT_SECRET,
        "lde_pat_",
        "eyJ",
        "lde_session=",
    ):
        assert secret not in log, secret


def test_lde_token_commands_with_no_service_running(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops import cli

    world.run.stop()
    monkeypatch.setenv("LDE_DATA_DIR", str(world.run.settings.data_dir))
    monkeypatch.setenv("LDE_WEB_PORT", "9")  # no service: the commands open chDB themselves
    assert cli.main(["token", "issue", "--staff", "S9999"]) == 2
    assert "no staff member 'S9999'" in capsys.readouterr().err
    assert cli.main(["token", "issue", "--staff", "S2210", "--label", "sync", "--days", "7"]) == 0
    out = capsys.readouterr().out
    token_id = out.split()[0]
    assert "lde_pat_" in out and "S2210" in out
    assert cli.main(["token", "revoke", token_id]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli.main(["token", "revoke", "nope"]) == 2
    capsys.readouterr()
    assert cli.main(["token", "list", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["token_id"] for r in rows if r["revoked_at"]} >= {token_id}
    assert "lde_pat_" not in json.dumps(rows)
