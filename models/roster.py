"""Who the students are (roster) and when they are legitimately away (absences).

The CSV columns are those of the student records system export (as in the tests' fixtures,
tests/fixtures/upstream/roster.csv and absences.csv).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.events import InvalidMessage, describe_validation_error
from models.identifiers import PersonId, ProgrammeCode, is_person_id


class StudyMode(StrEnum):
    FULL_TIME = "FT"
    PART_TIME = "PT"


class StudentStatus(StrEnum):
    ACTIVE = "active"
    INTERRUPTED = "interrupted"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    SUSPENDED = "suspended"


class RosterRecord(BaseModel):
    """One student as the student records system knows them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    student_id: PersonId
    given_name: str = ""
    family_name: str = ""
    email: str = ""
    programme_code: ProgrammeCode
    programme_name: str = ""
    school: str = ""
    year_of_study: Annotated[int, Field(ge=0, le=10)]
    mode: StudyMode
    status: StudentStatus
    start_date: date
    leave_date: date | None = None
    personal_tutor_id: str = ""

    @field_validator("leave_date", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("personal_tutor_id")
    @classmethod
    def _tutor_is_a_staff_id(cls, value: str) -> str:
        value = value.strip()
        if value and not is_person_id(value):
            raise ValueError("not a valid staff id (see README, Identifiers)")
        return value

    @property
    def cohort(self) -> tuple[str, int, str]:
        """Fair comparison group: same programme, year of study and mode."""
        return (self.programme_code, self.year_of_study, self.mode.value)


class AbsenceReason(StrEnum):
    PLACEMENT = "placement"
    AUTHORISED_ABSENCE = "authorised_absence"
    INTERRUPTION = "interruption"


class Absence(BaseModel):
    """An approved period away: no alerts are raised for a day inside one."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    student_id: PersonId
    from_date: date
    to_date: date
    reason: AbsenceReason

    def covers(self, day: date) -> bool:
        return self.from_date <= day <= self.to_date


_Row = TypeVar("_Row", bound=BaseModel)


class CsvRowError(InvalidMessage):
    """A CSV row that does not validate; carries the line number for the operator."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def _load(model: type[_Row], rows: Iterable[tuple[int, dict[str, str]]]) -> Iterator[_Row | CsvRowError]:
    for line, row in rows:
        try:
            yield model.model_validate({k: v for k, v in row.items() if k is not None})
        except ValidationError as error:
            yield CsvRowError(line, describe_validation_error(error))


def load_roster(path: Path) -> Iterator[RosterRecord | CsvRowError]:
    """Read a roster CSV; invalid rows are yielded as errors, never raised: a bad row costs only itself."""
    return _load(RosterRecord, _read_rows(path))


def load_absences(path: Path) -> Iterator[Absence | CsvRowError]:
    """Read an absences CSV; invalid rows are yielded as errors."""
    return _load(Absence, _read_rows(path))
