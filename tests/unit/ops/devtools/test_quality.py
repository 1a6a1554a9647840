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


def test_quality_reports_the_burden_and_alerts_no_student_engaging_in_their_own_pattern() -> None:
    from ops.devtools.quality import measure, table
    from ops.settings import Settings

    rules, burden = measure(Settings(), students=200, weeks=10, seeds=[7])
    by_rule = {q.rule: q for q in rules}
    assert set(by_rule) == {"no_engagement", "low_engagement", "low_attendance", "any"}
    assert by_rule["any"].stoppers > 0 and by_rule["any"].recall == 1.0
    assert by_rule["any"].median_days_full_time == 7
    assert burden.student_weeks == 2000
    assert burden.per_100_per_week == 100 * burden.alerts / 2000
    assert burden.messages <= burden.alerts and burden.false_raising <= burden.raising
    # The populations of issue 24 (sparse part-timers, back from absence, no sessions, tiny school).
    assert set(burden.false_by_population) <= {"other"}
    assert 0 <= burden.low_alerted <= burden.low_students and burden.low_students > 0
    text = table((rules, burden), 200, 10, [7])
    assert "alerts per 100 students per week" in text and "False alerts:" in text
    assert f"{burden.low_alerted} of {burden.low_students} alerted by a raising rule" in text
