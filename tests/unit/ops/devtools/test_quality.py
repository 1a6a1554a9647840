"""The `lde` command where the development tools are absent (the production image has no ops/devtools)."""

import sys

import pytest

from ops.cli import main

#: Each development command, its arguments, and the tool module it needs.
COMMANDS = [
    (["quality"], "quality"),
    (["demo"], "demo"),
    (["simulate", "--out", "unused"], "simulator"),
    (
        ["replay", "--roster", "r.csv", "--events", "e.jsonl", "--through", "2026-10-01", "--out", "o"],
        "replay",
    ),
]


@pytest.mark.parametrize(("argv", "tool"), COMMANDS, ids=[c[0][0] for c in COMMANDS])
def test_a_development_command_without_the_tools_says_so_in_one_line(
    argv: list[str], tool: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail as a missing package does.
    monkeypatch.setitem(sys.modules, "ops.devtools", None)
    monkeypatch.setitem(sys.modules, f"ops.devtools.{tool}", None)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"lde: lde {argv[0]} is a development tool: run it from a source checkout (make install)\n"
    )
