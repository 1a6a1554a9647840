"""The student page's top and its timelines as data (issue 27): the one box saying what is happening,
the open case and what to do next; one weekly timeline per source in weight order with the alerts,
absences and case actions marked on it; an alert's figures as a table a tutor reads. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from models.case_clock import CaseLine, next_step
from models.cases import ActionKind, Case, CaseAction, StudentCases, case_actions, describe
from models.reports import REPORT_SOURCES, SOURCE_LABELS
from models.timebuckets import day_words
from ops.staff.web.views.caseload import ACTION_WORDS

#: What a count of each source is (the figures' and the timelines' unit).
UNITS: dict[str, str] = {
    "vle": "events",
    "library": "loans",
    "eresource": "accesses",
    "print": "print jobs",
    "pc_logon": "logons",
    "remote": "sessions",
    "attendance": "sessions attended",
}
#: An alert's rule in words (the box, the cards, the timelines' marks).
RULE_WORDS: dict[str, str] = {
    "no_engagement": "No engagement",
    "low_engagement": "Low engagement",
    "low_attendance": "Low attendance",
    "escalation": "Still open after 14 days",
    "re_engaged": "Back to engaging",
}
#: The order of the "Record action" forms: the everyday ones first.
FORM_ORDER = (
    "acknowledge",
    "note",
    "follow_up",
    "refer",
    "outcome",
    "assign",
    "snooze",
    "resolve",
    "reopen",
)
#: Actions whose words (models.cases.describe) already hold their detail.
_SAID = frozenset({ActionKind.OUTCOME, ActionKind.SNOOZE})


def rule_words(rule: str) -> str:
    return RULE_WORDS.get(rule, rule.replace("_", " ").capitalize())


def by_weight(weights: Mapping[str, float]) -> list[str]:
    """The sources heaviest first (attendance and the VLE lead with the default weights); a source
    the weights leave out comes last, in the reports' order."""
    return sorted(REPORT_SOURCES, key=lambda s: (-weights.get(s, 0.0), REPORT_SOURCES.index(s)))


# -- the figures behind an alert ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FigureRow:
    """One source in an alert's figures: the student's count, the group's average, where they stand."""

    source: str
    student: str
    average: str
    standing: str


@dataclass(frozen=True)
class FigureTable:
    facts: list[tuple[str, str]]
    rows: list[FigureRow]


