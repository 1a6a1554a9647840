"""The web app's templates and stylesheet travel in the wheel, and every template renders."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from jinja2 import TemplateSyntaxError

from ops.staff.web.common import ENV, static_asset

ROOT = Path(__file__).resolve().parents[5]
WEB = ROOT / "ops" / "staff" / "web"
PYPROJECT = ROOT / "pyproject.toml"


def test_every_template_and_asset_is_package_data() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["ops.staff.web"]
    shipped = [
        p.relative_to(WEB).as_posix() for folder in ("templates", "static") for p in (WEB / folder).iterdir()
    ]
    assert shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


def test_every_template_compiles() -> None:
    for path in (WEB / "templates").iterdir():
        try:
            ENV.get_template(path.name)
        except TemplateSyntaxError as error:  # pragma: no cover - the message is the point
            raise AssertionError(f"{path.name}: {error}") from error


def test_only_named_assets_are_served() -> None:
    found = static_asset("app.css")
    assert found is not None and found[1] == "text/css" and b"@media print" in found[0]
    for name in ("../common.py", "app.css/../../common.py", "templates/base.html", ""):
        assert static_asset(name) is None
