"""The administrator role (issue 15): loaded from the staff CSV with scope `service`, runs the service,
sees no student through that role, and gets no weekly report of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.access import (
    NotAdministrator,
    Role,
    Staff,
    StaffDirectory,
    may_see,
    read_staff_csv,
    require_administrator,
)
from tests.unit.models.test_access import sample_roster


def directory(tmp_path: Path, text: str) -> StaffDirectory:
    path = tmp_path / "staff.csv"
    path.write_text("staff_id,name,email,role,scope\n" + text)
    rows, errors = read_staff_csv(path)
    assert errors == []
    return StaffDirectory.from_rows(rows)


def test_an_administrator_row_loads_and_needs_the_service_scope(tmp_path: Path) -> None:
    staff = directory(tmp_path, "A1,Ada,a@x.ac.uk,administrator,service\n").get("A1")
    assert staff.roles == {Role.ADMINISTRATOR} and staff.administrator and not staff.reads_personal_data
    bad = tmp_path / "bad.csv"
    bad.write_text("staff_id,name,email,role,scope\nA1,Ada,a@x.ac.uk,administrator,institution\n")
    _, errors = read_staff_csv(bad)
    assert len(errors) == 1 and "'service'" in errors[0].reason


def test_an_administrator_sees_no_student_and_others_are_no_administrators(tmp_path: Path) -> None:
    staff = directory(
        tmp_path,
        "A1,Ada,a@x.ac.uk,administrator,service\nS1,Sam,s@x.ac.uk,student_engagement_officer,institution\n"
        "S1,Sam,s@x.ac.uk,administrator,service\nT1,Tia,t@x.ac.uk,personal_tutor,tutees\n",
    )
    students = sample_roster()
    assert not any(may_see(staff.get("A1"), s) for s in students)
    assert all(may_see(staff.get("S1"), s) for s in students)  # both roles: the union
    require_administrator(staff.get("S1"))
    require_administrator(Staff.as_operator())
    with pytest.raises(NotAdministrator, match="T1 is not an administrator"):
        require_administrator(staff.get("T1"))
    assert staff.get("T1").reads_personal_data and not staff.get("T1").administrator
