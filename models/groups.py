"""The one comparison group (issue 27): whom a student's figures are set against, on every page, in
every report and in the alert texts, and the words that say so. Pure: no I/O.

The group is the one the scoring uses (models.comparison): the student's *cohort* (the same
programme, year of study and mode of study), widened to the programme, then the school, then the
whole institution while it has fewer than `min_group` students. The pages, the weekly report and the
student's own view all choose it here, average over it, and name it with `compared_with`, so a tutor
reads the same group and the same words wherever a student's average appears.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

Basis = Literal["cohort", "programme", "school", "institution"]
#: Narrowest first: the order in which a group too small is widened (as models.comparison does).
LEVELS: tuple[Basis, ...] = ("cohort", "programme", "school", "institution")

#: A group's name as the alert texts use it ("against a cohort average of 48.2").
BASIS_NAMES: dict[str, str] = {
    "cohort": "cohort",
    "programme": "programme",
    "school": "school",
    "institution": "institution",
}
#: What each group is, in a tutor's words (said once per page or report, by `compared_with`).
BASIS_MEANING: dict[str, str] = {
    "cohort": "students on the same programme, in the same year and mode of study",
    "programme": "students on the same programme, all years and modes of study",
    "school": "students in the same school",
    "institution": "all students of the institution",
}


@dataclass(frozen=True, slots=True)
class GroupMember:
    """What decides a student's group: their cohort and school."""

    student_id: str
    programme_code: str
    year_of_study: int
    mode: str
    school: str


#: A group: its level and its key at that level, e.g. ("cohort", ("BSC-CS", 1, "full_time")).
GroupId = tuple[str, tuple[str | int, ...]]


def group_id(member: GroupMember, basis: str) -> GroupId:
    """The member's group at one level."""
    if basis == "cohort":
        return basis, (member.programme_code, member.year_of_study, member.mode)
    if basis == "programme":
        return basis, (member.programme_code,)
    if basis == "school":
        return basis, (member.school,)
    if basis == "institution":
        return basis, ()
    raise ValueError(f"no comparison group {basis!r}: one of {', '.join(LEVELS)}")


def group_sizes(members: Iterable[GroupMember]) -> Counter[GroupId]:
    """Students per group at every level."""
    sizes: Counter[GroupId] = Counter()
    for member in members:
        for level in LEVELS:
            sizes[group_id(member, level)] += 1
    return sizes


def choose_group(member: GroupMember, sizes: Mapping[GroupId, int], min_group: int) -> GroupId:
    """The member's group: the narrowest level with at least `min_group` students; the institution,
    whatever its size, when none has (nothing is wider)."""
    for level in LEVELS[:-1]:
        chosen = group_id(member, level)
        if sizes.get(chosen, 0) >= min_group:
            return chosen
    return group_id(member, "institution")


def comparison_groups(members: Iterable[GroupMember], min_group: int) -> dict[str, GroupId]:
    """Every member's group, the sizes counted over the members given (pass everyone)."""
    everyone = list(members)
    sizes = group_sizes(everyone)
    return {m.student_id: choose_group(m, sizes, min_group) for m in everyone}


def group_label(group: GroupId) -> str:
    """A group as a key and a short label, e.g. "cohort BSC-CS year 1 full_time"."""
    basis, key = group
    if basis == "cohort":
        programme, year, mode = key
        return f"cohort {programme} year {year} {mode}"
    if basis == "institution":
        return "institution"
    return f"{basis} {key[0]}"


def compared_with(basis: str, students: int) -> str:
    """The one sentence naming the group, e.g. "Compared with the average of the cohort (students on
    the same programme, in the same year and mode of study; 42 students)."."""
    if basis not in BASIS_MEANING:
        raise ValueError(f"no comparison group {basis!r}: one of {', '.join(LEVELS)}")
    count = f"{students} student{'s' if students != 1 else ''}"
    return f"Compared with the average of the {BASIS_NAMES[basis]} ({BASIS_MEANING[basis]}; {count})."


def report_comparison(min_group: int) -> str:
    """The one sentence a report about many students says of their groups (each row names its own)."""
    return (
        f"Each student is compared with the average of their {BASIS_NAMES['cohort']} "
        f"({BASIS_MEANING['cohort']}), widened to the programme, the school or the institution "
        f"when it has fewer than {min_group} students, as the engagement score is."
    )


def weekly_group_averages(
    members: Iterable[GroupMember],
    chosen: Iterable[GroupId],
    weekly: Mapping[str, Mapping[date, int]],
    weeks: Sequence[date],
    min_group: int,
) -> dict[GroupId, tuple[float | None, ...]]:
    """The average per week of each group in `chosen` (the caseload's 8-week line): the events of
    every member in the group (all of the programme for a cohort widened to its programme, as
    `choose_group` counts it) over their number, a member with no events that week counting as 0;
    None for every week of a group under `min_group` students, so that an average never reveals a
    handful of others. `members` are everyone the groups were chosen among."""
    wanted = set(chosen)
    in_group: dict[GroupId, list[str]] = {g: [] for g in wanted}
    for member in members:
        for level in LEVELS:
            ids = in_group.get(group_id(member, level))
            if ids is not None:
                ids.append(member.student_id)
    out: dict[GroupId, tuple[float | None, ...]] = {}
    for group, ids in in_group.items():
        if len(ids) < min_group:
            out[group] = (None,) * len(weeks)
            continue
        out[group] = tuple(round(sum(weekly.get(m, {}).get(w, 0) for m in ids) / len(ids), 1) for w in weeks)
    return out


def group_average_words(basis: str) -> str:
    """The row-level words for a group's average, e.g. "cohort average" (the group itself is named
    once per page, by `compared_with` or `report_comparison`)."""
    if basis not in BASIS_NAMES:
        raise ValueError(f"no comparison group {basis!r}: one of {', '.join(LEVELS)}")
    return f"{BASIS_NAMES[basis]} average"
