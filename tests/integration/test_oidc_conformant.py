"""Issue 25.1 end to end: staff sign in through panva's `oidc-provider` (npm; OpenID certified), an
implementation nobody on the team wrote, started by the suite on 127.0.0.1 in its default
configuration (tests/js/oidc/provider.js says what is configured: the client registration, the
accounts, and which claims the profile and email scopes release).

In that configuration the ID token carries `sub` alone (OIDC Core 5.4): the staff id claim
(preferred_username) is only at the UserInfo endpoint, and each account's subject is its login, not
its staff id, so a sign-in succeeds only when LDE reads UserInfo. The provider's own login and consent
pages are plain HTML forms, driven here with plain HTTP (httpx2), as a browser would submit them.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from ops.devtools.replay import EventTimeRun, free_port
from ops.runtime.embedded import wait_until
from ops.settings import Settings
from tests.integration.conftest import TERM_START, roster_record

pytestmark = pytest.mark.integration

JS = Path(__file__).resolve().parents[1] / "js" / "oidc"
CLIENT_ID, CLIENT_SECRET = "lde-staff-app", "conformant-client-secret-0123456789"
TUTEE, OTHER = "900200001", "900200002"
#: The provider's logins and the staff ids its preferred_username releases for them.
ACCOUNTS = {"helen.park": "S1042", "eve.nobody": "S9999"}
STAFF_CSV = (
    "staff_id,name,email,role,scope\n"
    "S1042,Dr Helen Park,h.park@example.ac.uk,personal_tutor,tutees\n"
    "S2210,Dr Owen Hughes,o.hughes@example.ac.uk,personal_tutor,tutees\n"
)


@dataclass
class Stack:
    run: EventTimeRun
    issuer: str

    @property
    def lde(self) -> str:
        return f"http://127.0.0.1:{self.run.settings.web_port}"


def installed_provider() -> str:
    """node, with tests/js/oidc's packages installed (npm ci on first use, or when the lock changed)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed for the OpenID provider tests (install Node.js 20 or later)")
    installed, lock = JS / "node_modules" / ".package-lock.json", JS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"npm ci failed in {JS}:\n{done.stdout}\n{done.stderr}"
    return node


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    node = installed_provider()
    folder = tmp_path_factory.mktemp("oidc-conformant")
    issuer = f"http://127.0.0.1:{free_port()}"  # LDE is configured with it before the provider starts
    run = EventTimeRun(
        Settings(),
        folder / "lde",
        evaluate_from=TERM_START,
        partitions=1,
        extra_env={  # what README's IT section tells a university to set, nothing more
            "LDE_OIDC_ISSUER": issuer,
            "LDE_OIDC_CLIENT_ID": CLIENT_ID,
            "LDE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        },
    )
    config = folder / "provider.json"
    config.write_text(
        json.dumps(
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [run.settings.oidc_redirect],
                "accounts": ACCOUNTS,
                "port": int(issuer.rsplit(":", 1)[1]),
            }
        )
    )
    provider = subprocess.Popen(
        [node, str(JS / "provider.js"), str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert provider.stdout is not None
        started = provider.stdout.readline()
        assert started, "panva's oidc-provider did not start: run tests/js/oidc/provider.js to see why"
        assert json.loads(started)["issuer"] == issuer
        run.start()
        try:
            assert run.client.post("/v1/staff", STAFF_CSV.encode())["staff"] == 2
            run.publish(
                roster=[
                    roster_record(TUTEE, personal_tutor_id="S1042"),
                    roster_record(OTHER, personal_tutor_id="S2210"),
                ]
            )
            for sid in (TUTEE, OTHER):
                assert wait_until(lambda sid=sid: "name" in run.client.get(f"/v1/students/{sid}"), 60, 0.3)
            yield Stack(run, issuer)
        finally:
            run.stop()
    finally:
        provider.terminate()
        provider.wait(timeout=30)


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the provider's one form (its login or consent page)."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert action, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def at_provider(browser: httpx2.Client, authorize_url: str, login: str, redirect_uri: str) -> str:
    """What a person does at the provider: follow its redirects, fill its login form (any password in
    its development interactions), accept its consent form. Returns the redirect back to LDE."""
    location, pages = authorize_url, 0
    while not location.startswith(redirect_uri):
        pages += 1
        assert pages < 10, f"the provider's interaction did not end: at {location}"
        reply = browser.get(location)
        if reply.status_code in (302, 303):
            location = urllib.parse.urljoin(str(reply.url), reply.headers["Location"])
            continue
        assert reply.status_code == 200, (reply.status_code, reply.text)
        action, fields = form_of(reply.text)
        if fields.get("prompt") == "login":
            fields.update(login=login, password="any password")
        else:
            assert fields.get("prompt") == "consent", reply.text
        sent = browser.post(urllib.parse.urljoin(str(reply.url), action), data=fields)
        assert sent.status_code in (302, 303), (sent.status_code, sent.text)
        location = urllib.parse.urljoin(str(sent.url), sent.headers["Location"])
    return location


def sign_in(stack: Stack, browser: httpx2.Client, login: str, next_page: str = "/app") -> httpx2.Response:
    """GET /auth/login on LDE -> the provider's interaction -> LDE's callback (its answer returned)."""
    start = browser.get(f"{stack.lde}/auth/login", params={"next": next_page})
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    assert authorize.startswith(f"{stack.issuer}/"), authorize
    back = at_provider(browser, authorize, login, stack.run.settings.oidc_redirect)
    return browser.get(back)


@pytest.fixture
def browser() -> Iterator[httpx2.Client]:
    """A cookie jar and no automatic redirects: every hop is seen."""
    with httpx2.Client(follow_redirects=False, timeout=60) as client:
        yield client


def test_staff_sign_in_through_a_certified_provider_in_its_default_configuration(
    stack: Stack, browser: httpx2.Client
) -> None:
    callback = sign_in(stack, browser, "helen.park")
    assert callback.status_code == 302, callback.text
    assert callback.headers["Location"] == "/app"
    assert "lde_session" in browser.cookies
    caseload = browser.get(f"{stack.lde}/app")
    assert caseload.status_code == 200, caseload.text
    assert f"/app/students/{TUTEE}" in caseload.text and OTHER not in caseload.text
    me = browser.get(f"{stack.lde}/auth/session").json()
    assert me["staff_id"] == "S1042"
    out = browser.post(f"{stack.lde}/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status_code == 200
    assert browser.get(f"{stack.lde}/app").status_code == 401


def test_a_person_the_staff_directory_does_not_know_is_refused(stack: Stack, browser: httpx2.Client) -> None:
    refused = sign_in(stack, browser, "eve.nobody")
    assert refused.status_code == 403, refused.text
    assert "lde_session" not in browser.cookies
