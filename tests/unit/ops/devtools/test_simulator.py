"""The simulator is deterministic for a seed and states its ground truth."""

from datetime import date
from pathlib import Path

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
