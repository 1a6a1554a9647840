"""Replay equals live: the same events give the same alerts on the same dates whether they arrive day
by day over the term or all at once."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from ops.devtools.replay import ReplayInput, replay
from ops.devtools.simulator import simulate, write_files
from ops.settings import Settings
from tests.integration.conftest import make_run

pytestmark = pytest.mark.integration


def comparable(alerts: list[dict]) -> list[tuple]:
    return sorted(
        (a["alert_id"], a["student_id"], a["rule"], a["raised_on"], a["explanation"]) for a in alerts
    )


def test_day_by_day_and_all_at_once_give_the_same_alerts(tmp_path: Path) -> None:
    sim = simulate(students=80, weeks=5, seed=11)
    through = sim.term_end
    by_day = {d: sim.events_on(d) for d in sim.days()}
    live = replay(
        Settings(), ReplayInput([s.record for s in sim.students], [], by_day, 0), through, tmp_path / "live"
    )

    bulk = make_run(tmp_path / "bulk", evaluate_from=sim.term_start)
    with bulk:
        bulk.publish(roster=[s.record for s in sim.students])
        everything = [e for d in sim.days() for e in by_day[d]]
        bulk.publish(events=everything[::-1])  # even in reverse order
        assert bulk.wait_events_applied(len(everything))
        bulk.publish(through=through)
        assert bulk.wait_judged_through(through)
        at_once = bulk.alerts()

    assert live, "the simulation should produce alerts"
    assert comparable(live) == comparable(at_once)
    truth = {row["student_id"] for row in sim.ground_truth()}
    assert {a["student_id"] for a in live if a["rule"] == "no_engagement"} <= truth
    assert {a["rule"] for a in live} >= {"no_engagement", "escalation"}


def test_replay_command_writes_alerts_jsonl(tmp_path: Path) -> None:
    sim = simulate(students=40, weeks=4, seed=4)
    paths = write_files(sim, tmp_path / "sim")
    out = tmp_path / "alerts.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "replay",
            "--roster",
            str(paths["roster"]),
            "--events",
            str(paths["events"]),
            "--through",
            sim.term_end.isoformat(),
            "--from",
            sim.term_start.isoformat(),
            "--out",
            str(out),
        ],
        env={**env, "LDE_DATA_DIR": str(tmp_path / "unused")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    with paths["ground_truth"].open() as handle:
        truth = {row["student_id"]: row for row in csv.DictReader(handle)}
    silent = {sid for sid, row in truth.items() if row["pattern"] in ("stops", "never_engages")}
    assert {a["student_id"] for a in alerts if a["rule"] == "no_engagement"} == silent
    for alert in alerts:
        assert {"alert_id", "student_id", "rule", "raised_on", "explanation"} <= set(alert)
        assert date.fromisoformat(alert["raised_on"]) <= sim.term_end
    assert f"{len(alerts)} alerts written" in result.stdout


def test_a_term_simulated_with_the_populations_replays_as_lde_quality_judges_it(tmp_path: Path) -> None:
    """`lde simulate --profiles` writes what `lde replay` needs (the absences, the reading week) to
    give the alerts `lde quality` counts for the same term, none about the populations of issue 24."""
    from ops.cli import main
    from ops.devtools.quality import RAISING_RULES, run_term
    from ops.devtools.simulator import Profiles

    students, weeks, seed = 120, 7, 11
    folder = tmp_path / "sim"
    argv = ["simulate", "--students", str(students), "--weeks", str(weeks), "--seed", str(seed)]
    assert main([*argv, "--profiles", "--out", str(folder)]) == 0
    meta = json.loads((folder / "simulation.json").read_text())
    out = tmp_path / "alerts.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDE_")}
    env |= {
        "LDE_DATA_DIR": str(tmp_path / "unused"),
        "LDE_NON_TEACHING_WEEKS": json.dumps(meta["non_teaching_weeks"]),
    }
    term_end = date.fromisoformat(meta["term_start"]).toordinal() + 7 * weeks - 1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "replay",
            *("--roster", str(folder / "roster.csv"), "--absences", str(folder / "absences.csv")),
            *("--events", str(folder / "events.jsonl"), "--out", str(out)),
            *("--from", meta["term_start"], "--through", date.fromordinal(term_end).isoformat()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    replayed = sorted((a["student_id"], a["rule"], a["raised_on"]) for a in map(json.loads, out.open()))

    term = run_term(Settings(), students, weeks, seed, Profiles())
    assert replayed == sorted((a.student_id, a.rule.value, a.raised_on.isoformat()) for a in term.alerts)
    populations = term.sim.populations()
    assert len(set(populations.values())) == 4 and term.sim.absences()
    raising = {r.value for r in RAISING_RULES}
    assert not {sid for sid, rule, _ in replayed if rule in raising} & set(populations)
