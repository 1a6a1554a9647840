"""A synthetic university: a roster and a term of canonical events with realistic daily rhythms.

Deterministic for a seed. Students have habits (how much they use each source, full- or part-time);
some stop engaging part-way through term, a few never engage; the simulator states that ground truth.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from models.events import ActivityEvent, AttendanceStatus, Attributes, Source
from models.roster import Absence, AbsenceReason, RosterRecord, StudentStatus, StudyMode
from ops.devtools.names import distinct_names

PROGRAMMES = (
    ("BSC-CS", "BSc (Hons) Computer Science", "School of Computer Science and Mathematics"),
    ("BSC-MATH", "BSc (Hons) Mathematics", "School of Computer Science and Mathematics"),
    ("BSC-PSY", "BSc (Hons) Psychology", "School of Psychology"),
    ("BSC-NUR", "BSc (Hons) Nursing", "School of Nursing and Allied Health"),
    ("BA-HIST", "BA (Hons) History", "School of Humanities"),
    ("MSC-DS", "MSc Data Science", "School of Computer Science and Mathematics"),
)
GIVEN = ("Amina", "Carys", "Liam", "Zoe", "Tomasz", "Priya", "Owen", "Freya", "Kwame", "Sian", "Jamal", "Mei")
FAMILY = ("Khan", "Rowe", "Okafor", "Doyle", "Price", "Evans", "Nowak", "Patel", "Jones", "Chen", "Hughes")

#: Mean events per active day by source for an average full-time student.
BASE_RATES = {
    Source.VLE: 9.0,
    Source.ERESOURCE: 1.5,
    Source.PC_LOGON: 1.2,
    Source.REMOTE: 0.6,
    Source.PRINT: 0.3,
    Source.LIBRARY: 0.08,
}


#: Habits below half the typical level count as disengagement in the ground truth.
LOW_ENGAGEMENT = 0.5

#: A school of a handful of students (issue 24.6: too small to compare with on its own).
TINY_PROGRAMME = ("BA-ART", "BA (Hons) Fine Art", "School of Fine Art")

#: Populations who engage in their own pattern (issue 24), none of them disengaged: part-time
#: students who study in one long session every 10 days, students back from an approved absence,
#: students whose course has no timetabled sessions and uses only the VLE and e-resources, and the
#: students of a tiny school. A tutor would call any alert about them false.
SPARSE_PART_TIME = "part_time_sparse"
BACK_FROM_ABSENCE = "approved_absence"
FEW_SOURCES = "few_sources"
TINY_SCHOOL = "tiny_school"
FEW_SOURCES_USED = (Source.VLE, Source.ERESOURCE)
SPARSE_EVERY_DAYS = 10


@dataclass(frozen=True)
class Profiles:
    """How many students of each population of issue 24 a simulation has (shares of the roster;
    the tiny school is a number of students), and whether term has a reading week."""

    sparse_part_time: float = 0.03
    back_from_absence: float = 0.04
    few_sources: float = 0.04
    tiny_school: int = 5
    reading_week: int | None = 6  # the week of term (1-based) with no teaching, or None


NO_PROFILES = Profiles(0.0, 0.0, 0.0, 0, None)


@dataclass(frozen=True)
class SimulatedStudent:
    record: RosterRecord
    engagement: float  # multiplier of the base rates
    stops_on: date | None  # first silent day (ground truth), None if never stops
    never_engages: bool
    population: str = ""  # one of the populations above, or "" (see Profiles)
    absences: tuple[Absence, ...] = ()


@dataclass(frozen=True)
class Simulation:
    students: list[SimulatedStudent]
    term_start: date
    weeks: int
    seed: int
    tz: ZoneInfo
    reading_week: date | None = None  # its Monday

    @property
    def non_teaching_weeks(self) -> frozenset[date]:
        """The Mondays of the weeks without teaching (LDE_NON_TEACHING_WEEKS for this term)."""
        return frozenset({self.reading_week}) if self.reading_week is not None else frozenset()

    def absences(self) -> list[Absence]:
        """Every approved absence of the simulated students (the lde.absences records)."""
        return [a for s in self.students for a in s.absences]

    def populations(self) -> dict[str, str]:
        """Student id -> the population engaging in its own pattern (see Profiles), for those in one."""
        return {s.record.student_id: s.population for s in self.students if s.population}

    @property
    def term_end(self) -> date:
        return self.term_start + timedelta(days=7 * self.weeks - 1)

    def days(self) -> list[date]:
        return [self.term_start + timedelta(days=i) for i in range(7 * self.weeks)]

    def ground_truth(self) -> list[dict[str, str]]:
        """Who disengaged and from which day (first silent day).

        Patterns: `stops` (engaged, then silent from a day), `never_engages`, and `low_engagement`
        (engaged all term at under half the typical level: at risk, though never silent).
        """
        rows = []
        for s in self.students:
            if s.engagement < LOW_ENGAGEMENT and not s.never_engages and s.stops_on is None:
                rows.append(
                    {
                        "student_id": s.record.student_id,
                        "pattern": "low_engagement",
                        "disengaged_from": self.term_start.isoformat(),
                    }
                )
            elif s.never_engages:
                rows.append(
                    {
                        "student_id": s.record.student_id,
                        "pattern": "never_engages",
                        "disengaged_from": self.term_start.isoformat(),
                    }
                )
            elif s.stops_on is not None:
                rows.append(
                    {
                        "student_id": s.record.student_id,
                        "pattern": "stops",
                        "disengaged_from": s.stops_on.isoformat(),
                    }
                )
        return rows

    def events_on(self, day: date) -> list[ActivityEvent]:
        """Every event of one local day, in time order (deterministic for the seed and day)."""
        rng = random.Random(f"{self.seed}:{day.isoformat()}")
        events: list[ActivityEvent] = []
        weekday = day.weekday()
        weekend = weekday >= 5
        for student in self.students:
            events.extend(self._student_day(student, day, weekday, weekend, rng))
        events.sort(key=lambda e: (e.occurred_at, e.event_id))
        return events

    def all_events(self) -> Iterator[ActivityEvent]:
        for day in self.days():
            yield from self.events_on(day)

    # -- internals -----------------------------------------------------------------------------------
    def _student_day(
        self, student: SimulatedStudent, day: date, weekday: int, weekend: bool, rng: random.Random
    ) -> list[ActivityEvent]:
        sid = student.record.student_id
        part_time = student.record.mode is StudyMode.PART_TIME
        silent = student.never_engages or (student.stops_on is not None and day >= student.stops_on)
        away = any(a.covers(day) for a in student.absences)
        reading = self.reading_week is not None and self.reading_week <= day < self.reading_week + timedelta(
            7
        )
        sparse = student.population == SPARSE_PART_TIME
        few = student.population == FEW_SOURCES
        out: list[ActivityEvent] = []
        if sparse:
            # One long session every 10 days: about what a part-timer does in 10 days, in one.
            study_day = (day - self.term_start).days % SPARSE_EVERY_DAYS == hash_int(sid) % SPARSE_EVERY_DAYS
            day_factor = 4.5 if study_day else 0.0
        else:
            day_factor = 0.35 if weekend else 1.0
            if part_time:
                # Part-time students study on a few fixed days of the week.
                study_days = {(hash_int(sid) + k) % 7 for k in range(3)}
                day_factor *= 1.0 if weekday in study_days else 0.1
        if reading:
            day_factor *= 0.5  # a reading week: study goes on, less of it
        if not silent and not away:
            for source, rate in BASE_RATES.items():
                if few and source not in FEW_SOURCES_USED:
                    continue
                n = _poisson(rng, rate * student.engagement * day_factor * (1.6 if few else 1.0))
                for i in range(n):
                    out.append(self._event(sid, source, day, rng, f"{source.value}-{i}"))
        # Timetabled sessions: full-time students have one most weekdays, part-time on their study
        # days (sparse part-timers on theirs); none in a reading week, none on a course without them.
        timetabled = day_factor > 0 if sparse else not weekend and (not part_time or weekday in {0, 2})
        if timetabled and not reading and not few:
            # UK attendance runs at about 80-95% for students who are engaged at all.
            attended = not silent and not away and rng.random() < min(0.97, 0.8 + 0.12 * student.engagement)
            status = AttendanceStatus.PRESENT if attended else AttendanceStatus.ABSENT
            if away:
                status = AttendanceStatus.AUTHORISED_ABSENCE
            elif attended and rng.random() < 0.1:
                status = AttendanceStatus.LATE
            out.append(self._event(sid, Source.ATTENDANCE, day, rng, "session", status=status, hour=10))
        return out

    def _event(
        self,
        student_id: str,
        source: Source,
        day: date,
        rng: random.Random,
        tag: str,
        status: AttendanceStatus | None = None,
        hour: int | None = None,
    ) -> ActivityEvent:
        if hour is None:
            # Daily rhythm: mostly 09:00-23:00 local, peaking mid-afternoon and evening; a few after midnight.
            hour = min(23, max(0, int(rng.gauss(15.5, 4.0))))
        moment = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=self.tz)
        attributes = None
        if status is not None:
            attributes = Attributes(status=status)
        elif source is Source.PRINT:
            attributes = Attributes(pages=rng.randint(1, 30))
        return ActivityEvent(
            event_id=f"sim-{self.seed}-{student_id}-{day.isoformat()}-{tag}",
            student_id=student_id,
            source=source,
            occurred_at=moment,
            attributes=attributes,
        )


def hash_int(text: str) -> int:
    """A stable small integer from a string (Python's hash() is salted per process)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def simulate(
    students: int = 500,
    weeks: int = 10,
    seed: int = 1,
    term_start: date = date(2026, 9, 21),
    timezone: str = "Europe/London",
    stop_share: float = 0.08,
    never_share: float = 0.02,
    profiles: Profiles = NO_PROFILES,
) -> Simulation:
    """Build a deterministic synthetic university of `students` students over `weeks` weeks; with
    `profiles`, also the populations of issue 24 (see Profiles)."""
    rng = random.Random(seed)
    special = random.Random(f"profiles:{seed}")  # apart, so the other students are as without profiles
    people: list[SimulatedStudent] = []
    names = distinct_names(students, seed)
    for n in range(students):
        code, name, school = PROGRAMMES[n % len(PROGRAMMES)]
        tiny = n < profiles.tiny_school
        if tiny:
            code, name, school = TINY_PROGRAMME
        postgraduate = code.startswith("MSC")
        year = 1 if postgraduate else 1 + rng.randrange(3)
        mode = StudyMode.PART_TIME if rng.random() < 0.2 else StudyMode.FULL_TIME
        start = term_start if year == 1 else term_start.replace(year=term_start.year - (year - 1))
        student_id = f"9{seed % 100:02d}{n:06d}"
        rng.choice(GIVEN), rng.choice(FAMILY)  # drawn as they always were, so every other figure stays
        given, family = names[n]
        # Habits differ (about a third either side of typical), but a steady student is never near zero.
        engagement = max(0.3, rng.lognormvariate(0.0, 0.35))
        roll = rng.random()
        never = roll < never_share
        stops_on = None
        if not never and roll < never_share + stop_share:
            # Stop somewhere from week 3 until two weeks before the end, so detection can be observed.
            last_start = max(21, 7 * weeks - 14)
            stops_on = term_start + timedelta(days=rng.randrange(21, last_start + 1))
        population = ""
        absences: tuple[Absence, ...] = ()
        disengaged = never or stops_on is not None or engagement < LOW_ENGAGEMENT
        pick = special.random()
        if tiny:
            population = TINY_SCHOOL if not disengaged else ""
        elif not disengaged:
            shares = (profiles.sparse_part_time, profiles.back_from_absence, profiles.few_sources)
            if pick < shares[0]:
                population, mode = SPARSE_PART_TIME, StudyMode.PART_TIME
            elif pick < shares[0] + shares[1]:
                population = BACK_FROM_ABSENCE
                first = term_start + timedelta(days=special.randrange(21, max(22, 7 * weeks - 21)))
                last = first + timedelta(days=special.randrange(7, 15))
                reason = special.choice(list(AbsenceReason))
                absences = (Absence(student_id=student_id, from_date=first, to_date=last, reason=reason),)
            elif pick < sum(shares):
                population = FEW_SOURCES
        if population:
            engagement = max(engagement, 0.7)  # engaging, in their own pattern
        record = RosterRecord(
            student_id=student_id,
            given_name=given,
            family_name=family,
            email=f"{student_id}@students.example.ac.uk",
            programme_code=code,
            programme_name=name,
            school=school,
            year_of_study=year,
            mode=mode,
            status=StudentStatus.ACTIVE,
            start_date=start,
            personal_tutor_id=f"S{1000 + (n % 40)}",
        )
        people.append(SimulatedStudent(record, engagement, stops_on, never, population, absences))
    reading = term_start + timedelta(days=7 * (profiles.reading_week - 1)) if profiles.reading_week else None
    if reading is not None:
        reading -= timedelta(days=reading.weekday())
    return Simulation(people, term_start, weeks, seed, ZoneInfo(timezone), reading)


