"""The staff directory and the one access policy, on the sample staff and roster files."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.access import (
    AccessDenied,
    Action,
    Grant,
    IdentityRequired,
    Role,
    ScopeIndex,
    Staff,
    StaffDirectory,
    UnknownStaff,
    audit,
    may_see,
    read_staff_csv,
    require,
    scopes_by_staff,
    visible,
)
from models.roster import RosterRecord, load_roster
from tests.fixtures import upstream

#: The role matrix on the fixtures (tests/fixtures/upstream): who sees which of the five sample students.
EXPECTED = {
    "S1042": {"900412771", "900201777"},  # personal tutor of two CS students
    "S2210": {"900398004", "900188420"},  # personal tutor of two psychology students
    "S3301": {"900555123"},
    "S1001": {"900412771", "900201777"},  # programme leader BSC-CS
    "S2001": {"900398004", "900188420"},  # programme leader BSC-PSY
    "S1000": {"900412771", "900201777"},  # director, School of Computer Science and Mathematics
    "S9001": {"900412771", "900201777", "900398004", "900188420", "900555123"},  # institution
}


def sample_roster() -> list[RosterRecord]:
    return [r for r in load_roster(upstream.path(upstream.ROSTER)) if isinstance(r, RosterRecord)]


def sample_directory() -> StaffDirectory:
    rows, errors = read_staff_csv(upstream.path(upstream.STAFF))
    assert errors == []
    return StaffDirectory.from_rows(rows)


def test_role_matrix_on_the_samples() -> None:
    directory = sample_directory()
    roster = sample_roster()
    assert len(directory) == 7
    for staff in directory:
        seen = {s.student_id for s in visible(staff, roster)}
        assert seen == EXPECTED[staff.staff_id], staff.staff_id
    assert {k: set(v) for k, v in scopes_by_staff(directory, roster).items()} == EXPECTED


def test_scope_index_agrees_with_the_policy_on_random_data() -> None:
    rng = random.Random(4)
    students = [
        RosterRecord(
            student_id=f"X{i}",
            programme_code=rng.choice(["P1", "P2", "P3"]),
            school=rng.choice(["A", "B"]),
            year_of_study=1,
            mode="FT",
            status="active",
            start_date="2026-09-21",
            personal_tutor_id=rng.choice(["T1", "T2", "", "P1"]),
        )
        for i in range(300)
    ]
    directory = StaffDirectory(
        [
            Staff("T1", "t", "t@x.ac.uk", ()),  # no grants: sees nothing
            Staff("T2", "t", "t@x.ac.uk", (_grant(Role.PERSONAL_TUTOR),)),
            Staff("P1", "p", "p@x.ac.uk", (_grant(Role.PROGRAMME_LEADER, "P1"), _grant(Role.PERSONAL_TUTOR))),
            Staff("D", "d", "d@x.ac.uk", (_grant(Role.DIRECTOR_OF_SCHOOL, "B"),)),
            Staff("E", "e", "e@x.ac.uk", (_grant(Role.STUDENT_ENGAGEMENT_OFFICER),)),
        ]
    )
    index = ScopeIndex.of(students)
    for staff in directory:
        assert [s.student_id for s in index.students_for(staff)] == [
            s.student_id for s in visible(staff, students)
        ]
    assert index.students_for(directory.get("T1")) == []
    # A programme leader who is also a personal tutor sees the union, each student once.
    p1 = [s.student_id for s in index.students_for(directory.get("P1"))]
    assert len(p1) == len(set(p1))


def _grant(role: Role, value: str = "") -> Grant:
    return Grant(role, value)


def test_require_denies_outside_scope_with_a_clear_reason() -> None:
    directory = sample_directory()
    roster = {r.student_id: r for r in sample_roster()}
    tutor = directory.get("S1042")
    require(tutor, roster["900412771"])
    with pytest.raises(
        AccessDenied, match=r"S1042 \(personal tutor of their tutees\) may not see student 900398004"
    ):
        require(tutor, roster["900398004"])


def test_unknown_staff_and_missing_identity() -> None:
    directory = sample_directory()
    with pytest.raises(UnknownStaff, match=r"no staff member .S0000.*lde staff load"):
        directory.viewer("S0000", operator_access=True)
    operator = directory.viewer(None, operator_access=True)
    assert operator.operator and all(may_see(operator, r) for r in sample_roster())
    with pytest.raises(IdentityRequired, match="LDE_OPERATOR_ACCESS"):
        directory.viewer(None, operator_access=False)
    assert directory.viewer(" S9001 ", operator_access=False).staff_id == "S9001"


def test_a_tutor_without_tutor_id_on_the_student_sees_nothing() -> None:
    student = sample_roster()[0].model_copy(update={"personal_tutor_id": ""})
    tutor = Staff("", "nobody", "n@x.ac.uk", (_grant(Role.PERSONAL_TUTOR),))
    assert not may_see(tutor, student)


def test_entitled_staff_of_a_student() -> None:
    directory = sample_directory()
    carys = sample_roster()[0]
    assert [s.staff_id for s in directory.entitled(carys)] == ["S1000", "S1001", "S1042", "S9001"]
    only_tutors = directory.entitled(carys, frozenset({Role.PERSONAL_TUTOR}))
    assert [s.staff_id for s in only_tutors] == ["S1042"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("S1,Dr A,a@x.ac.uk,personal_tutor,institution", "a personal_tutor needs 'tutees'"),
        ("S1,Dr A,a@x.ac.uk,programme_leader,programme:", "needs 'programme:NAME'"),
        ("S1,Dr A,a@x.ac.uk,director_of_school,BSC-CS", "needs 'school:NAME'"),
        ("S1,Dr A,not-an-email,personal_tutor,tutees", "is not an email address"),
        ("S1,Dr A,a@x.ac.uk,dean,tutees", "role"),
        (",Dr A,a@x.ac.uk,personal_tutor,tutees", "staff_id"),
    ],
)
def test_bad_staff_rows_are_reported_with_their_line(tmp_path: Path, row: str, reason: str) -> None:
    path = tmp_path / "staff.csv"
    path.write_text("staff_id,name,email,role,scope\nS9,Ok,ok@x.ac.uk,personal_tutor,tutees\n" + row + "\n")
    rows, errors = read_staff_csv(path)
    assert [r.staff_id for r in rows] == ["S9"]
    assert len(errors) == 1 and errors[0].line == 3
    assert reason in str(errors[0])


def test_repeated_rows_missing_columns_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,name,email,role,scope\n"
        "S9,Ok,ok@x.ac.uk,personal_tutor,tutees\nS9,Ok,ok@x.ac.uk,personal_tutor,tutees\n"
    )
    _, errors = read_staff_csv(path)
    assert "repeats line 2" in str(errors[0])
    path.write_text("staff_id,name,email\nS9,Ok,ok@x.ac.uk\n")
    assert "missing columns: role, scope" in str(read_staff_csv(path)[1][0])
    path.write_text("staff_id,name,email,role,scope\n")
    assert "no staff rows" in str(read_staff_csv(path)[1][0])


def test_one_person_with_two_roles_and_conflicting_rows(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,name,email,role,scope\n"
        "S5,Dr B,b@x.ac.uk,personal_tutor,tutees\n"
        "S5,Dr B,b@x.ac.uk,programme_leader,programme:BSC-PSY\n"
    )
    directory = StaffDirectory.from_rows(read_staff_csv(path)[0])
    both = directory.get("S5")
    assert both.roles == {Role.PERSONAL_TUTOR, Role.PROGRAMME_LEADER}
    assert both.describe() == "personal tutor of their tutees; programme leader of BSC-PSY"
    assert len(directory.rows()) == 2
    path.write_text(path.read_text() + "S5,Dr C,c@x.ac.uk,director_of_school,school:X\n")
    with pytest.raises(ValueError, match="S5: rows disagree"):
        StaffDirectory.from_rows(read_staff_csv(path)[0])


def test_audit_entries_are_normalised() -> None:
    at = datetime(2026, 11, 23, 7, tzinfo=UTC)
    entry = audit(at, Staff.as_operator(), Action.STUDENT_VIEW, "cli", ["b", "a", "b"])
    assert entry.staff_id == "operator" and entry.student_ids == ("a", "b")


def test_a_programme_page_is_for_its_leader_its_director_and_officers_only() -> None:
    from models.access import may_see_programme

    leader = Staff("L", "L", "l@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-CS"),))
    director = Staff("D", "D", "d@x.ac.uk", (Grant(Role.DIRECTOR_OF_SCHOOL, "Computing"),))
    officer = Staff("E", "E", "e@x.ac.uk", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),))
    tutor = Staff("T", "T", "t@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
    assert may_see_programme(leader, "BSC-CS", "Computing")
    assert not may_see_programme(leader, "BSC-PSY", "Computing")
    assert may_see_programme(director, "BSC-PSY", "Computing")
    assert not may_see_programme(director, "BA-HIST", "Humanities")
    assert may_see_programme(officer, "BA-HIST", "Humanities")
    assert may_see_programme(Staff.as_operator(), "BA-HIST", "Humanities")
    assert not may_see_programme(tutor, "BSC-CS", "Computing")
