"""Who sees an overdue case: its owner always, and the next role up once it is overdue."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from models.access import CaseEscalation, Grant, Role, Staff, StaffDirectory


@dataclass(frozen=True)
class Student:
    student_id: str = "900412771"
    personal_tutor_id: str = "T1"
    programme_code: str = "BSC-CS"
    school: str = "Computing"


TUTOR = Staff("T1", "Dr Tutor", "t@x.ac.uk", (Grant(Role.PERSONAL_TUTOR),))
LEADER = Staff("L1", "Dr Leader", "l@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-CS"),))
OTHER_LEADER = Staff("L2", "Dr Other", "o@x.ac.uk", (Grant(Role.PROGRAMME_LEADER, "BSC-PSY"),))
TUTOR_AND_LEADER = Staff(
    "TL", "Dr Both", "b@x.ac.uk", (Grant(Role.PERSONAL_TUTOR), Grant(Role.PROGRAMME_LEADER, "BSC-CS"))
)
DIRECTOR = Staff("D1", "Prof Director", "d@x.ac.uk", (Grant(Role.DIRECTOR_OF_SCHOOL, "Computing"),))
OFFICER = Staff("E1", "Jo Officer", "e@x.ac.uk", (Grant(Role.STUDENT_ENGAGEMENT_OFFICER),))
FULL = CaseEscalation(StaffDirectory([TUTOR, LEADER, OTHER_LEADER, DIRECTOR, OFFICER, TUTOR_AND_LEADER]))
NO_LEADER = CaseEscalation(StaffDirectory([TUTOR, OTHER_LEADER, DIRECTOR, OFFICER]))
NOBODY_ABOVE = CaseEscalation(StaffDirectory([TUTOR]))


@pytest.mark.parametrize(
    ("escalation", "owner", "student", "up"),
    [
        (FULL, "T1", Student(), ["L1", "TL"]),  # the tutor's case goes to the programme's leaders
        (FULL, "L1", Student(), ["D1"]),  # a leader's own case goes to the director
        (FULL, "TL", Student(personal_tutor_id="TL"), ["D1"]),  # the highest rung that covers counts
        (FULL, "D1", Student(), ["E1"]),
        (FULL, "E1", Student(), []),  # nobody above the engagement officers
        (FULL, "GONE", Student(), ["L1", "TL"]),  # an owner who has left stands on the tutor's rung
        (NO_LEADER, "T1", Student(), ["D1"]),  # a programme without a leader: the director
        (NOBODY_ABOVE, "T1", Student(), []),
    ],
)
def test_an_overdue_case_goes_to_the_next_role_up(
    escalation: CaseEscalation, owner: str, student: Student, up: list[str]
) -> None:
    assert sorted(escalation.escalated_to(owner, student)) == up


@pytest.mark.parametrize(
    ("viewer", "owner", "overdue", "sees"),
    [
        (TUTOR, "T1", False, True),
        (LEADER, "T1", False, False),  # not yet: the tutor's to act on
        (LEADER, "T1", True, True),
        (OTHER_LEADER, "T1", True, False),  # another programme
        (DIRECTOR, "T1", True, False),  # two rungs up: not while the leader is there
        (DIRECTOR, "L1", True, True),
        (TUTOR, "L1", True, False),  # given to the leader: off the tutor's desk, overdue or not
        (OFFICER, "T1", False, False),
    ],
)
def test_on_desk_is_the_owner_and_the_next_role_up_once_overdue(
    viewer: Staff, owner: str, overdue: bool, sees: bool
) -> None:
    assert FULL.on_desk(viewer, owner, Student(), overdue) is sees


def test_never_a_case_about_a_student_the_viewer_may_not_see() -> None:
    assert not FULL.on_desk(OTHER_LEADER, "L2", Student(), True)