def staff_csv(sim: Simulation) -> str:
    """A staff directory for the simulated university (the shape of shared/samples/staff.csv): every
    personal tutor of the roster, a leader per programme, a director per school, one engagement
    officer and one administrator, so that the demo's web app can be seen through each role's eyes."""
    lines = ["staff_id,name,email,role,scope"]
    tutors = sorted({s.record.personal_tutor_id for s in sim.students if s.record.personal_tutor_id})
    for n, tutor in enumerate(tutors):
        given, family = GIVEN[n % len(GIVEN)], FAMILY[(n * 7) % len(FAMILY)]
        lines.append(f"{tutor},Dr {given} {family},{tutor.lower()}@example.ac.uk,personal_tutor,tutees")
    schools = sorted({school for _, _, school in PROGRAMMES})
    for n, (code, _name, _school) in enumerate(PROGRAMMES):
        who = f"L{n + 1:03d},Prof {FAMILY[n % len(FAMILY)]},l{n + 1:03d}@example.ac.uk"
        lines.append(f"{who},programme_leader,programme:{code}")
    for n, school in enumerate(schools):
        who = f"D{n + 1:03d},Prof {GIVEN[n % len(GIVEN)]} Dean,d{n + 1:03d}@example.ac.uk"
        lines.append(f"{who},director_of_school,school:{school}")
    lines.append("E001,Jo Marsh,e001@example.ac.uk,student_engagement_officer,institution")
    lines.append("A001,Sam Webb,a001@example.ac.uk,administrator,service")  # loads and jobs, no students
    return "\n".join(lines) + "\n"