def _num(value: object, places: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.{places}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _standing(percentile: object) -> str:
    if not isinstance(percentile, int | float):
        return "-"
    return f"more active than {percentile:.0f}% of the group"


def figure_table(raw: Mapping[str, Any], order: Sequence[str] = REPORT_SOURCES) -> FigureTable:
    """An alert's stored figures (models.explanations) as labelled facts and a row per source, in
    words and units; a figure this does not know is still shown, under its name in words."""
    known: set[str] = set()
    facts: list[tuple[str, str]] = []

    def fact(label: str, *keys: str, text: str | None = None) -> None:
        if all(raw.get(k) is not None for k in keys):
            known.update(keys)
            facts.append((label, text if text is not None else _num(raw[keys[0]])))

    if raw.get("basis") is not None:
        size = f" of {raw['group_size']} students" if raw.get("group_size") is not None else ""
        fact("Compared with", "basis", text=f"the {raw['basis']}{size}")
        known.add("group_size")
    fact("Period", "window_days", text=f"the last {raw.get('window_days')} days")
    if raw.get("score") is not None:
        band = f" ({raw['band']})" if raw.get("band") else ""
        fact("Engagement score", "score", text=f"{_num(raw['score'], 0)} of 100{band}")
        known.add("band")
    fact("Overall", "overall_percentile", text=_standing(raw.get("overall_percentile")))
    fact("Days silent", "days_silent")
    fact("Last active", "last_active_on")
    fact("Days in a row among the least engaged", "days_in_a_row")
    index, median = raw.get("activity_index"), raw.get("group_median_index")
    if isinstance(index, int | float) and isinstance(median, int | float):
        known.update({"activity_index", "group_median_index"})
        if median:
            facts.append(
                ("Activity against the typical student", f"{100 * index / median:.0f}% of the typical")
            )
    fact("Days looked at", "days", text=f"the last {raw.get('days')} days")
    compared = raw.get("sources_compared")
    if isinstance(compared, list):
        known.add("sources_compared")
        facts.append(
            ("Sources compared", ", ".join(SOURCE_LABELS.get(str(s), str(s)) for s in compared) or "none")
        )
    rows: list[FigureRow] = []
    for source in order:
        if source == "attendance":
            keys = ("attended", "expected", "attendance_rate", "attendance_average", "attendance_percentile")
            if raw.get("expected") is None:
                continue
            known.update(keys)
            rate = raw.get("attendance_rate")
            own = f"{raw.get('attended')} of {raw.get('expected')} sessions"
            own += f" ({_num(rate, 0)}%)" if rate is not None else ""
            average = raw.get("attendance_average")
            rows.append(
                FigureRow(
                    SOURCE_LABELS["attendance"],
                    own,
                    f"{_num(average, 0)}%" if average is not None else "-",
                    _standing(raw.get("attendance_percentile")),
                )
            )
            continue
        count_key, avg_key, pct_key = f"{source}_count", f"{source}_average", f"{source}_percentile"
        if count_key not in raw and avg_key not in raw:
            continue
        known.update({count_key, avg_key, pct_key})
        count = raw.get(count_key)
        own = "not offered" if count is None else f"{_num(count)} {UNITS[source]}"
        rows.append(
            FigureRow(SOURCE_LABELS[source], own, _num(raw.get(avg_key)), _standing(raw.get(pct_key)))
        )
    for key in sorted(set(raw) - known):
        value = raw[key]
        text = ", ".join(map(str, value)) if isinstance(value, list) else _num(value)
        facts.append((key.replace("_", " ").capitalize(), text))
    return FigureTable(facts, rows)


# -- the box at the top -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseBox:
    """What the student page says first: what is happening, the open case and what to do next; the
    open case's alerts (newest first), its history in words, the earlier cases, and the actions the
    "Record action" control offers."""

    happening: str
    case: Case | None
    line: CaseLine | None
    next_step: str
    alerts: list[Mapping[str, Any]]
    history: list[str]
    earlier: list[tuple[Case, list[str]]]
    loose_notes: list[str]
    actions: list[str]  # action kinds offered, in order (their forms)
    last: str = ""  # the open case's last action in a few words: "referred, 17 Nov (Dr One)"
    reopen_alert: str = ""  # the alert a reopen acts on ('' when the last case cannot be reopened)
    pending_referrals: list[str] = field(default_factory=list)


def history_words(actions: Sequence[CaseAction], names: Mapping[str, str]) -> list[str]:
    return [
        describe(x, dict(names)) + (f": {x.detail}" if x.detail and x.kind not in _SAID else "")
        for x in actions
    ]


def case_box(
    cases: StudentCases,
    line: CaseLine | None,
    alerts: Sequence[Mapping[str, Any]],
    band: str | None,
    names: Mapping[str, str],
    today: date,
) -> CaseBox:
    """The box from the student's cases and alerts (store rows with their explanations)."""
    case = cases.current
    by_id = {str(a["alert_id"]): a for a in alerts}
    if case is not None:
        mine = [by_id[a.alert_id] for a in case.alerts if a.alert_id in by_id]
        mine.sort(key=lambda a: (a["raised_on"], a["alert_id"]), reverse=True)
        if mine:
            happening = str(mine[0].get("explanation") or rule_words(str(mine[0]["rule"])))
            if len(mine) > 1:
                earlier_rules = ", ".join(dict.fromkeys(rule_words(str(a["rule"])).lower() for a in mine[1:]))
                happening = f"{happening} (Also in this case: {earlier_rules}.)"
        else:
            happening = f"A member of staff raised a concern: {case.reason}"
        allowed = {k.value for k in case_actions(case.state)}
        offered = [k for k in FORM_ORDER if k in allowed]
        pending = list(case.state.pending_referrals)
        history = history_words(case.state.history, names)
    else:
        mine, pending, history = [], [], []
        happening = "No open case. " + (f"Engagement band: {band}." if band else "Not scored yet.")
        closed = cases.latest
        done = closed.last_action if closed is not None else None
        if closed is not None and done is not None and done.kind is ActionKind.RESOLVE:
            who = names.get(done.staff_id, done.staff_id)
            happening += (
                f" The last case (opened {day_words(closed.opened_at.date())}) was resolved on"
                f" {day_words(done.at.date())} by {who}."
            )
        else:
            happening += " LDE opens a case when it raises an alert."
        offered = ["raise", "note"]
    latest = cases.latest
    reopen = ""
    if case is None and latest is not None and latest.alerts:
        reopen = latest.alerts[-1].alert_id
        offered.append("reopen")
    earlier = [(c, history_words(c.state.history, names)) for c in reversed(cases.cases) if c is not case]
    last = ""
    if case is not None and case.last_action is not None:
        done = case.last_action
        who = names.get(done.staff_id, done.staff_id)
        last = f"{ACTION_WORDS.get(done.kind.value, done.kind.value)}, {day_words(done.at.date())} ({who})"
    return CaseBox(
        last=last,
        happening=happening,
        case=case,
        line=line,
        next_step=next_step(line, today),
        alerts=mine,
        history=history,
        earlier=earlier,
        loose_notes=history_words(cases.loose_notes, names),
        actions=offered,
        reopen_alert=reopen,
        pending_referrals=pending,
    )


# -- timelines --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mark:
    """Something marked on a week of the timelines: an alert, an absence or a case action."""

    kind: str  # "alert", "absence", "action"
    text: str


@dataclass(frozen=True)
class Timeline:
    """One source's weeks: the student's figure and the group's average per week, with the marks."""

    source: str
    label: str
    unit: str
    weeks: list[date]
    own: list[float | None]
    average: list[float | None]
    marks: list[list[Mark]]

    @property
    def total(self) -> float:
        return sum(v for v in self.own if v is not None)


def week_marks(
    weeks: Sequence[date],
    alerts: Sequence[Mapping[str, Any]],
    absences: Sequence[tuple[date, date, str]],
    actions: Sequence[CaseAction],
) -> list[list[Mark]]:
    """Per week (Mondays given): the alerts raised, the absences that cover a day of it and the case
    actions taken in it, in words."""
    out: list[list[Mark]] = [[] for _ in weeks]

    def index(day: date) -> int | None:
        for i, monday in enumerate(weeks):
            if monday <= day < monday + timedelta(days=7):
                return i
        return None

    for first, last, reason in absences:
        for i, monday in enumerate(weeks):
            if first <= monday + timedelta(days=6) and last >= monday:
                out[i].append(Mark("absence", f"absence ({reason.replace('_', ' ')})"))
    for a in sorted(alerts, key=lambda a: (a["raised_on"], a["alert_id"])):
        found = index(a["raised_on"])
        if found is not None:
            out[found].append(Mark("alert", f"alert: {rule_words(str(a['rule'])).lower()}"))
    for action in actions:
        found = index(action.at.date())
        if found is not None:
            out[found].append(Mark("action", describe(action).split(" by ")[0]))
    return out


def timelines(
    figures: Mapping[str, Any],
    attended: Mapping[date, tuple[int, int]],
    marks: list[list[Mark]],
    order: Sequence[str],
) -> list[Timeline]:
    """One timeline per source the student or the group used in these weeks, in `order` (weight):
    counts per week against the group's average; attendance as sessions attended of those expected
    (`attended`: week -> (expected, attended))."""
    weeks = [date.fromisoformat(w) for w in figures["weeks"]]
    activity: Mapping[str, Mapping[str, Mapping[str, Any]]] = figures.get("activity", {})
    out = []
    for source in order:
        if source == "attendance":
            if not any(attended.get(w, (0, 0))[0] for w in weeks):
                continue
            own_att: list[float | None] = [float(attended.get(w, (0, 0))[1]) for w in weeks]
            expected: list[float | None] = [float(attended.get(w, (0, 0))[0]) for w in weeks]
            out.append(
                Timeline(source, SOURCE_LABELS[source], UNITS[source], weeks, own_att, expected, marks)
            )
            continue
        cells = activity.get(source)
        if not cells:
            continue
        own: list[float | None] = [float(cells.get(w.isoformat(), {}).get("student", 0)) for w in weeks]
        average = [cells.get(w.isoformat(), {}).get("average") for w in weeks]
        out.append(Timeline(source, SOURCE_LABELS[source], UNITS[source], weeks, own, average, marks))
    return out
