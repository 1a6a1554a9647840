"""The simulator is deterministic for a seed and states its ground truth."""

import itertools
from datetime import date
from pathlib import Path

import pytest

from models.events import Source
from ops.devtools.simulator import simulate


def test_same_seed_same_term_and_different_seed_differs() -> None:
    a = simulate(students=40, weeks=3, seed=5)
    b = simulate(students=40, weeks=3, seed=5)
    c = simulate(students=40, weeks=3, seed=6)
    day = date(2026, 9, 23)
    assert a.events_on(day) == b.events_on(day)
    assert [e.event_id for e in a.events_on(day)] != [e.event_id for e in c.events_on(day)]
    assert a.ground_truth() == b.ground_truth()


def test_ground_truth_students_are_silent_after_they_stop() -> None:
    sim = simulate(students=300, weeks=8, seed=3)
    rows = sim.ground_truth()
    truth = {
        row["student_id"]: date.fromisoformat(row["disengaged_from"])
        for row in rows
        if row["pattern"] in ("stops", "never_engages")
    }
    assert 10 <= len(truth) <= 60  # about 10% stop or never engage
    assert {row["pattern"] for row in rows} == {"stops", "never_engages", "low_engagement"}
    for day in sim.days()[::5]:
        for event in sim.events_on(day):
            stop = truth.get(event.student_id)
            if stop is not None and day >= stop:
                # Only timetable marks of absence are recorded for a student who has stopped.
                assert event.source is Source.ATTENDANCE
                assert event.attended() is False


def test_events_cover_sources_and_are_in_time_order() -> None:
    sim = simulate(students=100, weeks=1, seed=1)
    events = sim.events_on(date(2026, 9, 22))
    assert {e.source for e in events} >= {Source.VLE, Source.ERESOURCE, Source.PC_LOGON, Source.ATTENDANCE}
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)


def test_the_demo_staff_directory_covers_every_tutor_and_all_four_roles(tmp_path: Path) -> None:
    from models.access import Role, StaffDirectory, read_staff_csv
    from ops.devtools.simulator import staff_csv

    sim = simulate(students=120, weeks=2, seed=3)
    path = tmp_path / "staff.csv"
    path.write_text(staff_csv(sim))
    rows, errors = read_staff_csv(path)
    assert errors == []
    directory = StaffDirectory.from_rows(rows)
    assert {s.record.personal_tutor_id for s in sim.students} <= {s.staff_id for s in directory}
    assert {g.role for s in directory for g in s.grants} == set(Role)
    assert all(directory.entitled(s.record, frozenset({Role.PROGRAMME_LEADER})) for s in sim.students)


def test_the_populations_of_issue_24_engage_in_their_own_pattern() -> None:
    from datetime import timedelta

    from models.events import AttendanceStatus
    from ops.devtools.simulator import (
        BACK_FROM_ABSENCE,
        FEW_SOURCES,
        SPARSE_PART_TIME,
        TINY_SCHOOL,
        Profiles,
    )

    sim = simulate(students=300, weeks=10, seed=2, profiles=Profiles())
    populations = sim.populations()
    assert set(populations.values()) == {SPARSE_PART_TIME, BACK_FROM_ABSENCE, FEW_SOURCES, TINY_SCHOOL}
    truth = {row["student_id"] for row in sim.ground_truth()}
    assert not truth & set(populations)  # none of them is disengaged
    tiny = [s for s in sim.students if s.record.programme_code == "BA-ART"]
    assert len(tiny) == 5 and len({s.record.school for s in tiny}) == 1
    assert sim.reading_week == date(2026, 10, 26)
    active: dict[str, set[date]] = {}
    sessions: dict[str, list] = {}
    for day in sim.days():
        for event in sim.events_on(day):
            if event.source is Source.ATTENDANCE:
                sessions.setdefault(event.student_id, []).append((day, event.attributes))
            else:
                active.setdefault(event.student_id, set()).add(day)
                if populations.get(event.student_id) == FEW_SOURCES:
                    assert event.source in (Source.VLE, Source.ERESOURCE)
    reading = {sim.reading_week + timedelta(days=i) for i in range(7)}
    assert not any(day in reading for rows in sessions.values() for day, _ in rows)
    for student in sim.students:
        sid = student.record.student_id
        if populations.get(sid) == FEW_SOURCES:
            assert sid not in sessions and len(active[sid]) > 20
        elif populations.get(sid) == SPARSE_PART_TIME:
            days_active = sorted(active[sid])
            assert student.record.mode.value == "PT"
            assert all((b - a).days % 10 == 0 for a, b in itertools.pairwise(days_active))
        elif populations.get(sid) == BACK_FROM_ABSENCE:
            (absence,) = student.absences
            assert not any(absence.covers(day) for day in active[sid])
            assert any(day > absence.to_date for day in active[sid])
            during = [a.status for day, a in sessions.get(sid, []) if absence.covers(day)]
            assert all(status is AttendanceStatus.AUTHORISED_ABSENCE for status in during)
    assert sim.absences() == [a for s in sim.students for a in s.absences]