def write_files(sim: Simulation, out_dir: Path) -> dict[str, Path]:
    """Write roster.csv, absences.csv, events.jsonl (canonical), ground_truth.csv and simulation.json
    (with the term's non-teaching weeks) into out_dir: what `lde replay` needs to judge the term as
    `lde quality` does (the absences with --absences, the weeks as LDE_NON_TEACHING_WEEKS)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    roster_path = out_dir / "roster.csv"
    fields = list(RosterRecord.model_fields)
    with roster_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for s in sim.students:
            writer.writerow(
                {k: ("" if v is None else v) for k, v in s.record.model_dump(mode="json").items()}
            )
    absences_path = out_dir / "absences.csv"
    with absences_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(Absence.model_fields))
        writer.writeheader()
        for absence in sim.absences():
            writer.writerow(absence.model_dump(mode="json"))
    events_path = out_dir / "events.jsonl"
    with events_path.open("w") as handle:
        for event in sim.all_events():
            handle.write(event.model_dump_json(exclude_none=True))
            handle.write("\n")
    truth_path = out_dir / "ground_truth.csv"
    with truth_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["student_id", "pattern", "disengaged_from"])
        writer.writeheader()
        writer.writerows(sim.ground_truth())
    (out_dir / "simulation.json").write_text(
        json.dumps(
            {
                "students": len(sim.students),
                "weeks": sim.weeks,
                "seed": sim.seed,
                "term_start": sim.term_start.isoformat(),
                "non_teaching_weeks": [monday.isoformat() for monday in sorted(sim.non_teaching_weeks)],
            },
            indent=2,
        )
    )
    return {
        "roster": roster_path,
        "absences": absences_path,
        "events": events_path,
        "ground_truth": truth_path,
    }
