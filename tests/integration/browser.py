"""Browser harness for the web app's tests: Debian's chromium driven by Playwright (launched by
path: no browser download, never `playwright install`), axe-core from npm in a gitignored cache, and
the service it drives (`App`, served for a test module by `served_app`), each member of staff
signing in through the suite's OpenID Connect provider.

Missing pieces fail the tests with the command that fixes them: the browser tests must never skip
silently in CI (.ci/run installs chromium).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ops.devtools.replay import EventTimeRun
from ops.settings import Settings
from tests.integration.web_helpers import ENV, seed_data_dir
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_VERSION = "4.14.1"  # MPL-2.0: installed from npm at test time, not committed
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "axe-core"


def require_chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"chromium is missing at {CHROMIUM}: install it with `apt-get install -y chromium`")
    return CHROMIUM


def axe_script() -> str:
    """axe.min.js, installed with npm into .cache/axe-core on first use."""
    script = CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is missing: axe-core comes from npm (apt-get install -y npm)")
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [
                npm,
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(CACHE),
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0 or not script.exists():
            pytest.fail(f"npm install axe-core@{AXE_VERSION} failed: {done.stderr[-2000:]}")
    return script.read_text()


def serious_violations(page: Any, axe: str) -> list[str]:
    """axe-core's serious and critical violations on the page as loaded (WCAG 2.x A and AA rules)."""
    page.add_script_tag(content=axe)
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(f"{n['target']} {n.get('failureSummary', '')}" for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def scrolls_sideways(page: Any) -> bool:
    """The page is wider than the window (WCAG 1.4.10 reflow: it must not be at 320 px)."""
    return bool(page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"))


class App:
    """The service (restartable on its data folder), the browser and the screenshot folder."""

    def __init__(self, data_dir: Path, shots: Path, browser: Any, provider: OidcTestProvider) -> None:
        self.data_dir, self.shots, self.browser, self.provider = data_dir, shots, browser, provider
        self.run = self._start()

    def _start(self) -> EventTimeRun:
        sign_in = {
            "LDE_OIDC_ISSUER": self.provider.issuer,
            "LDE_OIDC_CLIENT_ID": CLIENT_ID,
            "LDE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }
        run = EventTimeRun(
            Settings(),
            self.data_dir,
            evaluate_from=date(2027, 1, 4),
            extra_env={**ENV, **sign_in},
            trust_local_proxy=False,  # no header shortcut: the browser signs in
        )
        run.start()
        return run

    def restart(self, meanwhile: Callable[[Path], None] | None = None) -> None:
        """Stop the service, let `meanwhile` write to its data folder (chDB has one owner), start it."""
        self.run.stop()
        if meanwhile is not None:
            meanwhile(self.data_dir)
        self.run = self._start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.run.settings.web_port}{path}"

    def page_as(self, staff: str, width: int = 1280) -> Any:
        """A browser page signed in as `staff` through the identity provider (its own cookies)."""
        context = self.browser.new_context(
            viewport={"width": width, "height": 900},
            bypass_csp=True,  # lets the test inject axe-core under any Content-Security-Policy
            locale="en-GB",
        )
        page = context.new_page()
        refused = page.goto(self.url("/app"))
        assert refused is not None and refused.status == 401  # not signed in yet: a sign-in page
        link = page.get_attribute("a:text('Sign in')", "href")
        assert link is not None and link.startswith("/auth/login?next=")
        self.provider.user = staff
        signed_in = page.goto(self.url(link))  # LDE -> the provider -> LDE's callback -> back to /app
        for _ in range(3):  # a busy service sheds a page (503): a person waits as told and tries again
            if signed_in is None or signed_in.status != 503:
                break
            page.wait_for_timeout(1000 * int(signed_in.headers.get("retry-after", "1")))
            signed_in = page.reload()
        assert signed_in is not None, link
        assert (signed_in.status, page.url) == (200, self.url("/app")), signed_in.text()[:400]
        assert any(c["name"] == "lde_session" and c["httpOnly"] for c in context.cookies())
        return page

    def shot(self, page: Any, name: str) -> None:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")


def served_app(tmp_path_factory: pytest.TempPathFactory, data: str, shots: str) -> Iterator[App]:
    """A module's `app` fixture: the service on a seeded data folder (`data`), Debian's chromium and
    the suite's identity provider, screenshots in the folder `shots` (its path printed); everything
    stopped at the end."""
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    data_dir = tmp_path_factory.mktemp(data)
    seed_data_dir(data_dir)
    shots_dir = tmp_path_factory.mktemp(shots)
    print(f"screenshots in {shots_dir}")
    provider = OidcTestProvider().start()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        served = App(data_dir, shots_dir, browser, provider)
        try:
            yield served
        finally:
            served.run.stop()
            browser.close()
            provider.stop()
