"""Browser harness for the web app's tests: Debian's chromium driven by Playwright (launched by
path: no browser download, never `playwright install`), and axe-core from npm in a gitignored cache.

Missing pieces fail the tests with the command that fixes them: the browser tests must never skip
silently in CI (.ci/run installs chromium).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

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
