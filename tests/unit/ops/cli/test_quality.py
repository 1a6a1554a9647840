"""The `lde` command where the development tools are absent (the production image has no ops/tools)."""

import sys

import pytest

from ops.cli import main


def test_quality_without_the_tools_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail as a missing package does.
    monkeypatch.setitem(sys.modules, "ops.tools", None)
    monkeypatch.setitem(sys.modules, "ops.tools.quality", None)
    assert main(["quality"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "lde: lde quality is a development tool: run it from a source checkout\n"
