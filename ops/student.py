"""`lde student show ID`: the student's own view, which a tutor can show them.

Their band and score, their activity per source per week against the average of comparable students
(cohort, or programme when the cohort is under 8), and their alerts; nothing about any other
individual.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sinks.clickhouse import ClickHouseStore
from sinks.clickhouse import students as queries

MIN_GROUP = 8


def student_report(store: ClickHouseStore, student_id: str, weeks: int = 8) -> dict[str, Any] | None:
    """The figures of the student view, or None for an unknown student."""
    found = queries.profile(store, student_id)
    if found is None:
        return None
    given, family, programme, programme_name, year, mode, school, status = found
    latest = queries.latest_standing(store, student_id)
    as_of: date = latest[0] if latest else date.today()  # noqa: DTZ011 - a calendar day, no instant
    first_week = as_of - timedelta(days=as_of.weekday()) - timedelta(weeks=weeks - 1)
    group = queries.ComparisonGroup.cohort(programme, year, mode)
    size = queries.group_size(store, group)
    basis = "cohort"
    if size < MIN_GROUP:
        group, basis = queries.ComparisonGroup.programme(programme), "programme"
        size = queries.group_size(store, group)
    own = queries.weekly_events(store, student_id, first_week)
    group_rows = queries.group_weekly_events(store, group, first_week)
    series: dict[str, dict[str, dict[str, float]]] = {}
    for week, source, events in own:
        series.setdefault(source, {}).setdefault(week.isoformat(), {})["student"] = int(events)
    for week, source, total in group_rows:
        cell = series.setdefault(source, {}).setdefault(week.isoformat(), {})
        cell["average"] = round(float(total) / size, 1) if size >= MIN_GROUP else None  # type: ignore[assignment]
    return {
        "student_id": student_id,
        "name": f"{given} {family}".strip(),
        "programme": programme_name or programme,
        "year_of_study": year,
        "mode": mode,
        "school": school,
        "status": status,
        "as_of": as_of.isoformat(),
        "score": float(latest[1]) if latest else None,
        "band": latest[2] if latest else None,
        "compared_with": f"{basis} ({size} students)",
        "weeks": [(first_week + timedelta(weeks=i)).isoformat() for i in range(weeks)],
        "activity": series,
        "alerts": [
            {k: a[k] for k in ("raised_on", "rule", "about_rule", "explanation")}
            for a in store.alerts(student_id=student_id)
        ],
    }


def render_text(report: dict[str, Any]) -> str:
    """A plain-text view a tutor can read out or send."""
    lines = [
        f"{report['name'] or report['student_id']} ({report['student_id']}), {report['programme']}, "
        f"year {report['year_of_study']} {report['mode']}",
        f"Engagement on {report['as_of']}: "
        + (f"{report['band']} (score {report['score']:.0f} of 100)" if report["band"] else "not scored yet")
        + f", compared with the {report['compared_with']}",
        "",
        "Activity per week (yours / average of comparable students):",
        "  source      " + " ".join(f"{w[5:]:>11}" for w in report["weeks"]),
    ]
    for source, weeks in sorted(report["activity"].items()):
        cells = []
        for week in report["weeks"]:
            cell = weeks.get(week, {})
            average = cell.get("average")
            cells.append(f"{cell.get('student', 0):>5} / {'-' if average is None else f'{average:.0f}':>3}")
        lines.append(f"  {source:<11} " + " ".join(f"{c:>11}" for c in cells))
    lines.append("")
    lines.append("Alerts:" if report["alerts"] else "Alerts: none")
    for alert in report["alerts"]:
        lines.append(f"  {alert['raised_on']}  {alert['rule']}: {alert['explanation']}")
    return "\n".join(lines)
