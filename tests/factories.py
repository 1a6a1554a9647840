"""Small builders shared by the tests."""

from datetime import date

from models.roster import RosterRecord

TERM_START = date(2026, 9, 21)


def roster_record(sid: str = "s1", **changes: object) -> RosterRecord:
    """An active first-year full-time Computer Science student who started on TERM_START."""
    base = {
        "student_id": sid,
        "programme_code": "BSC-CS",
        "school": "Computing",
        "year_of_study": 1,
        "mode": "FT",
        "status": "active",
        "start_date": TERM_START,
        "personal_tutor_id": "T1",
    }
    return RosterRecord.model_validate({**base, **changes})