def test_without_profiles_the_simulation_has_none_of_them() -> None:
    sim = simulate(students=200, weeks=3, seed=2)
    assert sim.populations() == {} and sim.absences() == [] and sim.reading_week is None


def test_written_files_hold_the_absences_and_the_non_teaching_weeks(tmp_path: Path) -> None:
    """What lde replay needs to judge the populations as lde quality does: the approved absences as
    an absences CSV the loader reads back, and the reading week for LDE_NON_TEACHING_WEEKS."""
    import json

    from models.roster import load_absences
    from ops.devtools.simulator import Profiles, write_files

    sim = simulate(students=200, weeks=8, seed=4, profiles=Profiles())
    paths = write_files(sim, tmp_path)
    assert sim.absences()
    assert list(load_absences(paths["absences"])) == sim.absences()
    meta = json.loads((tmp_path / "simulation.json").read_text())
    assert meta["non_teaching_weeks"] == [d.isoformat() for d in sorted(sim.non_teaching_weeks)] != []


def test_without_profiles_the_absences_file_has_only_its_header(tmp_path: Path) -> None:
    from ops.devtools.simulator import write_files

    paths = write_files(simulate(students=30, weeks=2, seed=4), tmp_path)
    assert paths["absences"].read_text().splitlines() == ["student_id,from_date,to_date,reason"]


def test_lde_simulate_profiles_writes_the_populations_and_says_how_to_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv

    from ops.cli import main
    from ops.devtools.simulator import Profiles

    assert (
        main(
            [
                "simulate",
                "--students",
                "200",
                "--weeks",
                "8",
                "--seed",
                "4",
                "--profiles",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    sim = simulate(students=200, weeks=8, seed=4, profiles=Profiles())
    with (tmp_path / "roster.csv").open() as handle:
        programmes = {row["programme_code"] for row in csv.DictReader(handle)}
    assert "BA-ART" in programmes  # the tiny school
    assert (tmp_path / "absences.csv").read_text().count("\n") == len(sim.absences()) + 1
    assert "with the populations of issue 24" in out
    assert f"LDE_NON_TEACHING_WEEKS='[\"{min(sim.non_teaching_weeks)}\"]' lde replay" in out
    assert f"--absences {tmp_path / 'absences.csv'}" in out

    assert (
        main(
            ["simulate", "--students", "200", "--weeks", "8", "--seed", "4", "--out", str(tmp_path / "plain")]
        )
        == 0
    )
    plain = capsys.readouterr().out
    assert "LDE_NON_TEACHING_WEEKS" not in plain and "populations" not in plain
    assert (tmp_path / "plain" / "absences.csv").read_text().count("\n") == 1
