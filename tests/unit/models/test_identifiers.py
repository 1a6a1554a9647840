"""Identifiers are checked where they enter (issue 22, item 6): staff ids, student ids and programme
codes match one documented pattern each, so none can become a path."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from models.access import read_staff_csv
from models.identifiers import file_stem, is_person_id, is_programme_code, path_refusal
from models.roster import Absence, RosterRecord

HOSTILE = [
    "../../x",
    "/etc/passwd",
    "..",
    ".",
    "a/b",
    "a\\b",
    "C:x",
    "a b",
    "a\nb",
    "a\x00b",
    "",
    "-rf",
    "x" * 65,
]


@pytest.mark.parametrize("good", ["S1042", "DEMO-SEO", "900412771", "j.smith@example.ac.uk", "ab_12+3"])
def test_the_documented_ids_are_accepted(good: str) -> None:
    assert is_person_id(good) and file_stem(good) == good


@pytest.mark.parametrize("bad", HOSTILE)
def test_no_id_can_carry_a_path_a_separator_or_a_control_character(bad: str) -> None:
    assert not is_person_id(bad)
    with pytest.raises(ValueError, match="no file name is made of it"):
        file_stem(bad)


def test_programme_codes() -> None:
    assert is_programme_code("BSC-CS") and is_programme_code("MSc.DS_2")
    assert not any(is_programme_code(bad) for bad in [*HOSTILE, "a@b", "x" * 33])


def test_path_parameters_that_carry_an_identifier_must_match_it() -> None:
    assert path_refusal({"student_id": "900412771", "programme_code": "BSC-CS", "name": "x/y"}) is None
    reason = path_refusal({"student_id": "a b"})
    assert reason is not None and "no such student id" in reason and "a b" not in reason
    assert path_refusal({"programme_code": "../x"}) is not None


def write_staff(tmp_path: Path, staff_id: str, scope: str = "tutees") -> Path:
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,name,email,role,scope\n"
        f'"{staff_id}",A Tutor,a.tutor@example.ac.uk,personal_tutor,{scope}\n'
        f"S1,A Leader,a.leader@example.ac.uk,programme_leader,programme:BSC-CS\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("bad", ["../../x", "/tmp/x", "..", "a/b"])
def test_the_staff_loader_refuses_a_staff_id_that_is_a_path(tmp_path: Path, bad: str) -> None:
    # The attack: the weekly report used the staff id as a file name, outside its folder.
    rows, errors = read_staff_csv(write_staff(tmp_path, bad))
    assert [e.line for e in errors] == [2] and "staff_id" in errors[0].reason
    assert [r.staff_id for r in rows] == ["S1"]


def test_the_staff_loader_refuses_a_programme_scope_that_is_not_a_code(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(
        "staff_id,name,email,role,scope\nS2,A Leader,l@example.ac.uk,programme_leader,programme:../x\n",
        encoding="utf-8",
    )
    _, errors = read_staff_csv(path)
    assert "not a valid programme code" in errors[0].reason


def roster(**changes: str) -> dict[str, str]:
    return {
        "student_id": "900412771",
        "programme_code": "BSC-CS",
        "year_of_study": "1",
        "mode": "FT",
        "status": "active",
        "start_date": "2026-09-21",
        "personal_tutor_id": "S1042",
        **changes,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"student_id": "../x"},
        {"programme_code": "BSC/CS"},
        {"personal_tutor_id": "../../x"},
        {"student_id": "a b"},
    ],
)
def test_the_roster_refuses_identifiers_outside_their_pattern(changes: dict[str, str]) -> None:
    RosterRecord.model_validate(roster())
    with pytest.raises(ValidationError):
        RosterRecord.model_validate(roster(**changes))


def test_an_absence_refuses_a_student_id_outside_the_pattern() -> None:
    with pytest.raises(ValidationError):
        Absence.model_validate(
            {"student_id": "/etc", "from_date": "2026-10-01", "to_date": "2026-10-02", "reason": "placement"}
        )
