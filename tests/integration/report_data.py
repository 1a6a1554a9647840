"""A small university in a real chDB store for the report, access and delivery tests.

The suite's five students and seven staff (tests/fixtures/upstream), plus ten more Computer Science
students of a tutor who is not in the directory (so BSC-CS reaches 12 students and shows programme
averages) and three psychology students: 8 weeks of daily activity up to 2026-W47, scores, and alerts
raised that week.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from models.access import StaffDirectory, read_staff_csv
from models.alerts import Alert, Rule, alert_id
from models.evaluation import ScoreRow
from models.roster import RosterRecord, load_roster
from sinks.clickhouse import ClickHouseStore
from tests.fixtures import upstream

WEEK = date(2026, 11, 16)  # Monday of 2026-W47
FIRST_DAY = WEEK - timedelta(weeks=7)
LOADED_AT = datetime(2026, 11, 1, tzinfo=UTC)


def sample_directory() -> StaffDirectory:
    rows, errors = read_staff_csv(upstream.path(upstream.STAFF))
    assert not errors
    return StaffDirectory.from_rows(rows)


def roster() -> list[RosterRecord]:
    students = [r for r in load_roster(upstream.path(upstream.ROSTER)) if isinstance(r, RosterRecord)]
    base = students[0]
    names = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Femi", "Gus", "Hana", "Ivo", "Jun"]
    for i, name in enumerate(names):
        students.append(
            base.model_copy(
                update={
                    "student_id": f"9007000{i:02d}",
                    "given_name": name,
                    "family_name": "Extra",
                    "personal_tutor_id": "S5555",  # not in the staff directory
                }
            )
        )
    psy = students[1]
    for i, name in enumerate(["Kit", "Lou", "Mo"]):
        students.append(
            psy.model_copy(
                update={
                    "student_id": f"9008000{i:02d}",
                    "given_name": name,
                    "family_name": "Psych",
                    "personal_tutor_id": "S6666",
                }
            )
        )
    # Zoe Price (withdrawn in March 2026) is on the roster but left before the reported week.
    return students


#: Students who went silent mid-term (their activity stops) and get a no_engagement alert in W47.
SILENT = {"900201777": date(2026, 11, 8), "900700003": date(2026, 11, 10)}


def seed(store: ClickHouseStore) -> list[RosterRecord]:
    rng = random.Random(6)
    students = roster()
    store.write_students(students)
    store.write_staff(sample_directory().rows(), LOADED_AT)
    rows = []
    scores = []
    alerts = []
    for n, record in enumerate(students):
        if record.leave_date is not None:
            continue
        level = 0.4 + 0.15 * (n % 7)
        stops = SILENT.get(record.student_id)
        day = FIRST_DAY
        while day <= WEEK + timedelta(days=6):
            if (stops is None or day <= stops) and day.weekday() < 5:
                vle = rng.randrange(1, 1 + int(8 * level))
                counts = [
                    vle,
                    rng.random() < 0.1,
                    rng.randrange(0, 4),
                    rng.random() < 0.2,
                    1,
                    rng.random() < 0.3,
                ]
                expected = 2
                came = sum(rng.random() < level for _ in range(expected))
                rows.append((record.student_id, day.toordinal(), [*map(int, counts), expected, came], 1))
            elif day.weekday() < 5:
                rows.append((record.student_id, day.toordinal(), [0, 0, 0, 0, 0, 0, 2, 0], 1))
            day += timedelta(days=1)
        score = 0.0 if stops else round(min(99.0, 25 + 60 * level + rng.random() * 5), 1)
        band = (
            "None"
            if stops
            else ("High" if score >= 80 else "Good" if score >= 60 else "Partial" if score >= 40 else "Low")
        )
        scores.append(ScoreRow(WEEK + timedelta(days=6), record.student_id, score, band, "programme", score))
        if stops:
            raised = stops + timedelta(days=7)
            alerts.append(
                Alert(
                    alert_id=alert_id(record.student_id, Rule.NO_ENGAGEMENT, stops + timedelta(days=1)),
                    student_id=record.student_id,
                    rule=Rule.NO_ENGAGEMENT,
                    raised_on=raised,
                    episode_start=stops + timedelta(days=1),
                    days_silent=7,
                    last_active_on=stops,
                    programme_code=record.programme_code,
                    year_of_study=record.year_of_study,
                    mode=record.mode.value,
                    school=record.school,
                    personal_tutor_id=record.personal_tutor_id,
                    explanation="No recorded activity of any kind for 7 days "
                    f"(last active on {stops:%A %d %B %Y}).",
                    band="None",
                    score=0.0,
                )
            )
    store.write_activity(rows)
    store.write_scores(scores)
    store.write_alerts(alerts)
    return students
